package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/alertmanager/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/services"
)

// Paths the multi-tenant Alertmanager serves (see ServeHTTP and StatusHandler).
const (
	// PathPrefix is where each tenant's Alertmanager is served: the v2 API under PathPrefix+"/api/v2/",
	// the UI at PathPrefix+"/".
	PathPrefix = "/alertmanager"
	// ConfigPath is the configuration API (GET, POST, DELETE).
	ConfigPath = "/api/v1/alerts"
	// StatusPath is the page listing the tenants whose Alertmanager runs here.
	StatusPath = "/multitenant_alertmanager/status"
)

// loadConcurrency is how many configurations a sync reads from the store at once.
const loadConcurrency = 8

// MultitenantAlertmanager runs an Alertmanager for each tenant with a configuration in the store (and,
// with a fallback configuration, for each tenant that uses it), keeps them in step with the store, and
// serves their APIs and the configuration API.
//
// A tenant without a configuration of its own gets an Alertmanager with the fallback configuration on
// its first request (an alert or an API call), as in Mimir, not at the first sync: most tenants never
// use an Alertmanager, and an idle one still costs memory. That instance is kept until the process
// stops; after a restart it starts again on the next request, with its silences restored.
type MultitenantAlertmanager struct {
	alertmanagerpb.UnimplementedAlertmanagerServer

	// Replication, if not nil, places each tenant's Alertmanager on its replicas: this instance runs
	// the tenants it is a replica of, replicates their state with the other replicas, and sends the
	// API calls it receives to the tenant's replicas. Set it before Start.
	Replication Replication
	// Owns, if not nil and Replication is nil, says whether this instance runs the tenant's
	// Alertmanager alone; nil means every tenant. Set it before Start.
	Owns func(tenantID string) bool

	cfg         Config
	store       alertstore.Store
	limits      Limits
	externalURL *url.URL
	firewall    *receiverFirewall // nil when -alertmanager.receivers-firewall-* block nothing
	fallback    *tenantConfig     // nil without -alertmanager.fallback-config-file
	metrics     *metrics
	logger      *slog.Logger

	syncMtx sync.Mutex // one change of the set of instances at a time; guards the fields below
	stopped bool
	// failed holds the last configuration of each tenant that could not be applied, so that the
	// next syncs do not parse it and log it again until it changes.
	failed map[string]alertstore.AlertConfig

	mtx       sync.RWMutex // guards instances
	instances map[string]*instance

	// syncedVersion is the Replication version the last complete sync placed the tenants by.
	syncedVersion atomic.Uint64
	// forwards tracks the API calls sent to replicas that outlive their request (see sendToAll);
	// once forwardsClosed, none starts.
	forwards       sync.WaitGroup
	forwardsMtx    sync.Mutex
	forwardsClosed bool

	cancelLoop context.CancelFunc
	loopDone   chan struct{}
}

var (
	_ services.Service                  = (*MultitenantAlertmanager)(nil)
	_ alertmanagerpb.AlertmanagerServer = (*MultitenantAlertmanager)(nil)
)

var (
	errStopped       = errors.New("the Alertmanager is stopping")
	errNotConfigured = errors.New("the Alertmanager is not configured")
	// errNotReplica is a tenant this instance is not a replica of, asked here by a forwarded call
	// sent with another view of the ring.
	errNotReplica = errors.New("the tenant's Alertmanager does not run on this instance")
	// errStateUnavailable fails a start that may succeed at the next sync, unlike a configuration
	// that cannot be applied.
	errStateUnavailable = errors.New("the tenant's state could be read neither from its replicas nor from the bucket")
)

