package ruler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-metrics/strata/pkg/ruler/rulerpb"
	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Dependencies are what the ruler evaluates rules with. Each function is called once per tenant, when
// the tenant's first groups are loaded.
type Dependencies struct {
	// Engine runs the rules' queries.
	Engine promql.QueryEngine
	// Queryable returns what the tenant's rules query, and restore the 'for' state of alerts from.
	// Its Select calls get a context that carries the tenant (tenant.FromContext).
	Queryable func(tenantID string) storage.Queryable
	// Appendable returns where the tenant's rule results (and ALERTS, ALERTS_FOR_STATE) are written;
	// PusherAppendable makes one from the distributor.
	Appendable func(tenantID string) storage.Appendable
	// Notify, if not nil, sends the tenant's firing and resolved alerts of the rule with expression
	// expr. Nil sends them to -ruler.alertmanager-url, if set.
	Notify func(ctx context.Context, tenantID, expr string, alerts ...*rules.Alert)
	// EvaluationTimeout, if not nil, bounds each of the tenant's rule queries (0: no bound); it is read
	// at every query, so a changed limit applies at once.
	EvaluationTimeout func(tenantID string) time.Duration
	// SendAlerts, if not nil and -ruler.alertmanager-url is empty, delivers the notifier's requests
	// (POSTs of alerts to the Alertmanager v2 API, under the tenant in ctx) in place of HTTP: the app
	// sends them to the tenant's Alertmanager replicas found in the Alertmanager ring.
	SendAlerts SendAlertsFunc
	// Owns, if not nil, says whether this ruler evaluates a group; nil means every group.
	Owns func(tenantID, namespace, group string) bool
	// OwnershipVersion, if not nil, changes whenever Owns may answer differently (the ring changed):
	// the ruler then syncs at once rather than at its next poll, so a dead ruler's groups move within
	// the ring's heartbeat timeout.
	OwnershipVersion func() uint64
	// Peers, if not nil, are the rulers /api/v1/rules and /api/v1/alerts gather groups from; nil
	// means this ruler's only.
	Peers Peers
}

// SendAlertsFunc delivers one request of the notifier and returns the Alertmanager's answer.
type SendAlertsFunc func(ctx context.Context, req *http.Request) (*http.Response, error)

// ringAlertmanagerURL stands for the Alertmanagers of the ring in the notifier, whose requests
// SendAlerts delivers: only its path, the API's, is used.
const ringAlertmanagerURL = "http://alertmanager-ring/alertmanager"

// Peers are the rulers of the ring.
type Peers interface {
	// Addresses returns the gRPC address of every ruler that may evaluate groups, this one included.
	Addresses() ([]string, error)
	// IsLocal says whether addr is this ruler's, which is asked in process.
	IsLocal(addr string) bool
	Client(addr string) (rulerpb.RulerClient, error)
}

// Ruler evaluates the rule groups of every tenant in a rule store: one Prometheus rules.Manager per
// tenant, fed with rule files written from the store every poll interval.
type Ruler struct {
	rulerpb.UnimplementedRulerServer

	cfg     Config
	store   rulestore.Store
	deps    Dependencies
	metrics *metrics
	logger  *slog.Logger
	parser  parser.Parser
	// groupMetrics are Prometheus' per-group rule metrics, shared by every manager and not registered:
	// the groups need them, the ruler exposes its own per tenant.
	groupMetrics *rules.Metrics

	// baseCtx is the parent of every evaluation; Stop cancels it to abort running queries.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	syncMtx sync.Mutex // one SyncRules at a time; guards stopped
	stopped bool

	mtx      sync.RWMutex // guards managers
	managers map[string]*tenantManager

	notifier    *alertNotifier // nil when Dependencies.Notify is set or no Alertmanager URL is
	httpClient  *http.Client   // to the query-frontend
	externalURL *url.URL

	cancelLoop context.CancelFunc
	loopDone   chan struct{}
}

var (
	_ services.Service    = (*Ruler)(nil)
	_ rulerpb.RulerServer = (*Ruler)(nil)
)

// tenantManager is one tenant's rules.Manager.
type tenantManager struct {
	*rules.Manager
	cancel context.CancelFunc
	// loaded is false when the last Update failed, so the next sync loads the files again even if
	// they did not change.
	loaded bool
}

