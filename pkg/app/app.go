// Package app builds a Strata process from its configuration: the module graph of the chosen targets,
// started in dependency order and stopped in reverse.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/alertmanager"
	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/distributor"
	"github.com/strata-metrics/strata/pkg/frontend"
	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/memberlist"
	"github.com/strata-metrics/strata/pkg/runtimeconfig"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/storegateway"
	"github.com/strata-metrics/strata/pkg/validation"
)

// State of a module's service, as /services shows it.
type State string

// Module states.
const (
	StateNew        State = "New"
	StateStarting   State = "Starting"
	StateRunning    State = "Running"
	StateStopping   State = "Stopping"
	StateTerminated State = "Terminated"
	StateFailed     State = "Failed"
)

// App is one Strata process.
type App struct {
	cfg    *Config
	flags  *flag.FlagSet
	logger *slog.Logger
	reg    *prometheus.Registry

	order    []string
	services map[string]services.Service
	stateMtx sync.Mutex
	states   map[string]State

	links []api.Link

	// Built by the modules' init functions.
	server                 *server
	ringKV                 kv.Client
	memberlistKV           *memberlist.KV
	ingester               *ingester.Ingester
	localIngesterAddr      string // the address this process' ingester registers in the ring
	bucket                 objstore.Bucket
	storeGatewayRing       *ring.Ring
	storeGatewayLifecycler *ring.Lifecycler
	storeGatewayClients    *grpcclient.Pool
	storeGateway           *storegateway.StoreGateway // this process' store-gateway, if it runs one
	localStoreGatewayAddr  string                     // the address it registers in its ring
	ingesterRing           *ring.Ring
	distributorRing        *ring.Ring
	ingesterLifecycler     *ring.Lifecycler
	ingesterClients        *client.Pool
	discardedSamples       *prometheus.CounterVec
	discardedMetadata      *prometheus.CounterVec
	runtimeConfig          *runtimeconfig.Manager[runtimeConfig]
	promAPI                *api.PrometheusAPI
	frontend               *frontend.Frontend
	overrides              *validation.Overrides
	distributor            *distributor.Distributor
	queryEngine            promql.QueryEngine
	queryable              storage.Queryable // one tenant's data, ingesters and blocks
	ingesterQueryable      *querier.IngesterQueryable
	blocksQueryable        *querier.BlocksQueryable
	tombstones             *querier.TombstoneCache // tenants' pending series deletions, applied at read time
	rulerClients           *grpcclient.Pool
	alertmanager           *alertmanager.MultitenantAlertmanager
	alertmanagerClients    *grpcclient.Pool
}

// New builds every module the configured targets need. Nothing runs until Run.
func New(cfg *Config, flags *flag.FlagSet, logger *slog.Logger) (*App, error) {
	targets, err := parseTargets(cfg.Target)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(api.BuildInfoCollector())
	a := &App{
		cfg:               cfg,
		flags:             flags,
		logger:            logger,
		reg:               reg,
		order:             startOrder(targets),
		services:          map[string]services.Service{},
		states:            map[string]State{},
		discardedSamples:  validation.NewDiscardedSamples(reg),
		discardedMetadata: validation.NewDiscardedMetadata(reg),
	}
	for _, name := range a.order {
		var svc services.Service
		if init := modules[name].init; init != nil {
			var err error
			if svc, err = init(a); err != nil {
				a.closeListeners()
				return nil, fmt.Errorf("init %s: %w", name, err)
			}
		}
		if svc == nil {
			// A module that only registers handlers (distributor, querier) or has nothing to run with
			// this configuration (memberlist-kv with the in-process ring) still goes through the states,
			// so /services lists every module of the target.
			svc = serviceGroup{}
		}
		a.services[name] = svc
		a.states[name] = StateNew
	}
	return a, nil
}

