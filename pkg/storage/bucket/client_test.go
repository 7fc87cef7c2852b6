package bucket

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func newFilesystemClient(t *testing.T, reg prometheus.Registerer, component string) objstore.Bucket {
	t.Helper()
	cfg := Config{Backend: BackendFilesystem, Filesystem: FilesystemConfig{Dir: t.TempDir()}}
	bkt, err := NewClient(t.Context(), cfg, component, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bkt.Close()) })
	return bkt
}

func TestNewClient_FilesystemRoundTrip(t *testing.T) {
	bkt := newFilesystemClient(t, prometheus.NewRegistry(), "test")
	require.Equal(t, objstore.FILESYSTEM, bkt.Provider())
	checkRoundTrip(t, bkt)
}

func TestNewClient_FilesystemTenantIsolation(t *testing.T) {
	checkTenantIsolation(t, newFilesystemClient(t, prometheus.NewRegistry(), "test"))
}

func TestNewClient_RejectsInvalidConfig(t *testing.T) {
	_, err := NewClient(t.Context(), Config{Backend: BackendS3}, "test", nil, nil)
	require.ErrorContains(t, err, "-blocks-storage.s3.endpoint")

	_, err = NewClient(t.Context(), Config{Backend: BackendFilesystem, Filesystem: FilesystemConfig{Dir: t.TempDir()}}, "", nil, nil)
	require.ErrorContains(t, err, "component")
}

func TestNewClient_S3ConnectsLazily(t *testing.T) {
	// Nothing listens on the endpoint: building the client must not need the server, so that
	// components start while object storage is briefly unreachable.
	cfg := Config{Backend: BackendS3, S3: S3Config{Endpoint: "127.0.0.1:1", BucketName: "b", AccessKeyID: "k",
		BucketLookupType: S3LookupPath}}
	cfg.S3.SecretAccessKey.Value = "s"
	bkt, err := NewClient(t.Context(), cfg, "test", prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	require.Equal(t, objstore.S3, bkt.Provider())
	require.Equal(t, "b", bkt.Name())
	require.NoError(t, bkt.Close())
}

func TestProviderConfigs_MapStrataFlags(t *testing.T) {
	s3c := S3Config{Endpoint: "h:1", BucketName: "b", Region: "r", AccessKeyID: "k", Insecure: true,
		BucketLookupType: S3LookupVirtualHosted}
	s3c.SecretAccessKey.Value = "s"
	pc, err := s3ProviderConfig(s3c)
	require.NoError(t, err)
	require.Nil(t, pc.HTTPConfig.Transport, "without TLS settings the provider builds its own transport")
	require.Equal(t, "h:1", pc.Endpoint)
	require.Equal(t, "b", pc.Bucket)
	require.Equal(t, "r", pc.Region)
	require.Equal(t, "k", pc.AccessKey)
	require.Equal(t, "s", pc.SecretKey)
	require.True(t, pc.Insecure)
	require.Equal(t, "virtual-hosted", pc.BucketLookupType.String())
	require.NotZero(t, pc.PartSize, "provider defaults are kept")

	gc := GCSConfig{BucketName: "g"}
	gc.ServiceAccount.Value = `{"type":"service_account"}`
	gpc := gcsProviderConfig(gc)
	require.Equal(t, "g", gpc.Bucket)
	require.Equal(t, gc.ServiceAccount.Value, gpc.ServiceAccount)

	ac := AzureConfig{AccountName: "acc", ContainerName: "c", EndpointSuffix: "blob.example"}
	ac.AccountKey.Value = "key"
	apc := azureProviderConfig(ac)
	require.Equal(t, "acc", apc.StorageAccountName)
	require.Equal(t, "key", apc.StorageAccountKey)
	require.Equal(t, "c", apc.ContainerName)
	require.Equal(t, "blob.example", apc.Endpoint)
	require.False(t, apc.StorageCreateContainer)
}
