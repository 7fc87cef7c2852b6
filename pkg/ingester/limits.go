package ingester

import (
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/validation"
)

// RingShare tells how many ingesters share the tenants' series, in how many copies: a global limit
// becomes each ingester's share of it.
type RingShare interface {
	HealthyInstancesCount(op ring.Operation) int
	ReplicationFactor() int
}

// ringShare returns the healthy ingesters and the replication factor; one ingester with one copy when
// the ingester runs without a ring.
func (i *Ingester) ringShare() (ingesters, replicationFactor int) {
	if i.share == nil {
		return 1, 1
	}
	return i.healthyIngesters.Get(time.Now()), i.share.ReplicationFactor()
}

// InstanceLimits protect one ingester whatever its tenants do. Crossing one answers Unavailable (a 5xx
// at the distributor), so clients retry later; the ingester never runs out of memory or file
// descriptors instead.
type InstanceLimits struct {
	MaxTenants              int
	MaxSeries               int
	MaxInflightPushRequests int
	MaxIngestionRate        float64
}

// fdsPerTenant is what one open TSDB holds (WAL segment, head chunks file, directory lock) with room for
// a block being written or shipped.
const fdsPerTenant = 5

// fdsReserved are kept for everything else: connections, blocks being shipped, the process' own files.
const fdsReserved = 1024

// RegisterFlags registers the limits' flags with Mimir's names.
func (l *InstanceLimits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.MaxTenants, "ingester.instance-limits.max-tenants", 0,
		fmt.Sprintf("Most tenants with an open TSDB in this ingester; pushes of further tenants are refused (5xx). 0: as many as the open-files limit allows, (limit - %d) / %d, so a flood of tenants cannot exhaust file descriptors. -1: no limit.", fdsReserved, fdsPerTenant))
	f.IntVar(&l.MaxSeries, "ingester.instance-limits.max-series", 0,
		"Most in-memory series in this ingester, all tenants together; new series beyond it are refused (5xx). 0 is no limit.")
	f.IntVar(&l.MaxInflightPushRequests, "ingester.instance-limits.max-inflight-push-requests", 30_000,
		"Most push requests this ingester handles at once; more are refused (5xx). 0 is no limit.")
	f.Float64Var(&l.MaxIngestionRate, "ingester.instance-limits.max-ingestion-rate", 0,
		"Most samples per second this ingester appends, all tenants together; pushes beyond it are refused (5xx). 0 is no limit.")
}

// effectiveMaxTenants resolves the 0 default from the open-files limit.
func (l *InstanceLimits) effectiveMaxTenants() int {
	switch {
	case l.MaxTenants < 0:
		return 0
	case l.MaxTenants > 0:
		return l.MaxTenants
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0 // unknown, or as good as unlimited
	}
	return max(int(rl.Cur)-fdsReserved, fdsPerTenant) / fdsPerTenant
}

// instanceLimiter enforces InstanceLimits.
type instanceLimiter struct {
	maxTenants int
	limits     InstanceLimits
	inflight   atomic.Int64
	series     atomic.Int64 // in-memory series of every open tenant
	rate       *rate.Limiter
}

func newInstanceLimiter(l InstanceLimits) *instanceLimiter {
	il := &instanceLimiter{maxTenants: l.effectiveMaxTenants(), limits: l}
	if l.MaxIngestionRate > 0 {
		// A second's worth of burst: short spikes pass, a sustained excess does not.
		il.rate = rate.NewLimiter(rate.Limit(l.MaxIngestionRate), int(max(l.MaxIngestionRate, 1)))
	}
	return il
}

func instanceLimitError(name, format string, args ...any) error {
	return status.Errorf(codes.Unavailable, "%s (err-strata-ingester-%s); retry later or on another ingester", fmt.Sprintf(format, args...), name)
}

// startPush counts a push in flight; endPush must be called when it ends unless an error is returned.
func (il *instanceLimiter) startPush() error {
	n := il.inflight.Add(1)
	if max := il.limits.MaxInflightPushRequests; max > 0 && n > int64(max) {
		il.endPush()
		return instanceLimitError("max-inflight-push-requests", "this ingester already handles %d push requests, its limit (-ingester.instance-limits.max-inflight-push-requests)", max)
	}
	return nil
}

func (il *instanceLimiter) endPush() { il.inflight.Add(-1) }

// allowSamples takes n samples from the instance's ingestion rate.
func (il *instanceLimiter) allowSamples(n int) error {
	if il.rate == nil || il.rate.AllowN(time.Now(), n) {
		return nil
	}
	return instanceLimitError("max-ingestion-rate", "this ingester appends at most %g samples/s (-ingester.instance-limits.max-ingestion-rate)", il.limits.MaxIngestionRate)
}

// allowNewTenant reports whether a tenant beyond the open ones fits.
func (il *instanceLimiter) allowNewTenant(open int) error {
	if il.maxTenants > 0 && open >= il.maxTenants {
		return instanceLimitError("max-tenants", "this ingester already holds %d tenants, its limit (-ingester.instance-limits.max-tenants)", il.maxTenants)
	}
	return nil
}

// errInstanceSeriesLimit is returned by the TSDB's series creation when the instance is full.
var errInstanceSeriesLimit = errors.New("instance series limit")

