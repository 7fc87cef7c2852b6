package distributor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/prompb"
	"golang.org/x/time/rate"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/validation"
)

// HATrackerConfig configures the HA tracker, which keeps one replica of each HA pair (two or more
// Prometheus servers scraping the same targets) and drops the others' samples.
type HATrackerConfig struct {
	Enable                 bool
	FailoverTimeout        time.Duration
	UpdateTimeout          time.Duration
	UpdateTimeoutJitterMax time.Duration
	// Store is the KV backend of the elected replicas; empty means the rings' (-ingester.ring.store).
	Store string
}

// RegisterFlags registers the HA tracker's flags.
func (c *HATrackerConfig) RegisterFlags(f *flag.FlagSet) {
	f.BoolVar(&c.Enable, "distributor.ha-tracker.enable", false, "Track the elected replica of HA Prometheus pairs, so that tenants with accept_ha_samples store one replica's samples per cluster.")
	f.DurationVar(&c.FailoverTimeout, "distributor.ha-tracker.failover-timeout", 30*time.Second, "How long the elected replica of a cluster may send nothing before another replica that sends is elected instead.")
	f.DurationVar(&c.UpdateTimeout, "distributor.ha-tracker.update-timeout", 15*time.Second, "How often, at most, a distributor writes to the KV store that the elected replica is still sending.")
	f.DurationVar(&c.UpdateTimeoutJitterMax, "distributor.ha-tracker.update-timeout-jitter-max", 5*time.Second, "Up to this much, chosen at random once per distributor, is added to -distributor.ha-tracker.update-timeout, so that distributors do not all write at once.")
	f.StringVar(&c.Store, "distributor.ha-tracker.store", "", "KV backend of the elected replicas: memberlist, etcd, multi or inmemory (one process only), configured as the rings' are (-memberlist.*, -ingester.ring.etcd.*, -ingester.ring.multi.*). Empty: the rings' backend, -ingester.ring.store.")
}

// Validate checks the configuration.
func (c *HATrackerConfig) Validate() error {
	switch c.Store {
	case "", "memberlist", "etcd", "multi", "inmemory":
	default:
		return fmt.Errorf("unknown -distributor.ha-tracker.store %q: choose memberlist, etcd, multi or inmemory", c.Store)
	}
	if !c.Enable {
		return nil
	}
	if c.UpdateTimeout <= 0 || c.UpdateTimeoutJitterMax < 0 {
		return errors.New("-distributor.ha-tracker.update-timeout must be positive and -distributor.ha-tracker.update-timeout-jitter-max not negative")
	}
	// The elected replica's last-seen time in the KV store lags by up to the update timeout and its
	// jitter; a fail-over timeout within that would elect another replica while the first still sends.
	if minFailover := c.UpdateTimeout + c.UpdateTimeoutJitterMax + time.Second; c.FailoverTimeout < minFailover {
		return fmt.Errorf("-distributor.ha-tracker.failover-timeout (%s) must be at least -distributor.ha-tracker.update-timeout plus its jitter plus 1s (%s)", c.FailoverTimeout, minFailover)
	}
	return nil
}

// Old clusters are removed so that a renamed cluster does not count against ha_max_clusters forever.
const (
	haCleanupAfter    = 30 * time.Minute
	haCleanupInterval = time.Minute
)

// haKeyPrefix prefixes each tenant's key in the KV store.
const haKeyPrefix = "ha-tracker/"

// errNotElected is a request from a replica other than its cluster's elected one.
type errNotElected struct{ cluster, replica, elected string }

func (e *errNotElected) Error() string {
	return fmt.Sprintf("samples from replica %q of HA cluster %q are dropped: replica %q is elected", e.replica, e.cluster, e.elected)
}

// errTooManyClusters is a new cluster beyond the tenant's ha_max_clusters.
var errTooManyClusters = errors.New("too many HA clusters")

// HATracker elects one replica per (tenant, cluster) and tells the distributor whose samples to keep.
// Elections live in a KV store shared by all distributors: the first replica seen is elected, and
// another only once the elected one has not been seen for the fail-over timeout. Each distributor keeps
// a cache of the tenants it has served, which a watch on the tenant's key keeps current, so a push asks
// the KV store only to record that the elected replica is still there (every update timeout) or to
// elect another.
type HATracker struct {
	cfg           HATrackerConfig
	kv            kv.Client
	updateTimeout time.Duration // with this distributor's jitter
	logger        *slog.Logger
	now           func() time.Time
	failureLogs   *rate.Limiter

	mu      sync.RWMutex
	tenants map[string]*haTenant

	// watchCtx ends every tenant's watch on Stop.
	watchCtx    context.Context
	stopWatches context.CancelFunc
	done        chan struct{}
	stopOnce    sync.Once
	background  sync.WaitGroup

	electedChanges  *prometheus.CounterVec
	electedReceived *prometheus.GaugeVec
	kvFailures      prometheus.Counter
	// dedupedSamples counts the samples of replicas that were not elected: dropped by design, so they
	// are not among the discarded samples that signal a problem.
	dedupedSamples *prometheus.CounterVec
}

