package ingester

import (
	"context"
	"errors"
	"flag"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// ActiveSeriesConfig says which series are active: those counted by strata_ingester_active_series and by
// the cardinality API's count_method=active.
type ActiveSeriesConfig struct {
	// IdleTimeout is how recent a series' newest sample must be for the series to be active; 0 (a Config
	// built without flags) is the flag's default.
	IdleTimeout time.Duration
	// UpdatePeriod is how long a count of active series is reported before it is made again; 0 is the
	// flag's default.
	UpdatePeriod time.Duration
}

const (
	defaultActiveSeriesIdleTimeout  = 10 * time.Minute
	defaultActiveSeriesUpdatePeriod = time.Minute
)

// RegisterFlags registers the flags with Mimir's names.
func (c *ActiveSeriesConfig) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.IdleTimeout, "ingester.active-series-metrics-idle-timeout", defaultActiveSeriesIdleTimeout,
		"A series is active while its newest sample is at most this old (strata_ingester_active_series, and count_method=active of the cardinality API). The sample's own timestamp counts, not when it arrived: samples sent late by a client that caught up make their series active only if they are recent.")
	f.DurationVar(&c.UpdatePeriod, "ingester.active-series-metrics-update-period", defaultActiveSeriesUpdatePeriod,
		"How often strata_ingester_active_series is counted again; counting reads every series of every tenant.")
}

// Validate checks the configuration.
func (c *ActiveSeriesConfig) Validate() error {
	if c.IdleTimeout < 0 || c.UpdatePeriod < 0 {
		return errors.New("-ingester.active-series-metrics-idle-timeout and -ingester.active-series-metrics-update-period must not be negative")
	}
	return nil
}

func (c *ActiveSeriesConfig) idleTimeout() time.Duration {
	if c.IdleTimeout == 0 {
		return defaultActiveSeriesIdleTimeout
	}
	return c.IdleTimeout
}

func (c *ActiveSeriesConfig) updatePeriod() time.Duration {
	if c.UpdatePeriod == 0 {
		return defaultActiveSeriesUpdatePeriod
	}
	return c.UpdatePeriod
}

// activeSince returns, in milliseconds, the oldest newest-sample an active series may have now.
//
// A series is active when the TSDB holds a sample of it timestamped within the idle timeout. Mimir tracks
// instead when each series last received a sample, in a map updated on every push; the TSDB already
// knows every series' newest sample, so reading it costs the push path nothing and no memory, and it
// survives restarts (the WAL replay restores it). The two differ only for samples that arrive long after
// their timestamp.
func (i *Ingester) activeSince() int64 {
	return i.now().Add(-i.cfg.ActiveSeries.idleTimeout()).UnixMilli()
}

// activeSeriesSet returns the active series of the tenant's TSDB that match the matchers, label sets only;
// close must be called once the set is read.
func activeSeriesSet(ctx context.Context, t *tenantDB, since int64, sorted bool, matchers ...*labels.Matcher) (set storage.SeriesSet, close func(), err error) {
	q, err := t.db.Querier(since, math.MaxInt64)
	if err != nil {
		return nil, nil, err
	}
	if len(matchers) == 0 {
		matchers = []*labels.Matcher{allSeries}
	}
	// The TSDB leaves out the series without a chunk that reaches the range: those with no sample since.
	hints := &storage.SelectHints{Start: since, End: math.MaxInt64, Func: "series"}
	return q.Select(ctx, sorted, hints, matchers...), func() { _ = q.Close() }, nil
}

// activeSeriesCollector exports strata_ingester_active_series{user}. It counts when scraped, at most
// once per update period, rather than in a loop of its own: an ingester nobody scrapes does no counting.
type activeSeriesCollector struct {
	ingester *Ingester
	desc     *prometheus.Desc

	mtx     sync.Mutex
	counted time.Time
	counts  map[string]int
}

func newActiveSeriesCollector(i *Ingester) *activeSeriesCollector {
	return &activeSeriesCollector{ingester: i, desc: prometheus.NewDesc("strata_ingester_active_series",
		"Series of the tenant in this ingester with a sample within -ingester.active-series-metrics-idle-timeout.",
		[]string{"user"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *activeSeriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *activeSeriesCollector) Collect(ch chan<- prometheus.Metric) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	now := c.ingester.now()
	if c.counts == nil || now.Sub(c.counted) >= c.ingester.cfg.ActiveSeries.updatePeriod() {
		c.counts, c.counted = c.ingester.countActiveSeries(context.Background()), now
	}
	for id, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), id)
	}
}

// countActiveSeries counts the active series of every open tenant. A tenant whose count fails is left out
// rather than reported as zero.
func (i *Ingester) countActiveSeries(ctx context.Context) map[string]int {
	counts := map[string]int{}
	if err := i.begin(); err != nil {
		return counts // stopping: the TSDBs are being closed
	}
	defer i.end()
	since := i.activeSince()
	for _, id := range i.tenantIDs() {
		t, release := i.openTenantDB(id)
		if t == nil {
			continue
		}
		n, err := countSeries(ctx, t, since)
		release()
		if err != nil {
			i.logger.Warn("counting active series failed", "tenant", id, "err", err)
			continue
		}
		counts[id] = n
	}
	return counts
}

func countSeries(ctx context.Context, t *tenantDB, since int64) (int, error) {
	set, closeSet, err := activeSeriesSet(ctx, t, since, false)
	if err != nil {
		return 0, err
	}
	defer closeSet()
	n := 0
	for set.Next() {
		n++
	}
	return n, set.Err()
}

// openTenantDB returns the tenant's TSDB if it is open, for a reader that must not open it (a metric);
// release must be called when done.
func (i *Ingester) openTenantDB(id string) (*tenantDB, func()) {
	i.mtx.RLock()
	defer i.mtx.RUnlock()
	t := i.tenants[id]
	if t == nil {
		return nil, nil
	}
	t.inflight.Add(1) // under the lock, so an idle close waits for it
	return t, t.inflight.Done
}
