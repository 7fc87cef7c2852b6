package app

import (
	"hash/maphash"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ruler"
	"github.com/strata-metrics/strata/pkg/ruler/rulerpb"
	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/services"
)

func (a *App) initRulerClient() (services.Service, error) {
	// Rules is a read: retried on Unavailable.
	readMethods := []string{strings.TrimPrefix(rulerpb.Ruler_Rules_FullMethodName, "/")}
	a.rulerClients = grpcclient.NewPool("ruler", readMethods, a.cfg.RulerClient, a.reg, a.logger.With("component", "ruler-client"))
	return a.rulerClients, nil
}

// initRuler evaluates the rule groups the ruler ring gives this instance: queries through this
// process' querier code, results written through its distributor.
func (a *App) initRuler() (services.Service, error) {
	logger := a.logger.With("component", "ruler")
	store, err := rulestore.New(a.cfg.RulerStorage, a.bucket, logger)
	if err != nil {
		return nil, err
	}
	lcfg := a.cfg.RulerLifecycler
	if lcfg.Port == 0 {
		lcfg.Port = a.server.grpcPort()
	}
	lifecycler, err := ring.NewLifecycler(lcfg, "ruler", rulerRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	rcfg := a.cfg.Ring
	rcfg.ReplicationFactor, rcfg.ZoneAwarenessEnabled = 1, false
	r, err := ring.New(rcfg, "ruler", rulerRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	view := newRingView(r, rcfg.HeartbeatTimeout)
	owner := rulerOwnership{ringView: view, id: lcfg.ID}

	cfg := a.cfg.Ruler
	if cfg.RulePath == "" {
		cfg.RulePath = a.dataPath("rules")
	}
	var sendAlerts ruler.SendAlertsFunc
	var amRing *ring.Ring
	switch {
	case cfg.AlertmanagerURL != "":
	case slices.Contains(a.order, TargetAlertmanager):
		// This process' own Alertmanager, called in process (so whatever TLS and -auth.type the server has).
		sendAlerts = localAlertSender{handler: func() http.Handler {
			if a.alertmanager == nil {
				return nil
			}
			return a.alertmanager
		}}.send
	default:
		// The Alertmanagers of the ring, found as they place the tenant.
		r, rcfg, err := a.newAlertmanagerRing()
		if err != nil {
			return nil, err
		}
		amRing = r
		sendAlerts = ringAlertSender{replicas: alertmanagerReplicas{ringView: newRingView(r, rcfg.HeartbeatTimeout), clients: a.alertmanagerClients}}.send
	}
	rl, err := ruler.New(cfg, store, ruler.Dependencies{
		Engine:            a.queryEngine,
		Queryable:         func(string) storage.Queryable { return a.queryable },
		Appendable:        ruler.PusherAppendable(a.distributor),
		EvaluationTimeout: a.overrides.RulerEvaluationTimeout,
		Owns:              owner.owns,
		OwnershipVersion:  view.Version,
		Peers:             rulerPeers{ringView: view, localAddr: lcfg.Address(), clients: a.rulerClients},
		SendAlerts:        sendAlerts,
	}, a.reg, logger)
	if err != nil {
		return nil, err
	}
	rulerpb.RegisterRulerServer(a.server.grpcServer, rl)

	cfgAPI := a.tenantMiddleware(ruler.NewConfigAPI(store, a.overrides, logger))
	a.server.mux.Handle(ruler.ConfigRulesPath, cfgAPI)
	a.server.mux.Handle(ruler.ConfigRulesPath+"/", cfgAPI)
	// Grafana reads rules and alerts from its Prometheus data source: errors in the API's envelope.
	promTenant := api.TenantMiddleware(a.cfg.MultitenancyEnabled)
	a.server.mux.Handle(ruler.RulesPath, promTenant(http.HandlerFunc(rl.ServeRules)))
	a.server.mux.Handle(ruler.AlertsPath, promTenant(http.HandlerFunc(rl.ServeAlerts)))
	a.server.mux.Handle("/ruler/ring", r)
	a.links = append(a.links,
		api.Link{Path: "/ruler/ring", Title: "Ruler ring"},
		api.Link{Path: ruler.RulesPath, Title: "Rules of a tenant (X-Scope-OrgID)"})
	// ACTIVE before the ruler starts, so that its first sync already owns its share of the groups.
	var amRingService services.Service
	if amRing != nil {
		amRingService = amRing
	}
	return serviceGroup{amRingService, lifecycler, activate{lifecycler}, r, waitUntilInRing{ring: r, id: lcfg.ID, active: true}, rl}, nil
}

// ringView reads a ring for work placed on its live instances (rule groups, Alertmanager tenants).
type ringView struct {
	ring             *ring.Ring
	heartbeatTimeout time.Duration
	seed             maphash.Seed
}

func newRingView(r *ring.Ring, heartbeatTimeout time.Duration) ringView {
	return ringView{ring: r, heartbeatTimeout: heartbeatTimeout, seed: maphash.MakeSeed()}
}

// Version changes whenever the placement of keys may: an instance joined, left, changed state or
// started or stopped heartbeating in time.
func (v ringView) Version() uint64 {
	desc := v.ring.Desc()
	ids := make([]string, 0, len(desc.Instances))
	for id := range desc.Instances {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := time.Now()
	var h maphash.Hash
	h.SetSeed(v.seed)
	for _, id := range ids {
		inst := desc.Instances[id]
		alive := byte(0)
		if now.Sub(inst.HeartbeatTime()) <= v.heartbeatTimeout {
			alive = 1
		}
		_, _ = h.WriteString(id)
		_, _ = h.Write([]byte{byte(inst.State), alive, byte(len(inst.Tokens))})
	}
	return h.Sum64()
}

// liveAddresses returns the address of every instance heartbeating in time, whatever its state.
func (v ringView) liveAddresses() ([]string, error) {
	now := time.Now()
	var addrs []string
	for _, inst := range v.ring.Desc().Instances {
		if now.Sub(inst.HeartbeatTime()) <= v.heartbeatTimeout {
			addrs = append(addrs, inst.Addr)
		}
	}
	if len(addrs) == 0 {
		return nil, ring.ErrEmptyRing
	}
	return addrs, nil
}

// rulerOwnership says which ruler evaluates a group: the first live ACTIVE ruler clockwise from the
// group's token, so a dead ruler's groups move once its heartbeats are late.
type rulerOwnership struct {
	ringView
	id string
}

func (o rulerOwnership) owns(tenantID, namespace, group string) bool {
	rs, err := o.ring.Get(ruleGroupToken(tenantID, namespace, group), ring.Owner, nil)
	if err != nil {
		return false // no live ruler: nobody evaluates it until one is
	}
	return len(rs.Instances) > 0 && rs.Instances[0].ID == o.id
}

// ruleGroupToken is the ring token of a rule group.
func ruleGroupToken(tenantID, namespace, group string) uint32 {
	var d xxhash.Digest
	d.Reset()
	for i, s := range []string{tenantID, namespace, group} {
		if i > 0 {
			_, _ = d.Write([]byte{ring.KeySeparator})
		}
		_, _ = d.WriteString(s)
	}
	return ring.TokenOf(d.Sum64())
}

// rulerPeers are the rulers of the ring that /api/v1/rules asks for their groups.
type rulerPeers struct {
	ringView
	localAddr string
	clients   *grpcclient.Pool
}

// Addresses returns every live ruler, whatever its state: a LEAVING ruler may still evaluate groups,
// and a dead one's groups have moved to live ones.
func (p rulerPeers) Addresses() ([]string, error) { return p.liveAddresses() }

func (p rulerPeers) IsLocal(addr string) bool { return addr == p.localAddr }

func (p rulerPeers) Client(addr string) (rulerpb.RulerClient, error) {
	conn, err := p.clients.Conn(addr)
	if err != nil {
		return nil, err
	}
	return rulerpb.NewRulerClient(conn), nil
}