// haTenant is what a distributor knows of one tenant's clusters.
type haTenant struct {
	clusters map[string]ReplicaDesc // live entries only
	stop     context.CancelFunc     // ends the watch of the tenant's key
}

// NewHATracker returns a tracker storing elections in store, whose values must use HAClustersCodec.
func NewHATracker(cfg HATrackerConfig, store kv.Client, reg prometheus.Registerer, logger *slog.Logger) (*HATracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	jitter := time.Duration(0)
	if cfg.UpdateTimeoutJitterMax > 0 {
		jitter = rand.N(cfg.UpdateTimeoutJitterMax)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &HATracker{
		cfg:           cfg,
		kv:            store,
		updateTimeout: cfg.UpdateTimeout + jitter,
		logger:        logger,
		now:           time.Now,
		failureLogs:   rate.NewLimiter(1, 1),
		tenants:       map[string]*haTenant{},
		watchCtx:      ctx,
		stopWatches:   cancel,
		done:          make(chan struct{}),
		electedChanges: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ha_tracker_elected_replica_changes_total",
			Help: "Changes of the elected replica of an HA cluster this distributor has seen.",
		}, []string{"user", "cluster"}),
		electedReceived: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_ha_tracker_elected_replica_timestamp_seconds",
			Help: "When the elected replica of an HA cluster was last recorded as sending, as this distributor knows it.",
		}, []string{"user", "cluster"}),
		kvFailures: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_ha_tracker_kv_store_failures_total",
			Help: "Reads and writes of the HA tracker's KV store that failed.",
		}),
		dedupedSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_distributor_deduped_samples_total",
			Help: "Samples dropped because they came from a replica of an HA cluster that is not the elected one.",
		}, []string{"user", "cluster"}),
	}, nil
}

// Start implements services.Service: it starts removing clusters not seen for 30 minutes.
func (t *HATracker) Start(context.Context) error {
	t.background.Go(t.cleanupLoop)
	return nil
}

// Stop implements services.Service.
func (t *HATracker) Stop(context.Context) error {
	t.stopOnce.Do(func() { close(t.done) })
	t.stopWatches()
	t.background.Wait()
	return nil
}

// checkReplica returns nil when samples of replica of cluster are to be kept for tenantID, *errNotElected
// when another replica is elected, errTooManyClusters when cluster would be one over maxClusters, and
// another error when the KV store failed. cluster and replica may point into a request's buffer.
func (t *HATracker) checkReplica(ctx context.Context, tenantID, cluster, replica string, maxClusters int) error {
	now := t.now()
	cached, known := t.cached(tenantID, cluster)
	if known {
		age := now.Sub(time.UnixMilli(cached.ReceivedAt))
		switch {
		case cached.Replica == replica && age < t.updateTimeout:
			return nil
		case cached.Replica != replica && age < t.cfg.FailoverTimeout:
			return &errNotElected{cluster: cluster, replica: replica, elected: cached.Replica}
		}
	}
	t.watch(tenantID)
	var result ReplicaDesc
	err := t.kv.CAS(ctx, haKeyPrefix+tenantID, func(in any) (any, bool, error) {
		cur, err := haClustersFrom(in)
		if err != nil {
			return nil, false, err
		}
		next, write, err := elect(cur, cluster, replica, now, t.updateTimeout, t.cfg.FailoverTimeout, maxClusters)
		result = next
		if err != nil || !write {
			return nil, false, err
		}
		cur.Clusters[strings.Clone(cluster)] = next
		return cur, false, nil
	})
	if errors.Is(err, errTooManyClusters) {
		return err
	}
	if err != nil {
		t.kvFailures.Inc()
		if t.failureLogs.Allow() {
			t.logger.Warn("ha tracker: KV store failed (at most one such line per second)", "tenant", tenantID, "cluster", cluster, "err", err)
		}
		// Only recording that the elected replica is still there failed: keep its samples.
		if known && cached.Replica == replica && now.Sub(time.UnixMilli(cached.ReceivedAt)) < t.cfg.FailoverTimeout {
			return nil
		}
		return fmt.Errorf("ha tracker: elect replica of cluster %q: %w", cluster, err)
	}
	t.remember(tenantID, cluster, result)
	if result.Replica != replica {
		return &errNotElected{cluster: cluster, replica: replica, elected: result.Replica}
	}
	return nil
}