// New returns a multi-tenant Alertmanager over store, with the per-tenant limits of limits (nil: the
// flags' defaults for every tenant). cfg.DataDir must be set (the app defaults it from -data.dir).
func New(cfg Config, store alertstore.Store, limits Limits, reg prometheus.Registerer, logger *slog.Logger) (*MultitenantAlertmanager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.DataDir == "":
		return nil, errors.New("alertmanager: -alertmanager.storage.path is not set")
	case store == nil:
		return nil, errors.New("alertmanager: no configuration store")
	}
	externalURL, err := parseExternalURL(cfg.ExternalURL)
	if err != nil {
		return nil, err
	}
	firewall, err := newReceiverFirewall(cfg.ReceiversFirewallBlockCIDRNetworks, cfg.ReceiversFirewallBlockPrivateAddresses)
	if err != nil {
		return nil, err
	}
	if limits == nil {
		limits = defaultLimits()
	}
	logger = logger.With("component", "alertmanager")
	am := &MultitenantAlertmanager{
		cfg:         cfg,
		store:       store,
		limits:      limits,
		externalURL: externalURL,
		firewall:    firewall,
		metrics:     newMetrics(reg),
		logger:      logger,
		failed:      make(map[string]alertstore.AlertConfig),
		instances:   make(map[string]*instance),
	}
	if cfg.FallbackConfigFile != "" {
		if am.fallback, err = loadFallback(cfg.FallbackConfigFile, externalURL, firewall, logger); err != nil {
			return nil, err
		}
	}
	reg.MustRegister(newTenantCollector(am.instancesSnapshot, logger))
	return am, nil
}

// loadFallback reads the operator's fallback configuration. Unlike a tenant's, it may use the files
// and credentials of the process; it has no template files, so it cannot name templates. Its receivers
// run for tenants, so the firewall applies to them as to a tenant's.
func loadFallback(path string, externalURL *url.URL, fw *receiverFirewall, logger *slog.Logger) (*tenantConfig, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: read -alertmanager.fallback-config-file: %w", err)
	}
	parsed, err := config.Load(string(content))
	if err == nil && len(parsed.Templates) > 0 {
		err = errors.New("it names templates, but a fallback configuration has no template files")
	}
	if err == nil {
		tmpl, tmplErr := loadTemplates("", nil, externalURL)
		if err = tmplErr; err == nil {
			_, err = buildReceivers(parsed, tmpl, fw, logger)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("alertmanager: -alertmanager.fallback-config-file %s: %w", path, err)
	}
	return &tenantConfig{raw: alertstore.AlertConfig{AlertmanagerConfig: string(content)}, parsed: parsed, fallback: true}, nil
}

// Start clears the data directory of what a previous run left, applies the store's configurations
// once, then syncs every poll interval and persists every tenant's state every persist interval until
// Stop. A store that cannot be read at start does not fail it: the next sync tries again.
func (am *MultitenantAlertmanager) Start(ctx context.Context) error {
	if err := resetDir(am.cfg.DataDir); err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	if err := am.SyncConfigs(ctx); err != nil {
		am.logger.Warn("first configuration sync failed", "err", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	am.cancelLoop = cancel
	am.loopDone = make(chan struct{})
	go am.loop(loopCtx)
	return nil
}

// resetDir makes dir exist and be empty: template directories of tenants that stopped while the
// process was down would otherwise stay forever.
func resetDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read data directory: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clear data directory: %w", err)
		}
	}
	return nil
}

func (am *MultitenantAlertmanager) loop(ctx context.Context) {
	defer close(am.loopDone)
	poll := time.NewTicker(am.cfg.PollInterval)
	defer poll.Stop()
	persist := time.NewTicker(am.cfg.PersistInterval)
	defer persist.Stop()
	var ringCheck <-chan time.Time
	if am.Replication != nil {
		t := time.NewTicker(am.cfg.RingCheckPeriod)
		defer t.Stop()
		ringCheck = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-ringCheck:
			if am.Replication.Version() == am.syncedVersion.Load() {
				continue
			}
			am.logger.Debug("replicas changed, syncing tenants")
		case <-persist.C:
			am.persistAll(ctx)
			continue
		}
		if err := am.SyncConfigs(ctx); err != nil && ctx.Err() == nil {
			am.logger.Warn("configuration sync failed", "err", err)
		}
	}
}

