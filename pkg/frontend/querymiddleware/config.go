package querymiddleware

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/strata-metrics/strata/pkg/cache"
)

// Config says how range queries are split and cached.
type Config struct {
	// SplitQueriesByInterval splits range queries at multiples of this interval since the Unix epoch
	// (UTC midnights for 24h); 0 does not split.
	SplitQueriesByInterval time.Duration
	// CacheResults keeps the parts' answers in ResultsCache for ResultsCacheTTL.
	CacheResults    bool
	ResultsCache    cache.Config
	ResultsCacheTTL time.Duration
}

// RegisterFlags registers the flags under -query-frontend.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.SplitQueriesByInterval, "query-frontend.split-queries-by-interval", 24*time.Hour,
		"Split range queries at multiples of this interval (UTC midnights for 24h) and evaluate the parts in parallel; each part is cached on its own. 0 does not split, and then the results cache must be off.")
	f.BoolVar(&c.CacheResults, "query-frontend.cache-results", true,
		"Cache the answers of range queries, so a query over a range answered before (a refreshed dashboard) asks queriers only for the new part.")
	c.ResultsCache.RegisterFlagsWithPrefix("query-frontend.results-cache.", f)
	f.DurationVar(&c.ResultsCacheTTL, "query-frontend.results-cache-ttl", 7*24*time.Hour,
		"How long cached range query results are kept. Data deleted or backfilled in that time may go unnoticed by cached ranges until they expire.")
}

// Validate reports a configuration the middleware cannot work with.
func (c *Config) Validate() error {
	var errs []error
	if c.SplitQueriesByInterval < 0 || c.SplitQueriesByInterval%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("-query-frontend.split-queries-by-interval must be 0 or a positive whole number of milliseconds, is %s", c.SplitQueriesByInterval))
	}
	if c.CacheResults {
		if c.SplitQueriesByInterval == 0 {
			errs = append(errs, errors.New("-query-frontend.cache-results needs -query-frontend.split-queries-by-interval > 0, since the cache keeps one entry per interval; set -query-frontend.cache-results=false to run without splitting"))
		}
		if c.ResultsCacheTTL <= 0 {
			errs = append(errs, fmt.Errorf("-query-frontend.results-cache-ttl must be positive, is %s", c.ResultsCacheTTL))
		}
		if err := c.ResultsCache.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
