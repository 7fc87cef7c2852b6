package app

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/distributor"
	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Targets a user can run.
const (
	TargetAll         = "all"
	TargetDistributor = "distributor"
	TargetIngester    = "ingester"
	TargetQuerier     = "querier"
)

// Internal modules, started as dependencies of the targets.
const (
	moduleServer         = "server"
	moduleRingKV         = "ring-kv"
	moduleRing           = "ring"
	moduleIngesterClient = "ingester-client"
)

// ingesterRingKey is the KV key of the ingester ring descriptor.
const ingesterRingKey = "ingester-ring"

// module is one node of the module graph: its dependencies and how to build it. init returns the
// module's long-running service, or nil when the module only registers handlers.
type module struct {
	deps   []string
	target bool
	init   func(a *App) (services.Service, error)
}

var modules = map[string]module{
	moduleServer:         {init: (*App).initServer},
	moduleRingKV:         {init: (*App).initRingKV},
	moduleRing:           {deps: []string{moduleServer, moduleRingKV}, init: (*App).initRing},
	moduleIngesterClient: {init: (*App).initIngesterClient},
	TargetIngester:       {deps: []string{moduleServer, moduleRingKV, moduleRing}, target: true, init: (*App).initIngester},
	TargetDistributor:    {deps: []string{moduleServer, moduleRing, moduleIngesterClient}, target: true, init: (*App).initDistributor},
	TargetQuerier:        {deps: []string{moduleServer, moduleRing, moduleIngesterClient}, target: true, init: (*App).initQuerier},
	TargetAll:            {deps: []string{TargetIngester, TargetDistributor, TargetQuerier}, target: true},
}

func targetNames() []string {
	var names []string
	for name, m := range modules {
		if m.target {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func parseTargets(s string) ([]string, error) {
	var targets []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if m, ok := modules[t]; !ok || !m.target {
			return nil, fmt.Errorf("%w %q in -target: choose from %s", errUnknownTarget, t, strings.Join(targetNames(), ", "))
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// startOrder lists the targets and all their dependencies, every module after its dependencies.
func startOrder(targets []string) []string {
	var order []string
	var visit func(string)
	visit = func(name string) {
		if slices.Contains(order, name) {
			return
		}
		for _, d := range modules[name].deps {
			visit(d)
		}
		order = append(order, name)
	}
	for _, t := range targets {
		visit(t)
	}
	return order
}

func (a *App) initServer() (services.Service, error) {
	s, err := newServer(a.cfg.Server, a.logger)
	if err != nil {
		return nil, err
	}
	a.server = s
	s.mux.Handle("/{$}", api.IndexPage(a.indexLinks))
	s.mux.HandleFunc("/ready", a.serveReady)
	s.mux.HandleFunc("/services", a.serveServices)
	s.mux.HandleFunc("/config", a.serveConfig)
	s.mux.Handle("/metrics", a.metricsHandler())
	return s, nil
}

func (a *App) initRingKV() (services.Service, error) {
	a.ringKV = inmemory.New(ring.DescCodec{})
	return nil, nil
}

func (a *App) initRing() (services.Service, error) {
	r, err := ring.New(a.cfg.Ring, "ingester", ingesterRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	a.ring = r
	a.server.mux.Handle("/ingester/ring", r)
	a.links = append(a.links, api.Link{Path: "/ingester/ring", Title: "Ingester ring"})
	return r, nil
}

func (a *App) initIngesterClient() (services.Service, error) {
	a.ingesterClients = client.NewPool(a.cfg.IngesterClient, a.reg, a.logger.With("component", "ingester-client"))
	return a.ingesterClients, nil
}

func (a *App) initIngester() (services.Service, error) {
	lcfg := a.cfg.Lifecycler
	if lcfg.Port == 0 {
		lcfg.Port = a.server.grpcPort()
	}
	lifecycler, err := ring.NewLifecycler(lcfg, "ingester", ingesterRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	a.lifecycler = lifecycler
	icfg := a.cfg.Ingester
	icfg.TSDBDir = a.dataPath("tsdb")
	ing, err := ingester.New(icfg, lifecycler, a.discardedSamples, a.reg, a.logger.With("component", "ingester"))
	if err != nil {
		return nil, err
	}
	ingesterpb.RegisterIngesterServer(a.server.grpcServer, ing)
	return ing, nil
}

func (a *App) initDistributor() (services.Service, error) {
	d, err := distributor.New(a.cfg.Distributor, a.cfg.Limits, a.ring, a.ingesterClients,
		a.discardedSamples, a.discardedMetadata, a.reg, a.logger.With("component", "distributor"))
	if err != nil {
		return nil, err
	}
	a.server.mux.Handle("/api/v1/push", a.tenantMiddleware(d))
	return nil, nil
}

func (a *App) initQuerier() (services.Service, error) {
	engine := querier.NewEngine(a.cfg.Querier, prometheus.WrapRegistererWithPrefix("strata_querier_", a.reg), a.logger.With("component", "querier"))
	queryable := querier.NewIngesterQueryable(a.ring, a.ingesterClients)
	promAPI := api.NewPrometheusAPI(engine, queryable, queryable, a.logger.With("component", "querier"))
	promAPI.Register(a.server.mux, "/prometheus/api/v1", a.tenantMiddleware)
	a.links = append(a.links, api.Link{Path: "/prometheus/api/v1/status/buildinfo", Title: "Build information"})
	return nil, nil
}

func (a *App) tenantMiddleware(h http.Handler) http.Handler {
	return tenant.Middleware(a.cfg.MultitenancyEnabled)(h)
}