// Stop ends the loops, then stops every tenant's Alertmanager and writes its state to the store.
func (am *MultitenantAlertmanager) Stop(ctx context.Context) error {
	if am.cancelLoop != nil {
		am.cancelLoop()
		select {
		case <-am.loopDone:
		case <-ctx.Done():
			return fmt.Errorf("alertmanager: stop: %w", ctx.Err())
		}
	}
	am.syncMtx.Lock()
	defer am.syncMtx.Unlock()
	am.stopped = true
	am.forwardsMtx.Lock()
	am.forwardsClosed = true
	am.forwardsMtx.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Alerts still being sent to replicas are delivered (each call is bounded) before this
		// instance's Alertmanagers stop.
		am.forwards.Wait()
		var wg sync.WaitGroup
		sem := make(chan struct{}, loadConcurrency)
		for id := range am.instancesSnapshot() {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				// The state is written even when ctx has expired: losing silences is worse than a
				// late stop.
				am.stopTenant(context.WithoutCancel(ctx), id, true)
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("alertmanager: stop: %w", ctx.Err())
	}
}

func (am *MultitenantAlertmanager) instancesSnapshot() map[string]*instance {
	am.mtx.RLock()
	defer am.mtx.RUnlock()
	return maps.Clone(am.instances)
}

func (am *MultitenantAlertmanager) instance(tenantID string) *instance {
	am.mtx.RLock()
	defer am.mtx.RUnlock()
	return am.instances[tenantID]
}

// SyncConfigs makes the running Alertmanagers those of the store's configurations that this instance
// owns (is a replica of, with Replication): new tenants start (with the state of their other replicas
// and of the bucket), changed configurations are applied in place, tenants whose configuration is
// gone switch to the fallback configuration or stop (and their state is deleted), and tenants owned
// elsewhere stop (and their state is persisted for the new owner). Running tenants learn their
// current replicas. A tenant whose configuration cannot be read or applied, or whose replicas cannot
// be found, keeps what it runs. The error joins every tenant's.
func (am *MultitenantAlertmanager) SyncConfigs(ctx context.Context) error {
	err := am.syncConfigs(ctx)
	result := "success"
	if err != nil {
		result = "failure"
	}
	am.metrics.syncs.WithLabelValues(result).Inc()
	return err
}

func (am *MultitenantAlertmanager) syncConfigs(ctx context.Context) error {
	var version uint64
	if am.Replication != nil {
		// Read before the replicas, so that a change during the sync makes the next check sync again.
		version = am.Replication.Version()
	}
	tenants, err := am.store.ListTenants(ctx)
	if err != nil {
		return err
	}
	placements := make(map[string]placement)
	var placementErrs []error
	place := func(id string) placement {
		p, ok := placements[id]
		if !ok {
			p.owned, p.replicas, p.err = am.placement(id)
			if p.err != nil {
				placementErrs = append(placementErrs, p.err)
			}
			placements[id] = p
		}
		return p
	}
	var owned []string
	for _, id := range tenants {
		if place(id).owned {
			owned = append(owned, id)
		}
	}
	configs, unreadable, errs := am.readConfigs(ctx, owned)

	am.syncMtx.Lock()
	defer am.syncMtx.Unlock()
	if am.stopped {
		return errStopped
	}
	for id, raw := range configs {
		if err := am.syncTenant(ctx, id, raw, placements[id].replicas); err != nil {
			errs = append(errs, err)
		}
	}
	for id, inst := range am.instancesSnapshot() {
		p := place(id)
		if p.err != nil {
			continue // keep it as it is until its replicas are known
		}
		inst.replicas.Store(p.replicas)
		if _, ok := configs[id]; ok || unreadable[id] {
			continue
		}
		applied, _ := inst.appliedConfig()
		switch {
		case !p.owned:
			am.stopTenant(ctx, id, true)
		case applied.fallback:
		case am.fallback != nil:
			// The tenant deleted its configuration: it gets the fallback, and keeps its silences.
			if err := inst.apply(*am.fallback); err != nil {
				errs = append(errs, fmt.Errorf("tenant %s: apply the fallback configuration: %w", id, err))
			}
		default:
			am.stopTenant(ctx, id, false)
		}
	}
	for id := range am.failed {
		if _, ok := configs[id]; !ok {
			delete(am.failed, id)
		}
	}
	if len(placementErrs) == 0 {
		am.syncedVersion.Store(version)
	}
	return errors.Join(append(errs, placementErrs...)...)
}

// placement is where a tenant's Alertmanager runs, as a sync found it.
type placement struct {
	owned    bool
	replicas *replicaSet // nil without Replication
	err      error
}

