package storegateway

import (
	"errors"
	"flag"
	"time"
)

// Config configures a store-gateway. Flag names follow Mimir's, so its users' configuration carries over.
type Config struct {
	// SyncDir holds the downloaded index of every loaded block, as <tenant>/<ULID>/{meta.json,index}. The app
	// sets it to <-data.dir>/tsdb-sync when the flag is empty.
	SyncDir string
	// SyncInterval is how often the bucket indexes are read again to load new blocks and drop old ones.
	SyncInterval time.Duration
	// IndexCacheMaxSizeBytes bounds the in-memory cache of postings (series references per matcher set).
	IndexCacheMaxSizeBytes int64
	// ChunksCacheMaxSizeBytes bounds the in-memory cache of chunks read from the bucket.
	ChunksCacheMaxSizeBytes int64
	// ReplicationFactor is how many store-gateways load each block. The app builds the store-gateway ring
	// with it; queriers retry a block on the other replicas.
	ReplicationFactor int
}

// RegisterFlags registers the store-gateway's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.SyncDir, "blocks-storage.bucket-store.sync-dir", "",
		"Directory for the index files of the blocks this store-gateway serves; it deletes anything else in it. Empty: <-data.dir>/tsdb-sync.")
	f.DurationVar(&c.SyncInterval, "blocks-storage.bucket-store.sync-interval", 15*time.Minute,
		"How often the store-gateway reads the bucket indexes to load new blocks and drop deleted or no longer owned ones.")
	f.Int64Var(&c.IndexCacheMaxSizeBytes, "blocks-storage.bucket-store.index-cache.max-size-bytes", 1<<30,
		"Maximum size in bytes of the in-memory cache of postings (the series matching a set of label matchers in a block). 0 disables it.")
	// Off by default, as in Mimir: filling an in-process cache of chunks (copies in a large heap that the
	// garbage collector scans) cost a cold 7-day dashboard more CPU than its hits saved, the OS caches a
	// filesystem bucket anyway, and the query-frontend's results cache answers repeated queries.
	f.Int64Var(&c.ChunksCacheMaxSizeBytes, "blocks-storage.bucket-store.chunks-cache.max-size-bytes", 0,
		"Maximum size in bytes of the in-memory cache of chunks read from object storage. 0 (the default) disables it: chunks are read from the bucket every time, which the OS caches for a filesystem bucket. Worth setting for an object store whose reads are slow, when the same blocks are queried again outside the results cache.")
	f.IntVar(&c.ReplicationFactor, "store-gateway.sharding-ring.replication-factor", 3,
		"Number of store-gateways that load each block, so queries survive the loss of all but one of them.")
}

// Validate reports settings the store-gateway cannot work with. An empty SyncDir is allowed here because
// the app fills it in from -data.dir; New rejects it.
func (c *Config) Validate() error {
	if c.SyncInterval <= 0 {
		return errors.New("store-gateway: -blocks-storage.bucket-store.sync-interval must be positive")
	}
	if c.IndexCacheMaxSizeBytes < 0 {
		return errors.New("store-gateway: -blocks-storage.bucket-store.index-cache.max-size-bytes must not be negative")
	}
	if c.ChunksCacheMaxSizeBytes < 0 {
		return errors.New("store-gateway: -blocks-storage.bucket-store.chunks-cache.max-size-bytes must not be negative")
	}
	if c.ReplicationFactor < 1 {
		return errors.New("store-gateway: -store-gateway.sharding-ring.replication-factor must be at least 1")
	}
	return nil
}
