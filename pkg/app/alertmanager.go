package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/strata-metrics/strata/pkg/alertmanager"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// alertmanagerRingKey is the KV key of the Alertmanager ring.
const alertmanagerRingKey = "alertmanager-ring"

func (a *App) initAlertmanagerClient() (services.Service, error) {
	// Reading a replica's state is retried on Unavailable; state updates and forwarded API calls are
	// not: the Alertmanager itself moves on to the next replica, or sends the full state later.
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
	r, rcfg, err := a.newAlertmanagerRing()
	if err != nil {
		return nil, err
	}
	am, err := alertmanager.New(cfg, store, a.overrides, a.reg, logger)
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

// newAlertmanagerRing reads the Alertmanager ring, which places each tenant on its replicas.
func (a *App) newAlertmanagerRing() (*ring.Ring, ring.Config, error) {
	rcfg := a.cfg.Ring
	rcfg.ReplicationFactor, rcfg.ZoneAwarenessEnabled = a.cfg.Alertmanager.ReplicationFactor, false
	r, err := ring.New(rcfg, "alertmanager", alertmanagerRingKey, a.ringKV, a.reg, a.logger)
	return r, rcfg, err
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

// ringAlertSender delivers the ruler's alerts to the tenant's Alertmanager replicas in the Alertmanager
// ring, as an Alertmanager's own API does with the alerts it receives: to every replica, a majority of
// which must accept them.
type ringAlertSender struct {
	replicas alertmanager.Replication
}

// replicaAlertsTimeout bounds the delivery of the ruler's alerts to one Alertmanager replica.
const replicaAlertsTimeout = 10 * time.Second

// maxAlertsRequestBytes bounds one request of the ruler's notifier, as the Alertmanager bounds its API's.
const maxAlertsRequestBytes = 4 << 20

func (s ringAlertSender) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxAlertsRequestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxAlertsRequestBytes {
		return nil, fmt.Errorf("alerts request of %d bytes or more, over %d", len(body), maxAlertsRequestBytes)
	}
	addrs, _, err := s.replicas.Replicas(tenantID)
	if err != nil {
		return nil, fmt.Errorf("finding the tenant's Alertmanagers in the ring: %w", err)
	}
	call := &alertmanagerpb.HTTPRequest{
		Method:  req.Method,
		Url:     req.URL.RequestURI(),
		Headers: []*alertmanagerpb.Header{{Name: "Content-Type", Values: []string{req.Header.Get("Content-Type")}}},
		Body:    body,
	}
	// The answer comes once a majority accepted: a dead replica, whose calls may hang until they time
	// out, must not hold back the others (alerts not renewed in time are resolved). The calls still
	// running go on, so that the slow replicas get the alerts too.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replicaAlertsTimeout)
	results := make(chan error, len(addrs)) // buffered: calls that end after the answer do not block
	var calls sync.WaitGroup
	for _, addr := range addrs {
		calls.Go(func() {
			client, err := s.replicas.Client(addr)
			if err == nil {
				var resp *alertmanagerpb.HTTPResponse
				if resp, err = client.HandleRequest(callCtx, call); err == nil && resp.GetStatus()/100 != 2 {
					err = fmt.Errorf("answered %d: %.200s", resp.GetStatus(), resp.GetBody())
				}
			}
			if err != nil {
				err = fmt.Errorf("alertmanager %s: %w", addr, err)
			}
			results <- err
		})
	}
	go func() {
		calls.Wait()
		cancel()
	}()
	needed := len(addrs)/2 + 1
	accepted := 0
	var errs []error
	for range addrs {
		err := <-results
		if err == nil {
			if accepted++; accepted == needed {
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
			}
			continue
		}
		if errs = append(errs, err); len(errs) > len(addrs)-needed {
			break
		}
	}
	// The notifier retries a 5xx with the next batch.
	msg := fmt.Sprintf("%d of %d Alertmanagers of the tenant accepted the alerts: %v", accepted, len(addrs), errors.Join(errs...))
	return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: io.NopCloser(strings.NewReader(msg)), Request: req}, nil
}