// readConfigs reads the configurations of tenants, loadConcurrency at a time. Tenants whose
// configuration was deleted since the listing are left out; those whose read failed are in unreadable.
func (am *MultitenantAlertmanager) readConfigs(ctx context.Context, tenants []string) (map[string]alertstore.AlertConfig, map[string]bool, []error) {
	cfgs := make([]alertstore.AlertConfig, len(tenants))
	errs := make([]error, len(tenants))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(loadConcurrency, len(tenants)) {
		wg.Go(func() {
			for i := range next {
				cfgs[i], errs[i] = am.store.GetConfig(ctx, tenants[i])
			}
		})
	}
	for i := range tenants {
		next <- i
	}
	close(next)
	wg.Wait()

	configs := make(map[string]alertstore.AlertConfig, len(tenants))
	unreadable := make(map[string]bool)
	var failures []error
	for i, id := range tenants {
		switch {
		case errors.Is(errs[i], alertstore.ErrNotFound):
		case errs[i] != nil:
			unreadable[id] = true
			failures = append(failures, errs[i])
		default:
			configs[id] = cfgs[i]
		}
	}
	return configs, unreadable, failures
}

// syncTenant applies raw to the tenant's Alertmanager, starting it on replicas if needed, unless it is
// already in effect or already failed. Called with syncMtx held.
func (am *MultitenantAlertmanager) syncTenant(ctx context.Context, id string, raw alertstore.AlertConfig, replicas *replicaSet) error {
	inst := am.instance(id)
	if inst != nil {
		if applied, _ := inst.appliedConfig(); !applied.fallback && sameConfig(applied.raw, raw) {
			return nil
		}
	}
	if failed, ok := am.failed[id]; ok && sameConfig(failed, raw) {
		return nil
	}
	err := am.applyTenant(ctx, id, inst, raw, replicas)
	am.metrics.lastApplyOK.WithLabelValues(id).Set(boolToFloat(err == nil))
	if err != nil {
		if !errors.Is(err, errStateUnavailable) {
			am.failed[id] = raw
		}
		am.logger.Warn("tenant configuration not applied", "tenant", id, "err", err)
		return fmt.Errorf("tenant %s: %w", id, err)
	}
	delete(am.failed, id)
	return nil
}

func (am *MultitenantAlertmanager) applyTenant(ctx context.Context, id string, inst *instance, raw alertstore.AlertConfig, replicas *replicaSet) error {
	parsed, err := parseTenantConfig(raw, am.limits.AlertmanagerMaxTemplatesCount(id))
	if err != nil {
		return err
	}
	tc := tenantConfig{raw: raw, parsed: parsed}
	if inst == nil {
		return am.startTenant(ctx, id, tc, replicas)
	}
	return inst.apply(tc)
}

func sameConfig(a, b alertstore.AlertConfig) bool {
	return a.AlertmanagerConfig == b.AlertmanagerConfig && maps.Equal(a.TemplateFiles, b.TemplateFiles)
}

func boolToFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// startTenant starts the tenant's Alertmanager with tc, on replicas (nil without Replication). It
// takes the changes its replicas send from the moment it is registered, then loads the state of the
// replicas and of the bucket (see loadState) and applies tc; only then does it serve. Called with
// syncMtx held.
func (am *MultitenantAlertmanager) startTenant(ctx context.Context, id string, tc tenantConfig, replicas *replicaSet) error {
	inst, err := newInstance(instanceOptions{
		tenant:             id,
		templateDir:        filepath.Join(am.cfg.DataDir, id, "templates"),
		externalURL:        am.externalURL,
		firewall:           am.firewall,
		retention:          am.cfg.Retention,
		limits:             am.limits,
		requestDuration:    am.metrics.requestDuration,
		discarded:          am.metrics.alertsDiscarded.MustCurryWith(prometheus.Labels{"tenant": id}),
		logger:             am.logger.With("tenant", id),
		replication:        am.Replication,
		replicationResults: am.metrics.stateReplications,
		peerTimeout:        am.cfg.PeerTimeout,
	})
	if err != nil {
		return err
	}
	inst.replicas.Store(replicas)
	am.mtx.Lock()
	am.instances[id] = inst
	am.mtx.Unlock()
	err = am.loadState(ctx, id, inst)
	if err == nil {
		err = inst.apply(tc)
	}
	if err != nil {
		am.mtx.Lock()
		delete(am.instances, id)
		am.mtx.Unlock()
		inst.stop()
		return err
	}
	inst.markReady()
	am.logger.Info("tenant Alertmanager started", "tenant", id, "fallback", tc.fallback)
	return nil
}

