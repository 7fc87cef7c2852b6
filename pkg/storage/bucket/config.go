package bucket

import (
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/strata-metrics/strata/pkg/util/flagext"
)

// Backend names accepted by -blocks-storage.backend.
const (
	BackendFilesystem = "filesystem"
	BackendS3         = "s3"
	BackendGCS        = "gcs"
	BackendAzure      = "azure"
)

// Backends lists every supported backend, in the order the flag help shows them.
var Backends = []string{BackendFilesystem, BackendS3, BackendGCS, BackendAzure}

// S3 bucket lookup types accepted by -blocks-storage.s3.bucket-lookup-type.
const (
	S3LookupAuto          = "auto"
	S3LookupPath          = "path"
	S3LookupVirtualHosted = "virtual-hosted"
)

var s3LookupTypes = []string{S3LookupAuto, S3LookupPath, S3LookupVirtualHosted}

// Config selects the object storage backend that holds the blocks of every tenant and how to reach it.
// Only the section of the selected backend is used.
type Config struct {
	Backend    string
	Filesystem FilesystemConfig
	S3         S3Config
	GCS        GCSConfig
	Azure      AzureConfig
}

// FilesystemConfig is the local-directory backend: for single-process setups and tests, since only
// processes on the same machine (or sharing a network filesystem) see the same bucket.
type FilesystemConfig struct {
	Dir string
}

// S3Config reaches AWS S3 or an S3-compatible server.
type S3Config struct {
	Endpoint         string
	BucketName       string
	Region           string
	AccessKeyID      string
	SecretAccessKey  flagext.Secret
	Insecure         bool
	BucketLookupType string
	HTTP             S3HTTPConfig
}

// S3HTTPConfig is how the S3 client trusts the server's certificate (a private CA, as an on-premises
// S3-compatible store often has) and which client certificate it presents to servers that ask for one.
type S3HTTPConfig struct {
	TLSCAPath          string
	TLSCertPath        string
	TLSKeyPath         string
	TLSServerName      string
	InsecureSkipVerify bool
}

// GCSConfig reaches Google Cloud Storage.
type GCSConfig struct {
	BucketName     string
	ServiceAccount flagext.Secret
}

// AzureConfig reaches an Azure Blob Storage container.
type AzureConfig struct {
	AccountName    string
	AccountKey     flagext.Secret
	ContainerName  string
	EndpointSuffix string
}

const flagPrefix = "blocks-storage."

// RegisterFlags registers the -blocks-storage.* flags, with Mimir's names so its users' knowledge
// carries over.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Backend, flagPrefix+"backend", BackendFilesystem,
		"Object storage backend for blocks: "+strings.Join(Backends, ", ")+".")
	c.Filesystem.registerFlags(f)
	c.S3.registerFlags(f)
	c.GCS.registerFlags(f)
	c.Azure.registerFlags(f)
}

func (c *FilesystemConfig) registerFlags(f *flag.FlagSet) {
	f.StringVar(&c.Dir, flagPrefix+"filesystem.dir", "",
		"Directory holding the blocks when the backend is filesystem. Defaults to <-data.dir>/bucket.")
}

func (c *S3Config) registerFlags(f *flag.FlagSet) {
	p := flagPrefix + "s3."
	f.StringVar(&c.Endpoint, p+"endpoint", "",
		"S3 endpoint as host[:port], without a scheme (for example s3.eu-west-1.amazonaws.com or 127.0.0.1:9000).")
	f.StringVar(&c.BucketName, p+"bucket-name", "", "S3 bucket name.")
	f.StringVar(&c.Region, p+"region", "", "S3 region. Empty lets the client discover it.")
	f.StringVar(&c.AccessKeyID, p+"access-key-id", "",
		"S3 access key ID. Empty uses the AWS environment variables, credentials file or instance role.")
	f.Var(&c.SecretAccessKey, p+"secret-access-key", "S3 secret access key.")
	f.BoolVar(&c.Insecure, p+"insecure", false, "Connect to the S3 endpoint over plain HTTP instead of HTTPS.")
	f.StringVar(&c.BucketLookupType, p+"bucket-lookup-type", S3LookupAuto,
		"How the bucket is addressed: "+strings.Join(s3LookupTypes, ", ")+
			". S3-compatible servers usually need path.")
	c.HTTP.registerFlags(p+"http.", f)
}

func (c *S3HTTPConfig) registerFlags(p string, f *flag.FlagSet) {
	f.StringVar(&c.TLSCAPath, p+"tls-ca-path", "",
		"CA bundle (PEM) the S3 endpoint's certificate must chain to. Empty uses the system's roots. Re-read when the file changes.")
	f.StringVar(&c.TLSCertPath, p+"tls-cert-path", "",
		"Client certificate (PEM) presented to an S3 endpoint that asks for one. Re-read when the file changes.")
	f.StringVar(&c.TLSKeyPath, p+"tls-key-path", "", "Private key (PEM) of -"+p+"tls-cert-path.")
	f.StringVar(&c.TLSServerName, p+"tls-server-name", "",
		"Name the S3 endpoint's certificate must carry. Empty uses the host of -"+flagPrefix+"s3.endpoint.")
	f.BoolVar(&c.InsecureSkipVerify, p+"insecure-skip-verify", false,
		"Accept any certificate from the S3 endpoint, unverified. For tests only: anyone on the path can then read and change the blocks.")
}

