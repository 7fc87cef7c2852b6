package ruler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/rules"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/util/promutil"
)

// parseAlertmanagerURLs reads -ruler.alertmanager-url: comma-separated http(s) URLs, each with the path
// prefix of its Alertmanager API (Strata's multi-tenant one is served under /alertmanager) and, if
// needed, basic-auth credentials.
func parseAlertmanagerURLs(s string) ([]*url.URL, error) {
	var urls []*url.URL
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("-ruler.alertmanager-url: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("-ruler.alertmanager-url: %q is not an http(s) URL with a host", raw)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// alertNotifier sends each tenant's alerts to the Alertmanagers with the tenant in X-Scope-OrgID. Each
// tenant has its own Prometheus notifier, so its queue and failures stay its own.
type alertNotifier struct {
	cfg         Config
	urls        []*url.URL
	sendFunc    SendAlertsFunc // nil: over HTTP to urls
	client      *http.Client   // -ruler.alertmanager-client.tls-*; nil: the notifier's own
	externalURL string
	reg         prometheus.Registerer
	logger      *slog.Logger

	mtx       sync.Mutex
	stopped   bool
	notifiers map[string]*tenantNotifier
}

type tenantNotifier struct {
	*notifier.Manager
	metrics *promutil.TrackingRegisterer
	done    chan struct{}
}

func newAlertNotifier(cfg Config, urls []*url.URL, send SendAlertsFunc, reg prometheus.Registerer, logger *slog.Logger) (*alertNotifier, error) {
	n := &alertNotifier{
		cfg:         cfg,
		urls:        urls,
		sendFunc:    send,
		externalURL: strings.TrimSuffix(cfg.ExternalURL, "/"),
		reg:         reg,
		logger:      logger,
		notifiers:   map[string]*tenantNotifier{},
	}
	if send == nil {
		client, err := cfg.AlertmanagerClient.httpClient()
		if err != nil {
			return nil, fmt.Errorf("ruler: -ruler.alertmanager-client.tls-*: %w", err)
		}
		n.client = client
	}
	return n, nil
}

// send queues what rules hands over after an evaluation: firing alerts until their ValidUntil, and
// resolved ones with their end, as Prometheus' own server does.
func (n *alertNotifier) send(_ context.Context, tenantID, expr string, alerts ...*rules.Alert) {
	out := make([]*notifier.Alert, 0, len(alerts))
	for _, a := range alerts {
		na := &notifier.Alert{
			StartsAt:     a.FiredAt,
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			GeneratorURL: n.externalURL + "/graph?g0.expr=" + url.QueryEscape(expr) + "&g0.tab=1",
		}
		if !a.ResolvedAt.IsZero() {
			na.EndsAt = a.ResolvedAt
		} else {
			na.EndsAt = a.ValidUntil
		}
		out = append(out, na)
	}
	if tn := n.forTenant(tenantID); tn != nil {
		tn.Send(out...)
	}
}

// forTenant returns the tenant's notifier, started on its first alert; nil once stopped.
func (n *alertNotifier) forTenant(tenantID string) *tenantNotifier {
	n.mtx.Lock()
	defer n.mtx.Unlock()
	if n.stopped {
		return nil
	}
	if tn, ok := n.notifiers[tenantID]; ok {
		return tn
	}
	tn, err := n.newTenantNotifier(tenantID)
	if err != nil {
		// Only a configuration that Validate would have refused gets here.
		n.logger.Error("cannot create the alert notifier of tenant", "tenant", tenantID, "err", err)
		return nil
	}
	n.notifiers[tenantID] = tn
	return tn
}

func (n *alertNotifier) newTenantNotifier(tenantID string) (*tenantNotifier, error) {
	metrics := promutil.NewTrackingRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"tenant": tenantID}, n.reg))
	m := notifier.NewManager(&notifier.Options{
		QueueCapacity: n.cfg.NotificationQueueCapacity,
		Registerer:    metrics,
		Do: func(ctx context.Context, client *http.Client, req *http.Request) (*http.Response, error) {
			req.Header.Set(tenant.OrgIDHeader, tenantID)
			if n.sendFunc != nil {
				return n.sendFunc(tenant.NewContext(ctx, tenantID), req)
			}
			if user, password, ok := n.cfg.AlertmanagerClient.basicAuth(n.urls, req.URL); ok {
				req.SetBasicAuth(user, password)
			}
			if n.client != nil {
				client = n.client
			}
			if client == nil {
				client = http.DefaultClient
			}
			return client.Do(req.WithContext(ctx))
		},
	}, nameScheme, n.logger.With("tenant", tenantID))

	cfg := &config.Config{GlobalConfig: config.GlobalConfig{MetricNameValidationScheme: nameScheme}}
	groups := map[string][]*targetgroup.Group{}
	for i, u := range n.urls {
		amCfg := config.DefaultAlertmanagerConfig
		amCfg.APIVersion = config.AlertmanagerAPIVersionV2
		amCfg.Scheme = u.Scheme
		amCfg.PathPrefix = u.Path
		amCfg.Timeout = model.Duration(n.cfg.NotificationTimeout)
		amCfg.HTTPClientConfig = promconfig.DefaultHTTPClientConfig // basic auth is added by Do, with TLS or without
		cfg.AlertingConfig.AlertmanagerConfigs = append(cfg.AlertingConfig.AlertmanagerConfigs, &amCfg)
		groups[fmt.Sprintf("config-%d", i)] = []*targetgroup.Group{{
			Source:  u.String(),
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
		}}
	}
	if err := m.ApplyConfig(cfg); err != nil {
		metrics.UnregisterAll()
		return nil, err
	}
	// The Alertmanagers are fixed: one update of the targets, never closed, as discovery would send.
	updates := make(chan map[string][]*targetgroup.Group, 1)
	updates <- groups
	tn := &tenantNotifier{Manager: m, metrics: metrics, done: make(chan struct{})}
	go func() {
		defer close(tn.done)
		m.Run(updates)
	}()
	// Run takes the targets in on its own goroutine, and Send drops alerts while a set has no
	// Alertmanager yet: the first alerts, sent right after this, would be lost until resent.
	for deadline := time.Now().Add(time.Second); len(m.Alertmanagers()) < len(n.urls) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return tn, nil
}

// stopTenant stops the tenant's notifier, dropping what it has not sent yet: the tenant has no
// rules here any more, and whichever ruler evaluates them now sends their alerts.
func (n *alertNotifier) stopTenant(tenantID string) {
	n.mtx.Lock()
	tn, ok := n.notifiers[tenantID]
	delete(n.notifiers, tenantID)
	n.mtx.Unlock()
	if ok {
		tn.stop()
	}
}

func (n *alertNotifier) stop() {
	n.mtx.Lock()
	n.stopped = true
	notifiers := n.notifiers
	n.notifiers = map[string]*tenantNotifier{}
	n.mtx.Unlock()
	for _, tn := range notifiers {
		tn.stop()
	}
}

func (tn *tenantNotifier) stop() {
	tn.Stop()
	<-tn.done
	tn.metrics.UnregisterAll()
}