// elect decides, from the stored clusters, who is elected for cluster once replica sent at now, and
// whether that is to be written.
func elect(cur *HAClusters, cluster, replica string, now time.Time, updateTimeout, failoverTimeout time.Duration, maxClusters int) (ReplicaDesc, bool, error) {
	entry, exists := cur.Clusters[cluster]
	nowMs := now.UnixMilli()
	if exists && !entry.deleted() {
		age := time.Duration(nowMs-entry.ReceivedAt) * time.Millisecond
		switch {
		case entry.Replica == replica && age < updateTimeout:
			return entry, false, nil // another distributor recorded it recently
		case entry.Replica == replica:
			entry.ReceivedAt = max(nowMs, entry.ReceivedAt)
			return entry, true, nil
		case age < failoverTimeout:
			return entry, false, nil
		}
	} else if maxClusters > 0 && cur.live() >= maxClusters {
		return ReplicaDesc{}, false, errTooManyClusters
	}
	// A first election, or a fail-over. ReceivedAt must move past a tombstone's time to win merges.
	return ReplicaDesc{
		Replica:        strings.Clone(replica),
		ReceivedAt:     max(nowMs, entry.version()+1),
		ElectedAt:      nowMs,
		ElectedChanges: entry.ElectedChanges + 1,
	}, true, nil
}

func (t *HATracker) cached(tenantID, cluster string) (ReplicaDesc, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if ten, ok := t.tenants[tenantID]; ok {
		r, ok := ten.clusters[cluster]
		return r, ok
	}
	return ReplicaDesc{}, false
}

// watch starts following the tenant's key, unless this distributor already does.
func (t *HATracker) watch(tenantID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watchLocked(tenantID)
}

func (t *HATracker) watchLocked(tenantID string) *haTenant {
	if ten, ok := t.tenants[tenantID]; ok {
		return ten
	}
	tenantID = strings.Clone(tenantID)
	ctx, cancel := context.WithCancel(t.watchCtx)
	ten := &haTenant{clusters: map[string]ReplicaDesc{}, stop: cancel}
	t.tenants[tenantID] = ten
	t.background.Go(func() {
		t.kv.WatchKey(ctx, haKeyPrefix+tenantID, func(v any) bool {
			stored, err := haClustersFrom(v)
			if err != nil {
				t.logger.Error("ha tracker: unexpected value in the KV store", "tenant", tenantID, "err", err)
				return false
			}
			t.update(tenantID, stored)
			return true
		})
	})
	return ten
}

// update replaces the cached clusters of a tenant with what the KV store holds, keeping a cached entry
// newer than the stored one (this distributor's own write, before its watch delivered it).
func (t *HATracker) update(tenantID string, stored *HAClusters) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ten, ok := t.tenants[tenantID]
	if !ok {
		return // no longer followed
	}
	next := make(map[string]ReplicaDesc, len(stored.Clusters))
	for cluster, r := range stored.Clusters {
		if c, ok := ten.clusters[cluster]; ok && compareReplicaVersions(&c, &r) > 0 {
			r = c
		}
		if !r.deleted() {
			next[cluster] = r
		}
	}
	for cluster, old := range ten.clusters {
		if r, ok := next[cluster]; !ok {
			t.electedReceived.DeleteLabelValues(tenantID, cluster)
			t.electedChanges.DeleteLabelValues(tenantID, cluster)
			t.dedupedSamples.DeleteLabelValues(tenantID, cluster)
		} else if r.Replica != old.Replica {
			t.electedChanges.WithLabelValues(tenantID, cluster).Inc()
		}
	}
	for cluster, r := range next {
		t.electedReceived.WithLabelValues(tenantID, cluster).Set(float64(r.ReceivedAt) / 1000)
	}
	ten.clusters = next
}

// remember caches the outcome of this distributor's own CAS.
func (t *HATracker) remember(tenantID, cluster string, r ReplicaDesc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ten := t.watchLocked(tenantID)
	old, ok := ten.clusters[cluster]
	if ok && compareReplicaVersions(&old, &r) >= 0 {
		return
	}
	if ok && old.Replica != r.Replica {
		t.electedChanges.WithLabelValues(tenantID, cluster).Inc()
	}
	cluster = strings.Clone(cluster)
	ten.clusters[cluster] = r
	t.electedReceived.WithLabelValues(tenantID, cluster).Set(float64(r.ReceivedAt) / 1000)
}

