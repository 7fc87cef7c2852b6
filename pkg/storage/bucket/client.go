package bucket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/exthttp"
	"github.com/thanos-io/objstore/providers/azure"
	"github.com/thanos-io/objstore/providers/gcs"
	"github.com/thanos-io/objstore/providers/s3"

	"github.com/strata-metrics/strata/pkg/tlsconfig"
)

// NewClient connects to the backend selected by cfg and returns its bucket wrapped with the
// strata_bucket_* metrics labelled with component (for example "ingester", "compactor"). Components
// sharing reg share the collectors. The returned bucket sees the whole bucket: wrap it with
// NewTenantBucket to work inside one tenant. Close it when done.
func NewClient(ctx context.Context, cfg Config, component string, reg prometheus.Registerer, logger *slog.Logger) (objstore.Bucket, error) {
	if component == "" {
		return nil, errors.New("bucket client needs a component name for its metrics")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", component, "backend", cfg.Backend)

	metrics, err := newOperationMetrics(reg)
	if err != nil {
		return nil, err
	}
	backend, err := newBackend(ctx, cfg, component, logger)
	if err != nil {
		return nil, fmt.Errorf("create %s bucket client: %w", cfg.Backend, err)
	}
	return newInstrumentedBucket(backend, metrics, component), nil
}

func newBackend(ctx context.Context, cfg Config, component string, logger *slog.Logger) (objstore.Bucket, error) {
	kitLogger := goKitLogger{logger: logger}
	switch cfg.Backend {
	case BackendFilesystem:
		return newFilesystemBucket(cfg.Filesystem.Dir)
	case BackendS3:
		pc, err := s3ProviderConfig(cfg.S3)
		if err != nil {
			return nil, err
		}
		return s3.NewBucketWithConfig(kitLogger, pc, component, nil)
	case BackendGCS:
		return gcs.NewBucketWithConfig(ctx, kitLogger, gcsProviderConfig(cfg.GCS), component, nil)
	case BackendAzure:
		return azure.NewBucketWithConfig(kitLogger, azureProviderConfig(cfg.Azure), component, nil)
	}
	// Validate has rejected every other value.
	return nil, fmt.Errorf("unsupported object storage backend %q", cfg.Backend)
}

// The provider configs start from the providers' own defaults (HTTP timeouts, part sizes) so that
// Strata only decides what its flags expose.

func s3ProviderConfig(c S3Config) (s3.Config, error) {
	pc := s3.DefaultConfig
	// DefaultConfig holds a map; give each client its own so the provider cannot mutate a shared one.
	pc.PutUserMetadata = map[string]string{}
	pc.Endpoint = c.Endpoint
	pc.Bucket = c.BucketName
	pc.Region = c.Region
	pc.AccessKey = c.AccessKeyID
	pc.SecretKey = c.SecretAccessKey.Value
	pc.Insecure = c.Insecure
	switch c.BucketLookupType {
	case S3LookupPath:
		pc.BucketLookupType = s3.PathLookup
	case S3LookupVirtualHosted:
		pc.BucketLookupType = s3.VirtualHostLookup
	default:
		pc.BucketLookupType = s3.AutoLookup
	}
	if !c.HTTP.tlsSet() {
		return pc, nil
	}
	// The provider's transport (its timeouts and pool sizes) with Strata's TLS, which follows certificate
	// and CA files as they change; the provider's own reads the CA once.
	tlsClient, err := (&tlsconfig.ClientConfig{
		Enabled:            true,
		CertPath:           c.HTTP.TLSCertPath,
		KeyPath:            c.HTTP.TLSKeyPath,
		CAPath:             c.HTTP.TLSCAPath,
		ServerName:         c.HTTP.TLSServerName,
		InsecureSkipVerify: c.HTTP.InsecureSkipVerify,
		Common:             tlsconfig.Common{MinVersion: "VersionTLS12"},
	}).NewClient()
	if err != nil {
		return s3.Config{}, fmt.Errorf("-%ss3.http.tls-*: %w", flagPrefix, err)
	}
	transport, err := exthttp.DefaultTransport(pc.HTTPConfig)
	if err != nil {
		return s3.Config{}, err
	}
	transport.DialTLSContext = tlsClient.DialTLSContext
	pc.HTTPConfig.Transport = transport
	return pc, nil
}

func gcsProviderConfig(c GCSConfig) gcs.Config {
	pc := gcs.DefaultConfig
	pc.Bucket = c.BucketName
	pc.ServiceAccount = c.ServiceAccount.Value
	return pc
}

func azureProviderConfig(c AzureConfig) azure.Config {
	pc := azure.DefaultConfig
	pc.StorageAccountName = c.AccountName
	pc.StorageAccountKey = c.AccountKey.Value
	pc.ContainerName = c.ContainerName
	pc.Endpoint = c.EndpointSuffix
	// Like the S3 and GCS buckets, the container is the operator's to create: creating it here would
	// need wider rights and would turn a typo in the container name into a new, empty container.
	pc.StorageCreateContainer = false
	return pc
}
