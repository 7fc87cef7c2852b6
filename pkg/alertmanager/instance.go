package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/alertmanager/alert"
	amapi "github.com/prometheus/alertmanager/api"
	"github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/eventrecorder"
	"github.com/prometheus/alertmanager/featurecontrol"
	"github.com/prometheus/alertmanager/inhibit"
	"github.com/prometheus/alertmanager/marker"
	"github.com/prometheus/alertmanager/nflog"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/provider/mem"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/route"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
)

const (
	// alertGCInterval is how often resolved alerts are dropped from a tenant's provider, as
	// Alertmanager's -alerts.gc-interval default.
	alertGCInterval = 30 * time.Minute
	// dispatchMaintenanceInterval is how often empty aggregation groups are removed, as
	// Alertmanager's -dispatch.maintenance-interval default.
	dispatchMaintenanceInterval = 30 * time.Second
)

// instanceOptions are what every tenant's Alertmanager shares, and its tenant.
type instanceOptions struct {
	tenant      string
	templateDir string // the tenant's own, emptied and removed on stop
	externalURL *url.URL
	firewall    *receiverFirewall // nil: receivers may connect anywhere
	retention   time.Duration
	limits      Limits // asked for the tenant's limits at every call

	requestDuration *prometheus.HistogramVec // shared by every tenant's API
	discarded       *prometheus.CounterVec   // the tenant's alerts refused by a limit, by the limit's key
	logger          *slog.Logger

	// replication, if not nil, gets the changes of the silences and the notification log to the
	// tenant's other replicas, whose results are counted in replicationResults.
	replication        Replication
	replicationResults *prometheus.CounterVec
	peerTimeout        time.Duration
}

// instance is one tenant's Alertmanager, made of Alertmanager's own parts as its main package wires
// them. The silences and the notification log live as long as the instance; a new configuration
// rebuilds the routing, inhibition and notification pipeline around them and around the alerts held,
// so nothing is lost. Both are kept here, not inside the pipeline, so that their state can be persisted
// and replicated (they are Alertmanager's cluster.State: MarshalBinary, Merge, SetBroadcast).
//
// An instance is registered before its state is loaded, so that it merges the changes its replicas
// send meanwhile, and is ready once loaded: until then its API and its notifications wait.
type instance struct {
	opts    instanceOptions
	logger  *slog.Logger
	started time.Time
	ready   chan struct{} // closed once the state is loaded and a configuration applied
	stopc   chan struct{} // closed by stop

	// replicas is where the tenant's Alertmanager runs (nil without replication), updated by the
	// syncs; sender sends the state's changes there.
	replicas atomic.Pointer[replicaSet]
	sender   *stateSender

	reg               *prometheus.Registry // the metrics of Alertmanager's parts for this tenant
	silences          *silence.Silences
	silencer          *silence.Silencer
	nflog             *nflog.Log
	alerts            *mem.Alerts
	alertCount        *alertCounter
	marker            marker.GroupMarker
	pipelineBuilder   *notify.PipelineBuilder
	dispatcherMetrics *dispatch.DispatcherMetrics

	// The v2 API is built on the tenant's first request: go-openapi analyzes the API's specification
	// anew for every API object, a third of what an idle tenant costs otherwise (see
	// BenchmarkIdleTenant), and a tenant whose rules fire no alerts may never call it.
	apiMtx      sync.Mutex // guards the fields below
	api         *amapi.API
	apiHandler  http.Handler // the v2 API (and v1's removal notices) under PathPrefix
	apiConfig   *config.Config
	alertStatus func(context.Context, model.LabelSet)

	dispatcher atomic.Pointer[dispatch.Dispatcher]
	// integrations holds the integration names ("webhook", "email") of the applied configuration; the
	// exported notification metrics are limited to them.
	integrations atomic.Pointer[map[string]bool]

	mtx           sync.Mutex // serializes apply and stop; guards the fields below
	applied       tenantConfig
	appliedAt     time.Time
	inhibitor     *inhibit.Inhibitor
	inhibitorDone chan struct{}
	stopped       bool

	persistMtx   sync.Mutex // one write or deletion of the state at a time; guards the fields below
	persisted    bool       // persistedSum is set
	persistedSum uint64     // hash of the state last written to the store
	stateDropped bool       // the tenant's state was deleted: a persist still under way must not write it back
}

// tenantConfig is a configuration ready to apply: as stored (to tell whether it changed) and parsed.
type tenantConfig struct {
	raw      alertstore.AlertConfig
	parsed   *config.Config
	fallback bool // the tenant has none of its own; this is -alertmanager.fallback-config-file
}