// New returns a ruler over store. cfg.RulePath must be set (the app defaults it from -data.dir).
func New(cfg Config, store rulestore.Store, deps Dependencies, reg prometheus.Registerer, logger *slog.Logger) (*Ruler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.RulePath == "":
		return nil, errors.New("ruler: -ruler.rule-path is not set")
	case store == nil:
		return nil, errors.New("ruler: no rule store")
	case deps.Engine == nil || deps.Queryable == nil || deps.Appendable == nil:
		return nil, errors.New("ruler: a query engine, a queryable and an appendable are required")
	}
	urls, err := parseAlertmanagerURLs(cfg.AlertmanagerURL)
	if err != nil {
		return nil, err
	}
	externalURL, err := url.Parse(cfg.ExternalURL)
	if err != nil {
		return nil, fmt.Errorf("ruler: -ruler.external.url: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Ruler{
		cfg:          cfg,
		store:        store,
		deps:         deps,
		metrics:      newMetrics(reg),
		logger:       logger.With("component", "ruler"),
		parser:       parser.NewParser(parser.Options{}),
		groupMetrics: rules.NewGroupMetrics(nil),
		baseCtx:      ctx,
		cancelBase:   cancel,
		managers:     make(map[string]*tenantManager),
		externalURL:  externalURL,
		httpClient:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	var send SendAlertsFunc
	if len(urls) == 0 && deps.SendAlerts != nil {
		ringURL, _ := url.Parse(ringAlertmanagerURL)
		urls, send = []*url.URL{ringURL}, deps.SendAlerts
	}
	if deps.Notify == nil && len(urls) > 0 {
		if r.notifier, err = newAlertNotifier(cfg, urls, send, reg, r.logger); err != nil {
			return nil, err
		}
		r.deps.Notify = r.notifier.send
	}
	return r, nil
}

// Start loads every tenant's groups once, then syncs them every poll interval until Stop. A store
// that cannot be read at start does not fail it: the next sync tries again.
func (r *Ruler) Start(ctx context.Context) error {
	if err := os.MkdirAll(r.cfg.RulePath, 0o755); err != nil {
		return fmt.Errorf("ruler: create rule directory: %w", err)
	}
	// The version the first sync places groups by, read before it: a change during the sync is seen.
	var version uint64
	if r.deps.OwnershipVersion != nil {
		version = r.deps.OwnershipVersion()
	}
	if err := r.SyncRules(ctx); err != nil {
		r.logger.Warn("first rule sync failed", "err", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancelLoop = cancel
	r.loopDone = make(chan struct{})
	go r.loop(loopCtx, version)
	return nil
}

func (r *Ruler) loop(ctx context.Context, version uint64) {
	defer close(r.loopDone)
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	var ringCheck <-chan time.Time
	if r.deps.OwnershipVersion != nil {
		t := time.NewTicker(r.cfg.RingCheckPeriod)
		defer t.Stop()
		ringCheck = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-ringCheck:
			v := r.deps.OwnershipVersion()
			if v == version {
				continue
			}
			version = v
			r.logger.Debug("ruler ring changed, syncing rule groups")
		}
		if err := r.SyncRules(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("rule sync failed", "err", err)
		}
	}
}

// Stop ends the sync loop, aborts running evaluations and stops every tenant's groups.
func (r *Ruler) Stop(ctx context.Context) error {
	if r.cancelLoop != nil {
		r.cancelLoop()
		select {
		case <-r.loopDone:
		case <-ctx.Done():
			return fmt.Errorf("ruler: stop: %w", ctx.Err())
		}
	}
	r.syncMtx.Lock()
	r.stopped = true
	r.syncMtx.Unlock()

	r.cancelBase()
	if r.notifier != nil {
		defer r.notifier.stop() // after the groups, whose last evaluation may still send
	}
	r.mtx.Lock()
	managers := r.managers
	r.managers = map[string]*tenantManager{}
	r.mtx.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for id, m := range managers {
			wg.Go(func() { r.stopManager(id, m) })
		}
		wg.Wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ruler: stop: %w", ctx.Err())
	}
}

var errStopped = errors.New("ruler: stopped")

// SyncRules makes the evaluated groups those of the store that this ruler owns: new groups start,
// changed ones restart with their state carried over, removed ones stop (and their series get
// staleness markers). A tenant whose groups cannot be read keeps its current ones. The error joins
// every tenant's.
func (r *Ruler) SyncRules(ctx context.Context) error {
	r.syncMtx.Lock()
	defer r.syncMtx.Unlock()
	if r.stopped {
		return errStopped
	}
	err := r.sync(ctx)
	result := "success"
	if err != nil {
		result = "failure"
	}
	r.metrics.syncs.WithLabelValues(result).Inc()
	return err
}

func (r *Ruler) sync(ctx context.Context) error {
	tenants, err := r.store.ListTenants(ctx)
	if err != nil {
		return fmt.Errorf("ruler: list tenants: %w", err)
	}
	desired := make(map[string]map[string][]rulefmt.RuleGroup, len(tenants))
	unread := make(map[string]bool) // tenants left as they are
	var errs []error
	for _, id := range tenants {
		if err := tenant.ValidateID(id); err != nil {
			// It would become a path under the rule directory.
			r.logger.Warn("skipping rules of invalid tenant ID", "tenant", id, "err", err)
			continue
		}
		byNamespace, err := r.store.ListRuleGroups(ctx, id, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", id, err))
			unread[id] = true
			continue
		}
		if groups := r.evaluableGroups(id, byNamespace); len(groups) > 0 {
			desired[id] = groups
		}
	}
	// Tenants are loaded one after another: loading parses every rule, which is cheap next to
	// evaluating them, and a failure of one tenant does not hold back the others.
	for id, groups := range desired {
		if err := r.syncTenant(id, groups); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", id, err))
		}
	}

	r.mtx.Lock()
	var gone []string
	for id := range r.managers {
		if desired[id] == nil && !unread[id] {
			gone = append(gone, id)
		}
	}
	stopping := make(map[string]*tenantManager, len(gone))
	for _, id := range gone {
		stopping[id] = r.managers[id]
		delete(r.managers, id)
	}
	r.mtx.Unlock()
	// Stopped outside the lock: stopping waits for running evaluations, which the API must not.
	for id, m := range stopping {
		r.stopManager(id, m)
		r.logger.Info("stopped rule evaluation of tenant without rule groups", "tenant", id)
	}
	if err := r.removeOtherTenantDirs(desired, unread); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// evaluableGroups returns the groups of byNamespace that this ruler owns and that load. A group that
// would not load is left out, not loaded: rules.Manager loads a tenant's files all or nothing, so
// one bad group would stop the changes to all the others.
func (r *Ruler) evaluableGroups(tenantID string, byNamespace map[string][]rulefmt.RuleGroup) map[string][]rulefmt.RuleGroup {
	out := make(map[string][]rulefmt.RuleGroup, len(byNamespace))
	for ns, groups := range byNamespace {
		seen := make(map[string]bool, len(groups))
		var keep []rulefmt.RuleGroup
		for _, g := range groups {
			if r.deps.Owns != nil && !r.deps.Owns(tenantID, ns, g.Name) {
				continue
			}
			if seen[g.Name] {
				r.logger.Warn("skipping rule group with the name of another in its namespace", "tenant", tenantID, "namespace", ns, "group", g.Name)
				continue
			}
			if err := validateRuleGroup(g, r.parser); err != nil {
				r.logger.Warn("skipping invalid rule group", "tenant", tenantID, "namespace", ns, "group", g.Name, "err", err)
				continue
			}
			seen[g.Name] = true
			keep = append(keep, g)
		}
		if len(keep) > 0 {
			out[ns] = keep
		}
	}
	return out
}

// syncTenant writes the tenant's rule files and loads them into its manager, created on first use.
func (r *Ruler) syncTenant(tenantID string, groups map[string][]rulefmt.RuleGroup) error {
	files, changed, err := writeRuleFiles(filepath.Join(r.cfg.RulePath, tenantID), groups)
	if err != nil {
		return err
	}
	r.mtx.Lock()
	m, ok := r.managers[tenantID]
	if !ok {
		m = r.newManager(tenantID)
		r.managers[tenantID] = m
	}
	r.mtx.Unlock()
	if ok && m.loaded && !changed {
		return nil
	}
	// Update stops changed groups after their running iteration, so it can take up to a query's time.
	err = m.Update(r.cfg.EvaluationInterval, files, labels.EmptyLabels(), "", r.metrics.evalIteration(tenantID))
	m.loaded = err == nil
	if err != nil {
		return fmt.Errorf("load rule files: %w", err)
	}
	r.metrics.groupsLoaded.WithLabelValues(tenantID).Set(float64(len(m.RuleGroups())))
	return nil
}

// newManager returns a running manager for the tenant, without groups.
func (r *Ruler) newManager(tenantID string) *tenantManager {
	// Every evaluation, and the restore of alert state, runs under this context, so every query the
	// groups make carries the tenant.
	ctx, cancel := context.WithCancel(tenant.NewContext(r.baseCtx, tenantID))
	queryable := r.deps.Queryable(tenantID)
	m := rules.NewManager(&rules.ManagerOptions{
		NameValidationScheme: nameScheme,
		ExternalURL:          r.externalURL,
		QueryFunc:            r.queryFunc(tenantID, queryable),
		NotifyFunc:           r.notifyFunc(tenantID),
		Context:              ctx,
		Appendable:           r.deps.Appendable(tenantID),
		Queryable:            queryable,
		Logger:               r.logger.With("tenant", tenantID),
		OutageTolerance:      r.cfg.ForOutageTolerance,
		ForGracePeriod:       r.cfg.ForGracePeriod,
		ResendDelay:          r.cfg.ResendDelay,
		// Restore the 'for' state of groups added later too, not only of the first ones: a group
		// that moves here from another ruler keeps its pending alerts' clocks.
		RestoreNewRuleGroups: true,
		Metrics:              r.groupMetrics,
		Parser:               r.parser,
	})
	go m.Run()
	return &tenantManager{Manager: m, cancel: cancel}
}

// queryFunc runs the tenant's rule queries with the tenant in their context and its evaluation
// timeout as their deadline.
func (r *Ruler) queryFunc(tenantID string, queryable storage.Queryable) rules.QueryFunc {
	query := rules.EngineQueryFunc(r.deps.Engine, queryable)
	if r.cfg.QueryFrontendAddress != "" {
		query = remoteQueryFunc(r.httpClient, r.cfg.QueryFrontendAddress, tenantID, maxRemoteAnswerBytes)
	}
	return func(ctx context.Context, qs string, t time.Time) (promql.Vector, error) {
		ctx = tenant.NewContext(ctx, tenantID)
		if r.deps.EvaluationTimeout == nil {
			return query(ctx, qs, t)
		}
		if timeout := r.deps.EvaluationTimeout(tenantID); timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return query(ctx, qs, t)
	}
}

// notifyFunc passes the tenant's alerts to Dependencies.Notify. rules calls it after every
// evaluation of an alerting rule, mostly with nothing to send.
func (r *Ruler) notifyFunc(tenantID string) rules.NotifyFunc {
	notify := r.deps.Notify
	return func(ctx context.Context, expr string, alerts ...*rules.Alert) {
		if notify == nil || len(alerts) == 0 {
			return
		}
		notify(ctx, tenantID, expr, alerts...)
	}
}

// stopManager stops a tenant's evaluations and forgets its files and metrics.
func (r *Ruler) stopManager(tenantID string, m *tenantManager) {
	m.cancel() // running queries end now rather than at their timeout
	// Unloading the groups first drops their series from the shared group metrics, which Stop leaves.
	// Their staleness markers, written two intervals after a group stops, are not: Stop cancels them,
	// and the tenant's recorded series end by the query lookback instead.
	if err := m.Update(r.cfg.EvaluationInterval, nil, labels.EmptyLabels(), "", nil); err != nil {
		r.logger.Warn("unloading rule groups failed", "tenant", tenantID, "err", err)
	}
	m.Stop()
	if r.notifier != nil {
		r.notifier.stopTenant(tenantID)
	}
	r.metrics.deleteTenant(tenantID)
	if err := os.RemoveAll(filepath.Join(r.cfg.RulePath, tenantID)); err != nil {
		r.logger.Warn("removing rule files failed", "tenant", tenantID, "err", err)
	}
}

// removeOtherTenantDirs removes from the rule directory whatever is not the directory of a tenant
// being evaluated: tenants gone while the ruler was down, or files that are not the ruler's.
func (r *Ruler) removeOtherTenantDirs(desired map[string]map[string][]rulefmt.RuleGroup, unread map[string]bool) error {
	entries, err := os.ReadDir(r.cfg.RulePath)
	if err != nil {
		return fmt.Errorf("list rule directory: %w", err)
	}
	for _, e := range entries {
		if desired[e.Name()] != nil || unread[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(r.cfg.RulePath, e.Name())); err != nil {
			return fmt.Errorf("clean rule directory: %w", err)
		}
	}
	return nil
}

// ruleGroups returns the tenant's groups being evaluated, or none.
func (r *Ruler) ruleGroups(tenantID string) []*rules.Group {
	r.mtx.RLock()
	m := r.managers[tenantID]
	r.mtx.RUnlock()
	if m == nil {
		return nil
	}
	return m.RuleGroups()
}