func (t *HATracker) cleanupLoop() {
	tick := time.NewTicker(haCleanupInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
			t.cleanup(t.watchCtx)
		}
	}
}

// cleanup removes, from the KV store, the clusters of the followed tenants whose elected replica has not
// been seen for haCleanupAfter, and stops following tenants left without clusters.
func (t *HATracker) cleanup(ctx context.Context) {
	t.mu.RLock()
	tenants := make([]string, 0, len(t.tenants))
	for id := range t.tenants {
		tenants = append(tenants, id)
	}
	t.mu.RUnlock()
	limit := t.now().Add(-haCleanupAfter).UnixMilli()
	for _, tenantID := range tenants {
		var left *HAClusters
		err := t.kv.CAS(ctx, haKeyPrefix+tenantID, func(in any) (any, bool, error) {
			cur, err := haClustersFrom(in)
			if err != nil {
				return nil, false, err
			}
			left = cur
			removed := false
			for cluster, r := range cur.Clusters {
				if !r.deleted() && r.ReceivedAt < limit {
					delete(cur.Clusters, cluster)
					removed = true
				}
			}
			if !removed {
				return nil, false, nil
			}
			return cur, false, nil
		})
		if err != nil {
			t.kvFailures.Inc()
			t.logger.Warn("ha tracker: remove old clusters", "tenant", tenantID, "err", err)
			continue
		}
		t.update(tenantID, left)
		t.mu.Lock()
		if ten, ok := t.tenants[tenantID]; ok && len(ten.clusters) == 0 && left.live() == 0 {
			ten.stop()
			delete(t.tenants, tenantID)
		}
		t.mu.Unlock()
	}
}

// UseHATracker makes the distributor keep only the elected replica's samples of tenants with
// accept_ha_samples. Call it before the distributor serves requests.
func (d *Distributor) UseHATracker(t *HATracker) { d.haTracker = t }

// checkHAReplica applies the HA tracker to a request of tenantID, judged by its first series' labels as
// Prometheus sends one replica's samples per request. It returns whether the replica label is to be
// removed from every series; a request from a replica that is not elected gets a 202 error and is not
// stored.
func (d *Distributor) checkHAReplica(ctx context.Context, tenantID string, limits *validation.Limits, req *prompb.WriteRequest) (bool, error) {
	if d.haTracker == nil || !limits.AcceptHASamples || len(req.Timeseries) == 0 {
		return false, nil
	}
	var cluster, replica string
	for _, l := range req.Timeseries[0].Labels {
		switch l.Name {
		case limits.HAClusterLabel:
			cluster = l.Value
		case limits.HAReplicaLabel:
			replica = l.Value
		}
	}
	// Values validation would refuse are not worth a KV entry: the series are refused anyway. (Invalid
	// UTF-8 would not even survive the store's JSON unchanged.)
	if cluster == "" || replica == "" || len(cluster) > limits.MaxLabelValueLength || len(replica) > limits.MaxLabelValueLength ||
		!utf8.ValidString(cluster) || !utf8.ValidString(replica) {
		return false, nil
	}
	err := d.haTracker.checkReplica(ctx, tenantID, cluster, replica, limits.HAMaxClusters)
	if err == nil {
		return true, nil
	}
	samples := 0
	for _, ts := range req.Timeseries {
		samples += len(ts.Samples) + len(ts.Histograms)
	}
	var notElected *errNotElected
	switch {
	case errors.As(err, &notElected):
		// cluster points into the request's pooled buffer; a new series of the metric would keep it.
		d.haTracker.dedupedSamples.WithLabelValues(tenantID, strings.Clone(cluster)).Add(float64(samples))
		return false, httpError(http.StatusAccepted, "%v", err)
	case errors.Is(err, errTooManyClusters):
		d.discardedSamples.WithLabelValues(validation.ReasonHAMaxClusters, tenantID).Add(float64(samples))
		return false, httpError(http.StatusBadRequest, "%v", validation.NewLimitError("ha_max_clusters",
			"the tenant already has %d HA clusters, its limit; samples of the new cluster %q are refused", limits.HAMaxClusters, cluster))
	}
	return false, httpError(http.StatusServiceUnavailable, "%v", err)
}

// dropLabel removes the label name from *ls, keeping the order of the others, and reports whether it was
// there.
func dropLabel(ls *[]prompb.Label, name string) bool {
	for i, l := range *ls {
		if l.Name == name {
			*ls = append((*ls)[:i], (*ls)[i+1:]...)
			return true
		}
	}
	return false
}