var errInstanceStopped = errors.New("the tenant's Alertmanager is stopped")

// newInstance builds a tenant's Alertmanager with empty silences and notification log (mergeState
// loads them); it does not route alerts until the first apply.
func newInstance(opts instanceOptions) (*instance, error) {
	i := &instance{
		opts:    opts,
		logger:  opts.logger,
		started: time.Now(),
		ready:   make(chan struct{}),
		stopc:   make(chan struct{}),
		reg:     prometheus.NewRegistry(),
		marker:  marker.NewGroupMarker(),
	}
	// Event recording is off, as in Alertmanager without the feature flag; it is per process, and a
	// tenant cannot configure it.
	rec := eventrecorder.NopRecorder()
	flags := featurecontrol.NoopFlags{}
	var err error
	i.silences, err = silence.New(silence.Options{
		Retention:     opts.retention,
		Limits:        silenceLimits(opts.limits, opts.tenant),
		Logger:        i.logger.With("component", "silences"),
		Metrics:       i.reg,
		EventRecorder: rec,
	})
	if err != nil {
		return nil, fmt.Errorf("load silences: %w", err)
	}
	i.nflog, err = nflog.New(nflog.Options{
		Retention: opts.retention,
		Logger:    i.logger.With("component", "nflog"),
		Metrics:   i.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("load notification log: %w", err)
	}
	i.silencer = silence.NewSilencer(i.silences, i.logger, rec)
	i.alertCount = newAlertCounter(i.silencer, opts.tenant, opts.limits, opts.discarded)
	// The provider logs each alert refused by a limit at error level; a tenant flooding alerts would
	// flood the log, so it gets none (the discarded-alerts metric counts them).
	i.alerts, err = mem.NewAlerts(context.Background(), alertGCInterval, 0, i.alertCount,
		slog.New(slog.DiscardHandler), rec, i.reg, flags)
	if err != nil {
		return nil, fmt.Errorf("create alert provider: %w", err)
	}
	i.pipelineBuilder = notify.NewPipelineBuilder(i.reg, flags, rec)
	i.dispatcherMetrics = dispatch.NewDispatcherMetrics(false, i.reg, flags)
	if opts.replication != nil {
		i.sender = newStateSender(opts.tenant, opts.replication.Client, i.otherReplicas, i.stateParts,
			opts.replicationResults, i.logger)
		i.silences.SetBroadcast(func(b []byte) { i.broadcast(stateKeySilences, b) })
		i.nflog.SetBroadcast(func(b []byte) { i.broadcast(stateKeyNflog, b) })
	}
	return i, nil
}

// broadcast sends a change of the state to the other replicas. What is merged while the instance
// loads its state comes from the replicas or the bucket: sending it on would only echo it back.
func (i *instance) broadcast(key string, b []byte) {
	if i.isReady() {
		i.sender.enqueue(&alertmanagerpb.StatePart{Key: key, Data: b})
	}
}

func (i *instance) otherReplicas() []string {
	if set := i.replicas.Load(); set != nil {
		return set.others()
	}
	return nil
}

// mergeState merges a part of a state (the whole part, or the records of a change) into the
// silences or the notification log.
func (i *instance) mergeState(key string, data []byte) error {
	switch key {
	case stateKeySilences:
		return i.silences.Merge(data)
	case stateKeyNflog:
		return i.nflog.Merge(data)
	}
	return fmt.Errorf("unknown state part %q, want %q or %q", key, stateKeySilences, stateKeyNflog)
}

// stateParts returns the whole silences and notification log, for a replica.
func (i *instance) stateParts() ([]*alertmanagerpb.StatePart, error) {
	s, err := i.silences.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal silences: %w", err)
	}
	n, err := i.nflog.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal notification log: %w", err)
	}
	return []*alertmanagerpb.StatePart{{Key: stateKeySilences, Data: s}, {Key: stateKeyNflog, Data: n}}, nil
}

func (i *instance) markReady() { close(i.ready) }

func (i *instance) isReady() bool {
	select {
	case <-i.ready:
		return true
	default:
		return false
	}
}

