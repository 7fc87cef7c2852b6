package app

import (
	"strings"

	"github.com/strata-metrics/strata/pkg/alertmanager"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/services"
)

// alertmanagerRingKey is the KV key of the Alertmanager ring.
const alertmanagerRingKey = "alertmanager-ring"

func (a *App) initAlertmanagerClient() (services.Service, error) {
	// State reads and forwarded API calls may be retried on another try; state updates and forwarded
	// writes are not retried by the pool (the Alertmanager decides).
	readMethods := []string{strings.TrimPrefix(alertmanagerpb.Alertmanager_ReadState_FullMethodName, "/")}
	a.alertmanagerClients = grpcclient.NewPool("alertmanager", readMethods, a.cfg.AlertmanagerClient, a.reg, a.logger.With("component", "alertmanager-client"))
	return a.alertmanagerClients, nil
}

// initAlertmanager runs the Alertmanagers of the tenants the Alertmanager ring gives this instance,
// each replicated over -alertmanager.sharding-ring.replication-factor instances; their API is served
// under /alertmanager for the tenant of the request, on any instance (forwarded to the tenant's
// replicas), and their configuration at /api/v1/alerts.
func (a *App) initAlertmanager() (services.Service, error) {
	logger := a.logger.With("component", "alertmanager")
	store, err := alertstore.New(a.cfg.AlertmanagerStorage, a.bucket)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg.Alertmanager
	if cfg.DataDir == "" {
		cfg.DataDir = a.dataPath("alertmanager")
	}
	lcfg := a.cfg.AlertmanagerLifecycler
	if lcfg.Port == 0 {
		lcfg.Port = a.server.grpcPort()
	}
	lifecycler, err := ring.NewLifecycler(lcfg, "alertmanager", alertmanagerRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	rcfg := a.cfg.Ring
	rcfg.ReplicationFactor, rcfg.ZoneAwarenessEnabled = cfg.ReplicationFactor, false
	r, err := ring.New(rcfg, "alertmanager", alertmanagerRingKey, a.ringKV, a.reg, a.logger)
	if err != nil {
		return nil, err
	}
	am, err := alertmanager.New(cfg, store, a.reg, logger)
	if err != nil {
		return nil, err
	}
	am.Replication = alertmanagerReplicas{
		ringView: newRingView(r, rcfg.HeartbeatTimeout),
		id:       lcfg.ID,
		clients:  a.alertmanagerClients,
	}
	alertmanagerpb.RegisterAlertmanagerServer(a.server.grpcServer, am)
	a.alertmanager = am
	handler := a.tenantMiddleware(am)
	a.server.mux.Handle(alertmanager.PathPrefix, handler)
	a.server.mux.Handle(alertmanager.PathPrefix+"/", handler)
	a.server.mux.Handle(alertmanager.ConfigPath, handler)
	a.server.mux.Handle(alertmanager.StatusPath, am.StatusHandler())
	a.server.mux.Handle("/multitenant_alertmanager/ring", r)
	a.links = append(a.links,
		api.Link{Path: alertmanager.StatusPath, Title: "Alertmanager tenants"},
		api.Link{Path: "/multitenant_alertmanager/ring", Title: "Alertmanager ring"},
		api.Link{Path: alertmanager.PathPrefix + "/", Title: "Alertmanager of a tenant (X-Scope-OrgID)"})
	// ACTIVE before the Alertmanager starts, so that its first sync already runs its tenants.
	return serviceGroup{lifecycler, activate{lifecycler}, r, waitUntilInRing{ring: r, id: lcfg.ID, active: true}, am}, nil
}

// alertmanagerReplicas places each tenant on the first replication-factor live ACTIVE instances
// clockwise from the tenant's token: one that dies is replaced by the next once its heartbeats are late,
// and the new replica catches up from the others.
type alertmanagerReplicas struct {
	ringView
	id      string
	clients *grpcclient.Pool
}

func (p alertmanagerReplicas) Replicas(tenantID string) ([]string, int, error) {
	rs, err := p.ring.Get(ring.TenantToken(tenantID), ring.Owner, nil)
	if err != nil {
		return nil, -1, err
	}
	addrs := make([]string, len(rs.Instances))
	position := -1
	for i, inst := range rs.Instances {
		addrs[i] = inst.Addr
		if inst.ID == p.id {
			position = i
		}
	}
	return addrs, position, nil
}

func (p alertmanagerReplicas) Client(addr string) (alertmanagerpb.AlertmanagerClient, error) {
	conn, err := p.clients.Conn(addr)
	if err != nil {
		return nil, err
	}
	return alertmanagerpb.NewAlertmanagerClient(conn), nil
}
