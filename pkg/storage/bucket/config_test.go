package bucket

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/util/flagext"
)

func TestConfig_RegisterFlagsDefaults(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))

	require.Equal(t, BackendFilesystem, cfg.Backend)
	require.Empty(t, cfg.Filesystem.Dir)
	require.Equal(t, S3LookupAuto, cfg.S3.BucketLookupType)
	require.False(t, cfg.S3.Insecure)
	require.Equal(t, "blob.core.windows.net", cfg.Azure.EndpointSuffix)

	// Credentials are flagext.Secret values so that /config masks them.
	for _, name := range []string{
		"blocks-storage.s3.secret-access-key", "blocks-storage.gcs.service-account", "blocks-storage.azure.account-key",
	} {
		f := fs.Lookup(name)
		require.NotNil(t, f, name)
		s, ok := f.Value.(interface{ IsSecret() bool })
		require.True(t, ok && s.IsSecret(), "%s must be a secret", name)
	}
}

func TestConfig_ParsesMimirFlagNames(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"-blocks-storage.backend=s3",
		"-blocks-storage.s3.endpoint=127.0.0.1:9000",
		"-blocks-storage.s3.bucket-name=blocks",
		"-blocks-storage.s3.region=eu-west-1",
		"-blocks-storage.s3.access-key-id=AK",
		"-blocks-storage.s3.secret-access-key=SK",
		"-blocks-storage.s3.insecure",
		"-blocks-storage.s3.bucket-lookup-type=path",
		"-blocks-storage.gcs.bucket-name=g",
		"-blocks-storage.gcs.service-account={}",
		"-blocks-storage.azure.account-name=acc",
		"-blocks-storage.azure.account-key=key",
		"-blocks-storage.azure.container-name=c",
		"-blocks-storage.azure.endpoint-suffix=blob.core.chinacloudapi.cn",
		"-blocks-storage.filesystem.dir=/data/bucket",
	}))
	require.Equal(t, S3Config{
		Endpoint: "127.0.0.1:9000", BucketName: "blocks", Region: "eu-west-1", AccessKeyID: "AK",
		SecretAccessKey: cfg.S3.SecretAccessKey, Insecure: true, BucketLookupType: S3LookupPath,
	}, cfg.S3)
	require.Equal(t, "SK", cfg.S3.SecretAccessKey.Value)
	require.Equal(t, "g", cfg.GCS.BucketName)
	require.Equal(t, "{}", cfg.GCS.ServiceAccount.Value)
	require.Equal(t, "acc", cfg.Azure.AccountName)
	require.Equal(t, "key", cfg.Azure.AccountKey.Value)
	require.Equal(t, "c", cfg.Azure.ContainerName)
	require.Equal(t, "blob.core.chinacloudapi.cn", cfg.Azure.EndpointSuffix)
	require.Equal(t, "/data/bucket", cfg.Filesystem.Dir)
	require.NoError(t, cfg.Validate())
}

func TestConfig_Validate(t *testing.T) {
	validS3 := func(mod func(*S3Config)) Config {
		c := Config{Backend: BackendS3, S3: S3Config{Endpoint: "s3.amazonaws.com", BucketName: "b",
			AccessKeyID: "k", BucketLookupType: S3LookupAuto}}
		c.S3.SecretAccessKey.Value = "s"
		if mod != nil {
			mod(&c.S3)
		}
		return c
	}
	validAzure := func(mod func(*AzureConfig)) Config {
		c := Config{Backend: BackendAzure, Azure: AzureConfig{AccountName: "a", ContainerName: "c",
			EndpointSuffix: "blob.core.windows.net"}}
		if mod != nil {
			mod(&c.Azure)
		}
		return c
	}

	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // the flag the message must name; empty for a valid config
	}{
		{"filesystem", Config{Backend: BackendFilesystem, Filesystem: FilesystemConfig{Dir: "/d"}}, ""},
		{"filesystem without dir", Config{Backend: BackendFilesystem}, "-blocks-storage.filesystem.dir"},
		{"unknown backend", Config{Backend: "swift"}, "-blocks-storage.backend"},
		{"empty backend", Config{}, "-blocks-storage.backend"},

		{"s3", validS3(nil), ""},
		{"s3 with ambient credentials", validS3(func(c *S3Config) { c.AccessKeyID = ""; c.SecretAccessKey.Value = "" }), ""},
		{"s3 without endpoint", validS3(func(c *S3Config) { c.Endpoint = "" }), "-blocks-storage.s3.endpoint"},
		{"s3 endpoint with scheme", validS3(func(c *S3Config) { c.Endpoint = "http://127.0.0.1:9000" }), "-blocks-storage.s3.endpoint"},
		{"s3 endpoint with path", validS3(func(c *S3Config) { c.Endpoint = "host/bucket" }), "-blocks-storage.s3.endpoint"},
		{"s3 without bucket", validS3(func(c *S3Config) { c.BucketName = "" }), "-blocks-storage.s3.bucket-name"},
		{"s3 secret without key id", validS3(func(c *S3Config) { c.AccessKeyID = "" }), "-blocks-storage.s3.access-key-id"},
		{"s3 key id without secret", validS3(func(c *S3Config) { c.SecretAccessKey.Value = "" }), "-blocks-storage.s3.secret-access-key"},
		{"s3 bad lookup type", validS3(func(c *S3Config) { c.BucketLookupType = "dns" }), "-blocks-storage.s3.bucket-lookup-type"},
		{"s3 path lookup", validS3(func(c *S3Config) { c.BucketLookupType = S3LookupPath }), ""},
		{"s3 virtual-hosted lookup", validS3(func(c *S3Config) { c.BucketLookupType = S3LookupVirtualHosted }), ""},

		{"gcs", Config{Backend: BackendGCS, GCS: GCSConfig{BucketName: "b"}}, ""},
		{"gcs without bucket", Config{Backend: BackendGCS}, "-blocks-storage.gcs.bucket-name"},
		{"gcs key is a path", Config{Backend: BackendGCS, GCS: GCSConfig{BucketName: "b",
			ServiceAccount: flagext.Secret{Value: "/etc/gcs/key.json"}}}, "-blocks-storage.gcs.service-account"},
		{"gcs key is json", Config{Backend: BackendGCS, GCS: GCSConfig{BucketName: "b",
			ServiceAccount: flagext.Secret{Value: `{"type":"service_account"}`}}}, ""},

		{"azure", validAzure(nil), ""},
		{"azure with key", validAzure(func(c *AzureConfig) { c.AccountKey.Value = "k" }), ""},
		{"azure without account", validAzure(func(c *AzureConfig) { c.AccountName = "" }), "-blocks-storage.azure.account-name"},
		{"azure without container", validAzure(func(c *AzureConfig) { c.ContainerName = "" }), "-blocks-storage.azure.container-name"},
		{"azure without endpoint suffix", validAzure(func(c *AzureConfig) { c.EndpointSuffix = "" }), "-blocks-storage.azure.endpoint-suffix"},

		// Only the selected backend's section matters.
		{"other sections ignored", Config{Backend: BackendFilesystem, Filesystem: FilesystemConfig{Dir: "/d"},
			S3: S3Config{BucketLookupType: "bogus"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
