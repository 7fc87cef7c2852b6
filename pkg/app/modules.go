package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/auth"
	"github.com/strata-metrics/strata/pkg/compactor"
	"github.com/strata-metrics/strata/pkg/distributor"
	"github.com/strata-metrics/strata/pkg/frontend"
	"github.com/strata-metrics/strata/pkg/frontend/frontendpb"
	"github.com/strata-metrics/strata/pkg/frontend/querymiddleware"
	"github.com/strata-metrics/strata/pkg/frontend/querysharding"
	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/querier/worker"
	"github.com/strata-metrics/strata/pkg/queryui"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/etcd"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
	"github.com/strata-metrics/strata/pkg/ring/kv/memberlist"
	"github.com/strata-metrics/strata/pkg/ring/kv/multi"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/storegateway"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/util/refusals"
)

// Targets a user can run.
const (
	TargetAll          = "all"
	TargetDistributor  = "distributor"
	TargetIngester     = "ingester"
	TargetQuerier      = "querier"
	TargetCompactor    = "compactor"
	TargetStoreGateway = "store-gateway"
	TargetFrontend     = "query-frontend"
	TargetRuler        = "ruler"
	TargetAlertmanager = "alertmanager"
)

// Internal modules, started as dependencies of the targets.
const (
	moduleServer             = "server"
	moduleMemberlistKV       = "memberlist-kv"
	moduleRingKV             = "ring-kv"
	moduleRing               = "ring"
	moduleDistributorRing    = "distributor-ring"
	moduleIngesterClient     = "ingester-client"
	moduleBucket             = "bucket"
	moduleStoreGatewayRing   = "store-gateway-ring"
	moduleStoreGatewayClient = "store-gateway-client"
	moduleRuntimeConfig      = "runtime-config"
	moduleDistributorService = "distributor-service"
	moduleQueryable          = "queryable"
	moduleRulerClient        = "ruler-client"
	moduleAlertmanagerClient = "alertmanager-client"
)

// KV keys of the ring descriptors.
const (
	ingesterRingKey     = "ingester-ring"
	distributorRingKey  = "distributor-ring"
	storeGatewayRingKey = "store-gateway-ring"
	rulerRingKey        = "ruler-ring"
)

// module is one node of the module graph: its dependencies and how to build it. init returns the
// module's long-running service, or nil when the module only registers handlers.
type module struct {
	deps   []string
	target bool
	init   func(a *App) (services.Service, error)
}

var modules = map[string]module{
	moduleServer:             {init: (*App).initServer},
	moduleMemberlistKV:       {deps: []string{moduleServer}, init: (*App).initMemberlistKV},
	moduleRingKV:             {deps: []string{moduleMemberlistKV}, init: (*App).initRingKV},
	moduleRing:               {deps: []string{moduleServer, moduleRingKV}, init: (*App).initRing},
	moduleDistributorRing:    {deps: []string{moduleServer, moduleRingKV}, init: (*App).initDistributorRing},
	moduleIngesterClient:     {init: (*App).initIngesterClient},
	moduleBucket:             {init: (*App).initBucket},
	moduleRuntimeConfig:      {deps: []string{moduleServer}, init: (*App).initRuntimeConfig},
	TargetIngester:           {deps: []string{moduleServer, moduleRuntimeConfig, moduleRingKV, moduleRing, moduleBucket}, target: true, init: (*App).initIngester},
	moduleDistributorService: {deps: []string{moduleServer, moduleRuntimeConfig, moduleRing, moduleDistributorRing, moduleIngesterClient}, init: (*App).initDistributorService},
	TargetDistributor:        {deps: []string{moduleDistributorService}, target: true, init: (*App).initDistributor},
	moduleQueryable:          {deps: []string{moduleServer, moduleRuntimeConfig, moduleRing, moduleIngesterClient, moduleBucket, moduleStoreGatewayRing, moduleStoreGatewayClient}, init: (*App).initQueryable},
	TargetQuerier:            {deps: []string{moduleQueryable}, target: true, init: (*App).initQuerier},
	moduleRulerClient:        {init: (*App).initRulerClient},
	TargetRuler:              {deps: []string{moduleServer, moduleRuntimeConfig, moduleRingKV, moduleBucket, moduleDistributorService, moduleQueryable, moduleRulerClient, moduleAlertmanagerClient}, target: true, init: (*App).initRuler},
	moduleStoreGatewayRing:   {deps: []string{moduleServer, moduleRingKV}, init: (*App).initStoreGatewayRing},
	moduleStoreGatewayClient: {init: (*App).initStoreGatewayClient},
	TargetStoreGateway:       {deps: []string{moduleServer, moduleRuntimeConfig, moduleRingKV, moduleBucket, moduleStoreGatewayRing}, target: true, init: (*App).initStoreGateway},
	TargetCompactor:          {deps: []string{moduleServer, moduleRuntimeConfig, moduleRingKV, moduleBucket}, target: true, init: (*App).initCompactor},
	TargetFrontend:           {deps: []string{moduleServer, moduleRuntimeConfig, moduleBucket}, target: true, init: (*App).initFrontend},
	moduleAlertmanagerClient: {init: (*App).initAlertmanagerClient},
	TargetAlertmanager:       {deps: []string{moduleServer, moduleRuntimeConfig, moduleRingKV, moduleBucket, moduleAlertmanagerClient}, target: true, init: (*App).initAlertmanager},
	TargetAll:                {deps: []string{TargetIngester, TargetDistributor, TargetFrontend, TargetQuerier, TargetCompactor, TargetStoreGateway, TargetAlertmanager, TargetRuler}, target: true},
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
	authn := auth.New(a.cfg.Auth, a.reg, a.logger.With("component", "auth"))
	s, err := newServer(a.cfg.Server, authn, refusals.New(a.cfg.Server.Refusals, a.reg), a.logger)
	if err != nil {
		return nil, err
	}
	a.server = s
	s.mux.Handle("/{$}", api.IndexPage(a.indexLinks))
	s.mux.HandleFunc("/ready", a.serveReady)
	s.mux.HandleFunc("/services", a.serveServices)
	s.mux.HandleFunc("/config", a.serveConfig)
	s.mux.Handle("/metrics", a.metricsHandler())
	// Profiles justify hot-path changes (docs/benchmarks.md); they expose no tenant data.
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.Handle("/debug/pprof/cmdline", maskedCmdline(a.flags, os.Args))
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return s, nil
}