// seriesLimiter decides, inside the tenant's TSDB, whether a new series may be created, and counts the
// series of the tenant per metric name. It implements tsdb.SeriesLifecycleCallback.
type seriesLimiter struct {
	tenant   string
	ingester *Ingester
	// enforcing is set once the WAL is replayed: series that were acknowledged before a restart come
	// back whatever the limits are now.
	enforcing atomic.Bool
	// total counts the tenant's in-memory series; the head's own count lags behind creations.
	total atomic.Int64

	mtx       sync.Mutex
	perMetric map[string]int
}

func newSeriesLimiter(tenant string, i *Ingester) *seriesLimiter {
	return &seriesLimiter{tenant: tenant, ingester: i, perMetric: map[string]int{}}
}

// seriesLimitError is a new series refused by a tenant's limit.
type seriesLimitError struct {
	reason  string
	message string
}

func (e *seriesLimitError) Error() string { return e.message }

// PreCreation implements tsdb.SeriesLifecycleCallback.
func (s *seriesLimiter) PreCreation(lset labels.Labels) error {
	if !s.enforcing.Load() {
		return nil
	}
	i := s.ingester
	if max := i.instanceLimits.limits.MaxSeries; max > 0 && i.instanceLimits.series.Load() >= int64(max) {
		return errInstanceSeriesLimit
	}
	limits := i.limits.For(s.tenant)
	ingesters, rf := i.ringShare()
	if local := validation.LocalLimit(limits.MaxGlobalSeriesPerUser, rf, ingesters); local > 0 && s.total.Load() >= int64(local) {
		return &seriesLimitError{reason: validation.ReasonMaxGlobalSeriesPerUser, message: fmt.Sprintf(
			"the tenant has %d series in this ingester, its share of the limit of %d series (%s, -%s)",
			s.total.Load(), limits.MaxGlobalSeriesPerUser, validation.ErrorID(validation.ReasonMaxGlobalSeriesPerUser), validation.FlagOf("max_global_series_per_user"))}
	}
	if local := validation.LocalLimit(limits.MaxGlobalSeriesPerMetric, rf, ingesters); local > 0 {
		name := lset.Get(model.MetricNameLabel)
		s.mtx.Lock()
		n := s.perMetric[name]
		s.mtx.Unlock()
		if n >= local {
			return &seriesLimitError{reason: validation.ReasonMaxGlobalSeriesPerMetric, message: fmt.Sprintf(
				"metric %q has %d series in this ingester, its share of the limit of %d series per metric (%s, -%s)",
				name, n, limits.MaxGlobalSeriesPerMetric, validation.ErrorID(validation.ReasonMaxGlobalSeriesPerMetric), validation.FlagOf("max_global_series_per_metric"))}
		}
	}
	return nil
}

// PostCreation implements tsdb.SeriesLifecycleCallback.
func (s *seriesLimiter) PostCreation(lset labels.Labels) {
	s.total.Add(1)
	s.ingester.instanceLimits.series.Add(1)
	s.mtx.Lock()
	s.perMetric[lset.Get(model.MetricNameLabel)]++
	s.mtx.Unlock()
}

// PostDeletion implements tsdb.SeriesLifecycleCallback.
func (s *seriesLimiter) PostDeletion(deleted map[chunks.HeadSeriesRef]labels.Labels) {
	s.total.Add(-int64(len(deleted)))
	s.ingester.instanceLimits.series.Add(-int64(len(deleted)))
	s.mtx.Lock()
	for _, lset := range deleted {
		name := lset.Get(model.MetricNameLabel)
		if s.perMetric[name] <= 1 {
			delete(s.perMetric, name)
		} else {
			s.perMetric[name]--
		}
	}
	s.mtx.Unlock()
}

// released is called when the tenant's TSDB is closed: its series leave memory without deletions.
func (s *seriesLimiter) released() {
	s.ingester.instanceLimits.series.Add(-s.total.Swap(0))
}

// tsdbSettings are the TSDB settings a tenant's limits decide.
type tsdbSettings struct {
	outOfOrderWindow int64 // milliseconds
	maxExemplars     int64 // this ingester's share
}

func (i *Ingester) tsdbSettings(tenantID string) tsdbSettings {
	l := i.limits.For(tenantID)
	ingesters, rf := i.ringShare()
	return tsdbSettings{
		outOfOrderWindow: time.Duration(l.OutOfOrderTimeWindow).Milliseconds(),
		maxExemplars:     int64(validation.LocalLimit(l.MaxGlobalExemplarsPerUser, rf, ingesters)),
	}
}

// applyLimits brings the tenant's TSDB in line with its current limits, which runtime overrides and the
// ring's size change while it runs; it costs a comparison when nothing changed.
func (i *Ingester) applyLimits(id string, t *tenantDB) tsdbSettings {
	want := i.tsdbSettings(id)
	t.settingsMtx.Lock()
	defer t.settingsMtx.Unlock()
	if want == t.applied {
		return want
	}
	err := t.db.ApplyConfig(&config.Config{StorageConfig: config.StorageConfig{
		TSDBConfig:      &config.TSDBConfig{OutOfOrderTimeWindow: want.outOfOrderWindow},
		ExemplarsConfig: &config.ExemplarsConfig{MaxExemplars: want.maxExemplars},
	}})
	if err != nil {
		i.logger.Warn("applying the tenant's limits to its TSDB failed; the previous settings stay", "tenant", id, "err", err)
		return t.applied
	}
	t.applied = want
	return want
}