// Run starts the services in dependency order, serves until ctx is done, then shuts down gracefully:
// queries in flight end with 503, other HTTP requests in flight finish, then services stop in reverse
// order.
func (a *App) Run(ctx context.Context) error {
	var started []string
	var runErr error
	for _, name := range a.order {
		svc, ok := a.services[name]
		if !ok {
			continue
		}
		a.setState(name, StateStarting)
		a.logger.Info("starting module", "module", name)
		if err := svc.Start(ctx); err != nil {
			a.setState(name, StateFailed)
			runErr = fmt.Errorf("start %s: %w", name, err)
			break
		}
		a.setState(name, StateRunning)
		started = append(started, name)
	}
	if runErr == nil {
		a.logger.Info("strata is running", "targets", a.cfg.Target)
		<-ctx.Done()
		a.logger.Info("shutting down")
	}

	stopCtx := context.Background()
	if a.promAPI != nil {
		// The drain waits for pushes in flight, whose samples may be acknowledged; queries end now.
		a.promAPI.StopQueries()
	}
	if a.server != nil {
		if err := a.server.drainHTTP(stopCtx); err != nil {
			a.logger.Warn("HTTP requests did not finish in time", "err", err)
		}
	}
	var errs []error
	if runErr != nil {
		errs = append(errs, runErr)
	}
	for i := len(started) - 1; i >= 0; i-- {
		name := started[i]
		if a.state(name) == StateTerminated {
			continue // stopped on request, e.g. /ingester/shutdown
		}
		a.setState(name, StateStopping)
		if err := a.services[name].Stop(stopCtx); err != nil {
			a.setState(name, StateFailed)
			errs = append(errs, fmt.Errorf("stop %s: %w", name, err))
			continue
		}
		a.setState(name, StateTerminated)
	}
	if runErr != nil {
		a.closeListeners()
	}
	return errors.Join(errs...)
}

func (a *App) state(name string) State {
	a.stateMtx.Lock()
	defer a.stateMtx.Unlock()
	return a.states[name]
}

func (a *App) setState(name string, s State) {
	a.stateMtx.Lock()
	defer a.stateMtx.Unlock()
	a.states[name] = s
}

// closeListeners releases the ports when the app fails before its server ever served.
func (a *App) closeListeners() {
	if a.server != nil {
		_ = a.server.httpListener.Close()
		_ = a.server.grpcListener.Close()
	}
}

// readiness reports why the process is not ready, or nil when every module runs and the ingester, if
// any, is ACTIVE in the ring.
func (a *App) readiness() error {
	a.stateMtx.Lock()
	for _, name := range a.order {
		if s, ok := a.states[name]; ok && s != StateRunning {
			a.stateMtx.Unlock()
			return fmt.Errorf("module %s is %s", name, s)
		}
	}
	a.stateMtx.Unlock()
	if a.ingesterLifecycler != nil {
		if s := a.ingesterLifecycler.State(); s != ring.ACTIVE {
			return fmt.Errorf("ingester is %s in the ring", s)
		}
		inst, ok := a.ingesterRing.Desc().Instances[a.cfg.Lifecycler.ID]
		if !ok || inst.State != ring.ACTIVE {
			return errors.New("the ring does not show this ingester as ACTIVE yet")
		}
	}
	if a.storeGatewayLifecycler != nil {
		inst, ok := a.storeGatewayRing.Desc().Instances[a.cfg.StoreGatewayLifecycler.ID]
		if !ok || inst.State != ring.ACTIVE {
			return errors.New("the store-gateway ring does not show this store-gateway as ACTIVE yet")
		}
	}
	return nil
}

func (a *App) dataPath(elem ...string) string {
	return filepath.Join(append([]string{a.cfg.DataDir}, elem...)...)
}

// NewLogger returns the process logger at the configured level.
func NewLogger(level string) (*slog.Logger, error) {
	l, err := parseLogLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return l, fmt.Errorf("invalid -log.level %q: use debug, info, warn or error", s)
	}
	return l, nil
}