// WaitReady implements notify.Peer: it returns once the state is loaded, so that nothing is sent
// before the notification log knows what the replicas sent.
func (i *instance) WaitReady(ctx context.Context) error {
	select {
	case <-i.ready:
		return nil
	case <-i.stopc:
		return errInstanceStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Position is this replica's rank among the tenant's live replicas, in the ring's order: the
// notification pipeline waits Position peer timeouts before it sends, so that the replicas ahead of it
// send first and the replicated notification log stops the others.
func (i *instance) Position() int {
	if set := i.replicas.Load(); set != nil {
		return set.waitPosition()
	}
	return 0
}

// peerWait is how long a notification waits for the replicas ahead of this one.
func (i *instance) peerWait() time.Duration {
	return time.Duration(i.Position()) * i.opts.peerTimeout
}

// notifyTimeout bounds one notification attempt: the group's interval, at least notify.MinTimeout,
// plus the wait for the replicas ahead.
func (i *instance) notifyTimeout(d time.Duration) time.Duration {
	return max(d, notify.MinTimeout) + i.peerWait()
}

// apiBuildMtx serializes the building of v2 APIs. Every API shares the specification Alertmanager
// analyzes once per process, and the first build expands the schemas of its body parameters in place:
// two tenants' first requests at once would race on them. Once built, an API only reads them.
var apiBuildMtx sync.Mutex

// handler returns the tenant's v2 API, building it on first use with the configuration in effect.
func (i *instance) handler() (http.Handler, error) {
	i.apiMtx.Lock()
	defer i.apiMtx.Unlock()
	if i.apiHandler != nil {
		return i.apiHandler, nil
	}
	if i.apiConfig == nil {
		return nil, errors.New("the tenant's Alertmanager has no configuration applied yet")
	}
	apiBuildMtx.Lock()
	api, err := amapi.New(amapi.Options{
		Alerts:          i.alerts,
		Silences:        i.silences,
		GroupMutedFunc:  i.marker.Muted,
		Logger:          i.logger.With("component", "api"),
		Registry:        i.reg,
		RequestDuration: i.opts.requestDuration,
		GroupFunc:       i.groups,
	})
	apiBuildMtx.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create the Alertmanager API: %w", err)
	}
	api.Update(i.apiConfig, i.alertStatus)
	i.api = api
	i.apiHandler = api.Register(route.New().WithPrefix(PathPrefix), PathPrefix)
	return i.apiHandler, nil
}

// updateAPI gives the API, built or to be built, the configuration in effect and how to tell
// whether an alert is muted.
func (i *instance) updateAPI(cfg *config.Config, alertStatus func(context.Context, model.LabelSet)) {
	i.apiMtx.Lock()
	defer i.apiMtx.Unlock()
	i.apiConfig, i.alertStatus = cfg, alertStatus
	if i.api != nil {
		i.api.Update(cfg, alertStatus)
	}
}

// groups is the API's view of the aggregation groups of the current dispatcher.
func (i *instance) groups(ctx context.Context, routeFilter func(*dispatch.Route) bool, alertFilter func(*alert.Alert, time.Time) bool) (dispatch.AlertGroups, map[model.Fingerprint][]string, error) {
	d := i.dispatcher.Load()
	if d == nil {
		return nil, nil, errors.New("the tenant's Alertmanager has no configuration applied yet")
	}
	return d.Groups(ctx, routeFilter, alertFilter)
}

// stop ends routing and notifying and removes the tenant's template files. The silences and the
// notification log stay readable for a last marshalState.
func (i *instance) stop() {
	i.mtx.Lock()
	defer i.mtx.Unlock()
	if i.stopped {
		return
	}
	i.stopped = true
	close(i.stopc)
	i.dispatcher.Load().Stop()
	i.stopInhibitor()
	i.alerts.Close()
	if i.sender != nil {
		i.sender.stop()
	}
	if err := os.RemoveAll(i.opts.templateDir); err != nil {
		i.logger.Warn("remove template directory", "err", err)
	}
}

// stopInhibitor stops the current inhibitor and waits for its loop to end. Called with mtx held.
func (i *instance) stopInhibitor() {
	if i.inhibitor == nil {
		return
	}
	i.inhibitor.Stop()
	<-i.inhibitorDone
	i.inhibitor, i.inhibitorDone = nil, nil
}

// gc drops expired silences and notification log entries, as Alertmanager's maintenance does before
// each snapshot.
func (i *instance) gc() {
	if _, err := i.silences.GC(); err != nil {
		i.logger.Warn("silences garbage collection", "err", err)
	}
	if _, err := i.nflog.GC(); err != nil {
		i.logger.Warn("notification log garbage collection", "err", err)
	}
}

// marshalState returns the blob of the silences and the notification log, for the store.
func (i *instance) marshalState() ([]byte, error) {
	s, err := i.silences.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal silences: %w", err)
	}
	n, err := i.nflog.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal notification log: %w", err)
	}
	return encodeState(sortRecords(s), sortRecords(n)), nil
}