// initMemberlistKV starts gossip when a ring is kept in memberlist; one KV serves every ring of the process.
func (a *App) initMemberlistKV() (services.Service, error) {
	if !a.usesMemberlist(a.cfg.RingStore) && !a.usesMemberlist(a.haTrackerStore()) {
		return nil, nil
	}
	// Every codec of a value gossiped in the cluster, so that values arrive decodable in every process.
	gossip, err := memberlist.NewKV(a.cfg.Memberlist, []kv.Codec{ring.DescCodec{}, distributor.HAClustersCodec{}}, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	a.memberlistKV = gossip
	a.server.mux.Handle("/memberlist", gossip)
	a.links = append(a.links, api.Link{Path: "/memberlist", Title: "Memberlist cluster and KV store"})
	return gossip, nil
}

func (a *App) initRingKV() (services.Service, error) {
	client, svc, err := a.newKVClient(a.cfg.RingStore, ring.DescCodec{})
	if err != nil {
		return nil, err
	}
	a.ringKV = client
	return svc, nil
}

// newKVClient returns a KV client of a backend for values of codec, and the service that owns its
// connections, if any.
func (a *App) newKVClient(store string, codec kv.Codec) (kv.Client, services.Service, error) {
	switch store {
	case storeInmemory:
		return inmemory.New(codec), nil, nil
	case storeMemberlist:
		return a.memberlistKV.Client(codec), nil, nil
	case storeEtcd:
		c, err := etcd.New(a.cfg.Etcd, codec, a.reg, a.logger)
		if err != nil {
			return nil, nil, err
		}
		return c, onStop(c.Close), nil
	case storeMulti:
		primary, primarySvc, err := a.newKVClient(a.cfg.Multi.Primary, codec)
		if err != nil {
			return nil, nil, err
		}
		secondary, secondarySvc, err := a.newKVClient(a.cfg.Multi.Secondary, codec)
		if err != nil {
			return nil, nil, err
		}
		return multi.New(a.cfg.Multi, primary, secondary, a.reg, a.logger), serviceGroup{primarySvc, secondarySvc}, nil
	}
	return nil, nil, fmt.Errorf("unknown ring store %q", store)
}

// initDistributorRing registers this distributor in a ring of its own, shown at /distributor/ring, so
// that distributors can later share global limits.
func (a *App) initDistributorRing() (services.Service, error) {
	lcfg := a.cfg.DistributorLifecycler
	lcfg.NumTokens = 1
	if lcfg.Port == 0 {
		lcfg.Port = a.server.grpcPort()
	}
	lifecycler, err := ring.NewLifecycler(lcfg, "distributor", distributorRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	rcfg := a.cfg.Ring
	rcfg.ReplicationFactor, rcfg.ZoneAwarenessEnabled = 1, false
	r, err := ring.New(rcfg, "distributor", distributorRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	a.distributorRing = r
	a.server.mux.Handle("/distributor/ring", r)
	a.links = append(a.links, api.Link{Path: "/distributor/ring", Title: "Distributor ring"})
	return serviceGroup{lifecycler, activate{lifecycler}, r}, nil
}

func (a *App) initRing() (services.Service, error) {
	r, err := ring.New(a.cfg.Ring, "ingester", ingesterRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	a.ingesterRing = r
	a.server.mux.Handle("/ingester/ring", r)
	a.links = append(a.links, api.Link{Path: "/ingester/ring", Title: "Ingester ring"})
	return r, nil
}

// initBucket opens the object storage where ingesters ship blocks.
func (a *App) initBucket() (services.Service, error) {
	bkt, err := bucket.NewClient(context.Background(), a.cfg.Bucket, a.cfg.Target, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	a.bucket = bkt
	return onStop(bkt.Close), nil
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
	a.ingesterLifecycler = lifecycler
	icfg := a.cfg.Ingester
	icfg.TSDBDir = a.dataPath("tsdb")
	icfg.InstanceID = lcfg.ID
	ing, err := ingester.New(icfg, a.overrides, lifecycler, a.ingesterRing, a.bucket, a.discardedSamples, a.reg, a.logger.With("component", "ingester"))
	if err != nil {
		return nil, err
	}
	ingesterpb.RegisterIngesterServer(a.server.grpcServer, ing)
	a.ingester = ing
	a.localIngesterAddr = lcfg.Address()
	a.server.mux.HandleFunc("/ingester/prepare-shutdown", a.servePrepareShutdown)
	a.server.mux.HandleFunc("/ingester/shutdown", a.serveIngesterShutdown)
	a.server.mux.HandleFunc("/ingester/flush", a.serveIngesterFlush)
	return ing, nil
}

// initDistributorService builds the distributor that the distributor's push API and the ruler write through.
func (a *App) initDistributorService() (services.Service, error) {
	d, err := distributor.New(a.cfg.Distributor, a.overrides, a.distributorRing, a.ingesterRing, localPushClients{a},
		a.discardedSamples, a.discardedMetadata, a.reg, a.logger.With("component", "distributor"))
	if err != nil {
		return nil, err
	}
	a.distributor = d
	return a.initHATracker(d)
}

func (a *App) initDistributor() (services.Service, error) {
	a.server.mux.Handle("/api/v1/push", a.tenantMiddleware(a.distributor))
	// OTLP/HTTP metrics: the path an OTLP exporter appends to an /otlp endpoint, and Cortex's.
	otlp := a.tenantMiddleware(distributor.NewOTLPHandler(a.distributor, a.reg))
	a.server.mux.Handle("/otlp/v1/metrics", otlp)
	a.server.mux.Handle("/api/v1/otlp/v1/metrics", otlp)
	return nil, nil
}

// initQueryable builds the PromQL engine and what it reads, for the querier's API and the ruler.
func (a *App) initQueryable() (services.Service, error) {
	a.queryEngine = querier.NewEngine(a.cfg.Querier, prometheus.WrapRegistererWithPrefix("strata_querier_", a.reg), a.logger.With("component", "querier"))
	a.ingesterQueryable = querier.NewIngesterQueryable(a.ingesterRing, ingesterReadClients{a})
	blocks := querier.NewBlocksQueryable(a.bucket, a.storeGatewayRing, storeGatewayClients{a}, a.cfg.Querier, a.reg, a.logger.With("component", "querier"))
	a.blocksQueryable = blocks
	// Deleted series are hidden from every answer, whichever ingester or block holds them.
	split := querier.NewTombstoneQueryable(querier.NewTimeSplitQueryable(a.ingesterQueryable, blocks, a.cfg.Querier), a.tombstoneCache())
	a.queryable = querier.NewFetchLimitedQueryable(split, a.overrides, a.cfg.Querier.MaxFetchedSeriesInFlight)
	return nil, nil
}

func (a *App) initQuerier() (services.Service, error) {
	queryable := a.queryable
	if a.cfg.TenantFederationEnabled {
		queryable = querier.FederatedQueryable{Queryable: queryable}
	}
	reads := querier.ExemplarQueryable{IngesterQueryable: a.ingesterQueryable, Blocks: a.blocksQueryable}
	ingesterReads := querier.TombstoneIngesterSource{IngesterReads: reads, Tombstones: a.tombstoneCache()}
	promAPI := api.NewPrometheusAPI(a.queryEngine, queryable, ingesterReads, a.cfg.Querier, a.overrides, a.logger.With("component", "querier"))
	a.promAPI = promAPI
	queryMux := http.NewServeMux()
	// Prometheus clients expect tenant errors there in the API's JSON envelope, not in plain text.
	promAPI.Register(queryMux, queryAPIPrefix, a.readTenantMiddleware())
	// One tenant at a time, even with federation on.
	queryMux.Handle(queryAPIPrefix+"/admin/tsdb/delete_series", api.TenantMiddleware(a.cfg.MultitenancyEnabled)(
		api.NewDeleteSeriesAPI(a.bucket, a.overrides, a.tombstoneCache(), a.logger.With("component", "querier"))))
	card := querier.NewCardinality(a.ingesterRing, a.ingesterClients, a.overrides)
	api.NewCardinalityAPI(card, a.cfg.Querier.Timeout, a.logger.With("component", "querier")).
		Register(queryMux, queryAPIPrefix, a.readTenantMiddleware())

	wcfg := a.cfg.QuerierWorker
	if !slices.Contains(a.order, TargetFrontend) {
		// Without a frontend in this process the querier serves its API itself (and pulls from remote
		// frontends too when -querier.frontend-address is set).
		a.server.mux.Handle(queryAPIPrefix+"/", queryMux)
		a.registerQueryPage()
	} else if wcfg.FrontendAddress == "" {
		wcfg.FrontendAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(a.server.grpcPort()))
	}
	if wcfg.FrontendAddress == "" {
		return nil, nil
	}
	if wcfg.QuerierID == "" {
		host, _ := os.Hostname()
		wcfg.QuerierID = net.JoinHostPort(host, strconv.Itoa(a.server.grpcPort()))
	}
	return worker.New(wcfg, a.cfg.Querier.MaxConcurrent, queryMux, a.reg, a.logger.With("component", "querier-worker")), nil
}

// registerQueryPage serves the query page beside the Prometheus API it calls.
func (a *App) registerQueryPage() {
	page := queryui.Handler()
	a.server.mux.Handle("/query", page)
	a.server.mux.Handle("/query/", page)
	a.links = append(a.links,
		api.Link{Path: "/query", Title: "Query page: PromQL as any tenant, table and graph"},
		api.Link{Path: queryAPIPrefix + "/status/buildinfo", Title: "Build information"})
}

// tombstoneCache returns the process' cache of tenants' series deletions, shared by the querier and the
// query-frontend so that a deletion through this process applies to both at once.
func (a *App) tombstoneCache() *querier.TombstoneCache {
	if a.tombstones == nil {
		a.tombstones = querier.NewTombstoneCache(a.bucket, a.cfg.Querier.TombstonesTTL)
	}
	return a.tombstones
}

// queryAPIPrefix is where the Prometheus read API is served, by the query-frontend or the querier.
const queryAPIPrefix = "/prometheus/api/v1"

// initFrontend serves the Prometheus read API in front of the queriers, which pull its queued queries
// over gRPC.
func (a *App) initFrontend() (services.Service, error) {
	logger := a.logger.With("component", "query-frontend")
	f := frontend.New(a.cfg.Frontend, a.overrides, a.reg, logger)
	frontendpb.RegisterFrontendServer(a.server.grpcServer, f)
	a.frontend = f
	// Range queries are split by day and cached, then each part sharded; what remains goes to the queue.
	sharded, err := querysharding.New(a.cfg.QuerySharding, a.overrides, f, a.reg, logger)
	if err != nil {
		return nil, err
	}
	splitAndCached, err := querymiddleware.New(a.cfg.QueryMiddleware, a.overrides, sharded, a.reg, logger)
	if err != nil {
		return nil, err
	}
	// A series deletion starts a new generation of cached answers.
	splitAndCached.UseCacheGenerations(a.tombstoneCache())
	handler := frontend.NewHandler(a.cfg.Frontend, a.overrides, splitAndCached, a.cfg.Querier.Timeout, a.reg, logger)
	a.server.mux.Handle(queryAPIPrefix+"/", a.readTenantMiddleware()(handler))
	a.registerQueryPage()
	return serviceGroup{f, onStop(splitAndCached.Close)}, nil
}

// initStoreGatewayRing reads the store-gateway ring, which says which store-gateways hold each block.
func (a *App) initStoreGatewayRing() (services.Service, error) {
	rcfg := a.cfg.Ring
	rcfg.ReplicationFactor, rcfg.ZoneAwarenessEnabled = a.cfg.StoreGateway.ReplicationFactor, false
	r, err := ring.New(rcfg, "store-gateway", storeGatewayRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	a.storeGatewayRing = r
	a.server.mux.Handle("/store-gateway/ring", r)
	a.links = append(a.links, api.Link{Path: "/store-gateway/ring", Title: "Store-gateway ring"})
	return r, nil
}

func (a *App) initStoreGatewayClient() (services.Service, error) {
	// Every store-gateway call is a read, so all are retried on Unavailable.
	readMethods := []string{
		strings.TrimPrefix(storegatewaypb.StoreGateway_Series_FullMethodName, "/"),
		strings.TrimPrefix(storegatewaypb.StoreGateway_LabelNames_FullMethodName, "/"),
		strings.TrimPrefix(storegatewaypb.StoreGateway_LabelValues_FullMethodName, "/"),
	}
	a.storeGatewayClients = grpcclient.NewPool("storegateway", readMethods, a.cfg.StoreGatewayClient, a.reg, a.logger.With("component", "store-gateway-client"))
	return a.storeGatewayClients, nil
}

// initStoreGateway serves the blocks the store-gateway ring gives this instance. Its Start returns after
// the first sync, so the process is ready only once its blocks are loaded.
func (a *App) initStoreGateway() (services.Service, error) {
	lcfg := a.cfg.StoreGatewayLifecycler
	if lcfg.Port == 0 {
		lcfg.Port = a.server.grpcPort()
	}
	lifecycler, err := ring.NewLifecycler(lcfg, "store-gateway", storeGatewayRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	sg, err := storegateway.New(a.cfg.StoreGateway, a.bucket, a.storeGatewayRing, lcfg.Address(), a.reg, a.logger.With("component", "store-gateway"))
	if err != nil {
		return nil, err
	}
	storegatewaypb.RegisterStoreGatewayServer(a.server.grpcServer, sg)
	a.storeGateway, a.localStoreGatewayAddr = sg, lcfg.Address()
	a.server.mux.Handle("/store-gateway/tenants", sg.TenantsHandler())
	a.links = append(a.links, api.Link{Path: "/store-gateway/tenants", Title: "Store-gateway tenants and blocks"})
	a.storeGatewayLifecycler = lifecycler
	// Registered (JOINING) before the first sync so that it owns its share of blocks, ACTIVE after it.
	return serviceGroup{lifecycler, waitUntilInRing{ring: a.storeGatewayRing, id: lcfg.ID}, sg, activate{lifecycler}}, nil
}

// initCompactor runs a compactor that owns the tenants the compactor ring gives it.
func (a *App) initCompactor() (services.Service, error) {
	lcfg := a.cfg.CompactorLifecycler
	lcfg.NumTokens = min(lcfg.NumTokens, 64)
	if lcfg.Port == 0 {
		lcfg.Port = a.server.grpcPort()
	}
	lifecycler, err := ring.NewLifecycler(lcfg, compactor.RingName, compactor.RingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	rcfg := a.cfg.Ring
	rcfg.ReplicationFactor, rcfg.ZoneAwarenessEnabled = 1, false
	r, err := ring.New(rcfg, compactor.RingName, compactor.RingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	c, err := compactor.New(a.cfg.Compactor, a.overrides, a.bucket, r, lcfg.ID, a.reg, a.logger.With("component", "compactor"))
	if err != nil {
		return nil, err
	}
	a.server.mux.Handle("/compactor/ring", r)
	a.links = append(a.links, api.Link{Path: "/compactor/ring", Title: "Compactor ring"})
	a.server.mux.Handle(compactor.BlockUploadPathPrefix, a.tenantMiddleware(c.BlockUploadHandler()))
	a.server.mux.Handle(compactor.DeleteTenantPath, c.DeleteTenantHandler(tenant.Middleware(a.cfg.MultitenancyEnabled)))
	a.server.mux.Handle(compactor.DeleteTenantStatusPath, c.DeleteTenantStatusHandler(tenant.Middleware(a.cfg.MultitenancyEnabled)))
	return serviceGroup{lifecycler, activate{lifecycler}, r, c}, nil
}

// readTenantMiddleware puts the tenant of a read into its context, several with -tenant-federation.enabled;
// Prometheus clients expect its errors in the API's JSON envelope, not in plain text.
func (a *App) readTenantMiddleware() func(http.Handler) http.Handler {
	if a.cfg.TenantFederationEnabled {
		return api.FederatedTenantMiddleware(a.cfg.MultitenancyEnabled)
	}
	return api.TenantMiddleware(a.cfg.MultitenancyEnabled)
}

func (a *App) tenantMiddleware(h http.Handler) http.Handler {
	return tenant.Middleware(a.cfg.MultitenancyEnabled)(h)
}