// stopTenant stops the tenant's Alertmanager, then writes its state to the store (keepState) or
// deletes it (the tenant's configuration is gone).
func (am *MultitenantAlertmanager) stopTenant(ctx context.Context, id string, keepState bool) {
	am.mtx.Lock()
	inst := am.instances[id]
	delete(am.instances, id)
	am.mtx.Unlock()
	if inst == nil {
		return
	}
	inst.stop()
	if keepState {
		am.persist(ctx, id, inst)
	} else {
		inst.persistMtx.Lock()
		inst.stateDropped = true
		if err := am.store.DeleteState(ctx, id); err != nil {
			am.logger.Warn("delete tenant state", "tenant", id, "err", err)
		}
		inst.persistMtx.Unlock()
	}
	am.metrics.deleteTenant(id)
	if err := os.RemoveAll(filepath.Join(am.cfg.DataDir, id)); err != nil {
		am.logger.Warn("remove tenant directory", "tenant", id, "err", err)
	}
	am.logger.Info("tenant Alertmanager stopped", "tenant", id, "state_kept", keepState)
}

// instanceFor returns the tenant's Alertmanager once it is ready, starting it with the fallback
// configuration when the tenant has none of its own.
func (am *MultitenantAlertmanager) instanceFor(ctx context.Context, id string) (*instance, error) {
	if inst := am.instance(id); inst != nil {
		return inst, inst.WaitReady(ctx)
	}
	owned, replicas, err := am.placement(id)
	switch {
	case err != nil:
		return nil, err
	case !owned && am.Replication != nil:
		return nil, errNotReplica
	case !owned || am.fallback == nil:
		return nil, errNotConfigured
	}
	am.syncMtx.Lock()
	defer am.syncMtx.Unlock()
	if am.stopped {
		return nil, errStopped
	}
	if inst := am.instance(id); inst != nil {
		return inst, inst.WaitReady(ctx)
	}
	if err := am.startTenant(ctx, id, *am.fallback, replicas); err != nil {
		return nil, fmt.Errorf("start the Alertmanager with the fallback configuration: %w", err)
	}
	return am.instance(id), nil
}

// persistAll drops expired silences and notification log entries of every tenant and writes the
// state of those whose state changed. Of a tenant's replicas, the first writes it: they hold the same
// state, and one write is enough.
func (am *MultitenantAlertmanager) persistAll(ctx context.Context) {
	for id, inst := range am.instancesSnapshot() {
		if ctx.Err() != nil {
			return
		}
		inst.gc()
		if inst.Position() == 0 {
			am.persist(ctx, id, inst)
		}
	}
}

// persist writes the tenant's state unless it is what was written last. An instance still loading
// its state is skipped: what it holds is not yet the tenant's state.
func (am *MultitenantAlertmanager) persist(ctx context.Context, id string, inst *instance) {
	inst.persistMtx.Lock()
	defer inst.persistMtx.Unlock()
	if inst.stateDropped || !inst.isReady() {
		return
	}
	state, err := inst.marshalState()
	if err != nil {
		am.metrics.persists.WithLabelValues("failure").Inc()
		am.logger.Error("marshal tenant state", "tenant", id, "err", err)
		return
	}
	sum := xxhash.Sum64(state)
	if inst.persisted && sum == inst.persistedSum {
		return
	}
	if err := am.store.SetState(ctx, id, state); err != nil {
		am.metrics.persists.WithLabelValues("failure").Inc()
		am.logger.Warn("write tenant state", "tenant", id, "err", err)
		return
	}
	am.metrics.persists.WithLabelValues("success").Inc()
	inst.persisted, inst.persistedSum = true, sum
}