func (c *GCSConfig) registerFlags(f *flag.FlagSet) {
	p := flagPrefix + "gcs."
	f.StringVar(&c.BucketName, p+"bucket-name", "", "GCS bucket name.")
	f.Var(&c.ServiceAccount, p+"service-account",
		"JSON key of a GCS service account. Empty uses the application default credentials.")
}

func (c *AzureConfig) registerFlags(f *flag.FlagSet) {
	p := flagPrefix + "azure."
	f.StringVar(&c.AccountName, p+"account-name", "", "Azure storage account name.")
	f.Var(&c.AccountKey, p+"account-key",
		"Azure storage account key. Empty uses the default Azure credential chain (managed identity, environment).")
	f.StringVar(&c.ContainerName, p+"container-name", "", "Azure Blob Storage container name.")
	f.StringVar(&c.EndpointSuffix, p+"endpoint-suffix", "blob.core.windows.net",
		"Azure Blob Storage endpoint suffix, for sovereign clouds (for example blob.core.chinacloudapi.cn).")
}

// Validate checks the selected backend's settings; each error names the flag to fix. The filesystem
// backend needs a directory: the app fills it from -data.dir before calling Validate.
func (c *Config) Validate() error {
	switch c.Backend {
	case BackendFilesystem:
		if c.Filesystem.Dir == "" {
			return missingFlag("filesystem.dir", "the filesystem backend needs a directory")
		}
	case BackendS3:
		return c.S3.validate()
	case BackendGCS:
		return c.GCS.validate()
	case BackendAzure:
		return c.Azure.validate()
	default:
		return fmt.Errorf("unsupported object storage backend %q (-%sbackend): use one of %s",
			c.Backend, flagPrefix, strings.Join(Backends, ", "))
	}
	return nil
}

func (c *S3Config) validate() error {
	if c.Endpoint == "" {
		return missingFlag("s3.endpoint", "the s3 backend needs an endpoint")
	}
	// The S3 client takes host[:port]; a URL fails later with a message that does not name the flag.
	if strings.Contains(c.Endpoint, "://") || strings.Contains(c.Endpoint, "/") {
		return fmt.Errorf("s3 endpoint %q must be host[:port] without scheme or path (-%ss3.endpoint); "+
			"use -%ss3.insecure for plain HTTP", c.Endpoint, flagPrefix, flagPrefix)
	}
	if c.BucketName == "" {
		return missingFlag("s3.bucket-name", "the s3 backend needs a bucket name")
	}
	if c.AccessKeyID == "" && c.SecretAccessKey.Value != "" {
		return missingFlag("s3.access-key-id", "a secret access key is set without its access key ID")
	}
	if c.AccessKeyID != "" && c.SecretAccessKey.Value == "" {
		return missingFlag("s3.secret-access-key", "an access key ID is set without its secret access key")
	}
	if !slices.Contains(s3LookupTypes, c.BucketLookupType) {
		return fmt.Errorf("unsupported s3 bucket lookup type %q (-%ss3.bucket-lookup-type): use one of %s",
			c.BucketLookupType, flagPrefix, strings.Join(s3LookupTypes, ", "))
	}
	if (c.HTTP.TLSCertPath == "") != (c.HTTP.TLSKeyPath == "") {
		return fmt.Errorf("-%ss3.http.tls-cert-path and -%ss3.http.tls-key-path go together", flagPrefix, flagPrefix)
	}
	if c.Insecure && c.HTTP.tlsSet() {
		return fmt.Errorf("-%ss3.http.tls-* and -%ss3.http.insecure-skip-verify need HTTPS, but -%ss3.insecure is set",
			flagPrefix, flagPrefix, flagPrefix)
	}
	return nil
}

// tlsSet reports whether any TLS setting differs from the system's defaults.
func (c *S3HTTPConfig) tlsSet() bool { return *c != S3HTTPConfig{} }

func (c *GCSConfig) validate() error {
	if c.BucketName == "" {
		return missingFlag("gcs.bucket-name", "the gcs backend needs a bucket name")
	}
	// Catch a file path or a truncated key here rather than as an opaque credentials error at startup.
	if c.ServiceAccount.Value != "" && !json.Valid([]byte(c.ServiceAccount.Value)) {
		return fmt.Errorf("gcs service account (-%sgcs.service-account) must be the JSON key itself, not a path or other text",
			flagPrefix)
	}
	return nil
}

func (c *AzureConfig) validate() error {
	if c.AccountName == "" {
		return missingFlag("azure.account-name", "the azure backend needs a storage account name")
	}
	if c.ContainerName == "" {
		return missingFlag("azure.container-name", "the azure backend needs a container name")
	}
	if c.EndpointSuffix == "" {
		return missingFlag("azure.endpoint-suffix", "the azure backend needs an endpoint suffix")
	}
	return nil
}

func missingFlag(name, why string) error {
	return fmt.Errorf("%s: set -%s%s", why, flagPrefix, name)
}
