// Package querier answers PromQL over the tenant's data: a storage.Queryable that merges the ingesters'
// replicas, and the Prometheus engine configured from Strata's flags.
package querier

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
)

// Config configures the querier.
type Config struct {
	MaxSamples                int
	Timeout                   time.Duration
	MaxConcurrent             int
	LookbackDelta             time.Duration
	DefaultEvaluationInterval time.Duration
	QueryIngestersWithin      time.Duration
	QueryStoreAfter           time.Duration
	BucketIndexTTL            time.Duration
	TombstonesTTL             time.Duration
	MaxFetchedSeriesInFlight  int
}

// RegisterFlags registers the querier's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&c.MaxSamples, "querier.max-samples", 50_000_000, "Most samples a single query may load into memory at once.")
	f.DurationVar(&c.Timeout, "querier.timeout", 2*time.Minute, "Longest a query may run.")
	f.IntVar(&c.MaxConcurrent, "querier.max-concurrent", 20, "Queries evaluated at once; further queries wait for a slot.")
	f.DurationVar(&c.LookbackDelta, "querier.lookback-delta", 5*time.Minute, "How far back an instant vector selector looks for the latest sample, as Prometheus' -query.lookback-delta.")
	f.DurationVar(&c.DefaultEvaluationInterval, "querier.default-evaluation-interval", time.Minute, "Step of subqueries that do not give one.")
	f.DurationVar(&c.QueryIngestersWithin, "querier.query-ingesters-within", 13*time.Hour, "Only data newer than this is asked from ingesters; it must not exceed -blocks-storage.tsdb.retention-period. 0 asks ingesters for any time.")
	f.DurationVar(&c.BucketIndexTTL, "querier.bucket-index-ttl", time.Minute, "How long a tenant's bucket index, which lists its blocks in object storage, is kept in memory before it is read again (strata_querier_bucket_index_reads_total). 0 reads it for every query.")
	f.DurationVar(&c.TombstonesTTL, "querier.tombstones-ttl", 10*time.Second, "How long a tenant's pending series deletions (tombstones in object storage) are kept in memory before they are read again: a deletion made through another querier hides the deleted samples from this one's answers within this time. 0 reads them for every query.")
	f.IntVar(&c.MaxFetchedSeriesInFlight, "querier.max-fetched-series-in-flight", 1_000_000, "Most series the queries running in this querier may hold together (each query's own bound is the tenant's max_fetched_series_per_query); a query that would take the querier over it is refused with 503, to be retried. It bounds the querier's memory: about 2.6 KB per series. 0 is no limit.")
	f.DurationVar(&c.QueryStoreAfter, "querier.query-store-after", 12*time.Hour, "Blocks in object storage holding only data newer than this are not read, as ingesters hold that data; uploaded (backfilled) and restored blocks are read however recent. It must be shorter than -querier.query-ingesters-within so the two overlap. 0 reads every block.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.MaxSamples <= 0:
		return errors.New("-querier.max-samples must be positive")
	case c.Timeout <= 0:
		return errors.New("-querier.timeout must be positive")
	case c.MaxConcurrent <= 0:
		return errors.New("-querier.max-concurrent must be positive")
	case c.LookbackDelta <= 0:
		return errors.New("-querier.lookback-delta must be positive")
	case c.MaxFetchedSeriesInFlight < 0:
		return errors.New("-querier.max-fetched-series-in-flight must not be negative")
	case c.TombstonesTTL < 0:
		return errors.New("-querier.tombstones-ttl must not be negative")
	case c.BucketIndexTTL < 0:
		return errors.New("-querier.bucket-index-ttl must not be negative")
	case c.DefaultEvaluationInterval <= 0:
		return errors.New("-querier.default-evaluation-interval must be positive")
	case c.QueryIngestersWithin > 0 && c.QueryStoreAfter >= c.QueryIngestersWithin:
		return errors.New("-querier.query-store-after must be shorter than -querier.query-ingesters-within, or data between the two would be asked from neither")
	}
	return nil
}

// NewEngine returns Prometheus' PromQL engine set up as the flags say, with subqueries, @ and negative
// offsets enabled as in current Prometheus.
func NewEngine(cfg Config, reg prometheus.Registerer, logger *slog.Logger) *promql.Engine {
	interval := cfg.DefaultEvaluationInterval.Milliseconds()
	return promql.NewEngine(promql.EngineOpts{
		Logger:                   logger,
		Reg:                      reg,
		MaxSamples:               cfg.MaxSamples,
		Timeout:                  cfg.Timeout,
		ActiveQueryTracker:       newConcurrencyLimit(cfg.MaxConcurrent),
		LookbackDelta:            cfg.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return interval },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
	})
}

// concurrencyLimit is a promql.QueryTracker that only bounds how many queries run at once.
type concurrencyLimit struct {
	slots chan struct{}
}

func newConcurrencyLimit(n int) *concurrencyLimit {
	return &concurrencyLimit{slots: make(chan struct{}, n)}
}

func (c *concurrencyLimit) GetMaxConcurrent() int { return cap(c.slots) }

func (c *concurrencyLimit) Insert(ctx context.Context, _ string) (int, error) {
	select {
	case c.slots <- struct{}{}:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *concurrencyLimit) Delete(int) { <-c.slots }

func (c *concurrencyLimit) Close() error { return nil }
