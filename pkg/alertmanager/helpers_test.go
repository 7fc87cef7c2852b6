package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/nflog"
	"github.com/prometheus/alertmanager/nflog/nflogpb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// testConfig returns the flag defaults with a temporary data directory, and the receivers firewall
// off: the tests' webhooks listen on loopback, which it blocks by default.
func testConfig(t *testing.T) Config {
	var cfg Config
	fs := newFlagSet()
	cfg.RegisterFlags(fs)
	cfg.DataDir = t.TempDir()
	cfg.ReceiversFirewallBlockCIDRNetworks = ""
	return cfg
}

// harness is a started MultitenantAlertmanager over a bucket, served through tenant.Middleware as the
// app serves it.
type harness struct {
	t       *testing.T
	am      *MultitenantAlertmanager
	store   *alertstore.BucketStore
	reg     *prometheus.Registry
	handler http.Handler
}

func newHarness(t *testing.T, bkt objstore.Bucket, cfg Config) *harness {
	t.Helper()
	return newHarnessWith(t, bkt, cfg, nil)
}

// newHarnessWith is newHarness with setup, if not nil, called before the start.
func newHarnessWith(t *testing.T, bkt objstore.Bucket, cfg Config, setup func(*MultitenantAlertmanager)) *harness {
	t.Helper()
	return startHarness(t, bkt, cfg, nil, setup)
}

// newLimitedHarness is newHarness with the tenants' limits of limits.
func newLimitedHarness(t *testing.T, bkt objstore.Bucket, cfg Config, limits Limits) *harness {
	t.Helper()
	return startHarness(t, bkt, cfg, limits, nil)
}

func startHarness(t *testing.T, bkt objstore.Bucket, cfg Config, limits Limits, setup func(*MultitenantAlertmanager)) *harness {
	t.Helper()
	store, err := alertstore.New(alertstore.Config{Prefix: "alertmanager"}, bkt)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	am, err := New(cfg, store, limits, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	if setup != nil {
		setup(am)
	}
	require.NoError(t, am.Start(context.Background()))
	h := &harness{t: t, am: am, store: store, reg: reg, handler: tenant.Middleware(true)(am)}
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *harness) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(h.t, h.am.Stop(ctx))
}

// do sends a request as tenantID ("" sends none) and returns the status code and body.
func (h *harness) do(tenantID, method, path, body string) (int, string) {
	h.t.Helper()
	return h.doWithHeader(tenantID, method, path, body, nil)
}

// doWithHeader is do with the headers of header added.
func (h *harness) doWithHeader(tenantID, method, path, body string, header http.Header) (int, string) {
	h.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for name, values := range header {
		req.Header[name] = values
	}
	if tenantID != "" {
		req.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	if method == http.MethodPost && strings.HasPrefix(path, PathPrefix) {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// setConfig uploads cfg through the config API and syncs, so it is in effect on return.
func (h *harness) setConfig(tenantID string, cfg alertstore.AlertConfig) {
	h.t.Helper()
	body, err := yaml.Marshal(cfg)
	require.NoError(h.t, err)
	code, resp := h.do(tenantID, http.MethodPost, ConfigPath, string(body))
	require.Equal(h.t, http.StatusCreated, code, resp)
	require.NoError(h.t, h.am.SyncConfigs(context.Background()))
}

// postAlert fires an alert with the given labels for tenantID through the v2 API, as Prometheus'
// notifier does.
func (h *harness) postAlert(tenantID string, labels map[string]string) {
	h.t.Helper()
	body, err := json.Marshal([]map[string]any{{
		"labels":   labels,
		"startsAt": time.Now().Add(-time.Minute).Format(time.RFC3339),
	}})
	require.NoError(h.t, err)
	code, resp := h.do(tenantID, http.MethodPost, PathPrefix+"/api/v2/alerts", string(body))
	require.Equal(h.t, http.StatusOK, code, resp)
}

// silenceBody is the v2 API's body of a silence of alerts whose label name has value, for an hour.
func silenceBody(t testing.TB, name, value string) string {
	body, err := json.Marshal(map[string]any{
		"matchers":  []map[string]any{{"name": name, "value": value, "isRegex": false, "isEqual": true}},
		"startsAt":  time.Now().Format(time.RFC3339),
		"endsAt":    time.Now().Add(time.Hour).Format(time.RFC3339),
		"createdBy": "test",
		"comment":   "test silence",
	})
	require.NoError(t, err)
	return string(body)
}

// createSilence silences alerts whose label name has value, for an hour, and returns its ID.
func (h *harness) createSilence(tenantID, name, value string) string {
	h.t.Helper()
	code, resp := h.do(tenantID, http.MethodPost, PathPrefix+"/api/v2/silences", silenceBody(h.t, name, value))
	require.Equal(h.t, http.StatusOK, code, resp)
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	require.NoError(h.t, json.Unmarshal([]byte(resp), &out))
	require.NotEmpty(h.t, out.SilenceID)
	return out.SilenceID
}

type apiAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

func (h *harness) alerts(tenantID string) []apiAlert {
	h.t.Helper()
	code, body := h.do(tenantID, http.MethodGet, PathPrefix+"/api/v2/alerts", "")
	require.Equal(h.t, http.StatusOK, code, body)
	var out []apiAlert
	require.NoError(h.t, json.Unmarshal([]byte(body), &out))
	return out
}

type apiSilence struct {
	ID     string `json:"id"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

func (h *harness) silences(tenantID string) []apiSilence {
	h.t.Helper()
	code, body := h.do(tenantID, http.MethodGet, PathPrefix+"/api/v2/silences", "")
	require.Equal(h.t, http.StatusOK, code, body)
	var out []apiSilence
	require.NoError(h.t, json.Unmarshal([]byte(body), &out))
	return out
}

// webhook is a receiver that records the alert names of the notifications it gets.
type webhook struct {
	srv *httptest.Server
	mtx sync.Mutex
	got []string    // alertname of each alert notified, in order
	at  []time.Time // when each was received
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &msg); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mtx.Lock()
		for _, a := range msg.Alerts {
			w.got = append(w.got, a.Labels["alertname"])
			w.at = append(w.at, time.Now())
		}
		w.mtx.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) received() []string {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	return append([]string(nil), w.got...)
}

// receivedAt returns when each notification of alertname was received, in order.
func (w *webhook) receivedAt(alertname string) []time.Time {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	var out []time.Time
	for i, name := range w.got {
		if name == alertname {
			out = append(out, w.at[i])
		}
	}
	return out
}

// webhookConfig routes every alert, grouped by alertname, to a webhook at url with short timers.
func webhookConfig(url string) alertstore.AlertConfig {
	return alertstore.AlertConfig{AlertmanagerConfig: fmt.Sprintf(`
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 10ms
  group_interval: 100ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: false
`, url)}
}

// notificationLogged says whether the tenant's notification log has the hook's notification of the
// group of alertname from since on. The notification log is written after the receiver answered: a
// stop in between forgets it, and the notification is sent again.
func (h *harness) notificationLogged(tenantID, alertname string, since time.Time) bool {
	inst := h.am.instance(tenantID)
	if inst == nil {
		return false
	}
	entries, err := inst.nflog.Query(
		nflog.QReceiver(&nflogpb.Receiver{GroupName: "hook", Integration: "webhook"}),
		nflog.QGroupKey(fmt.Sprintf("{}:{alertname=%q}", alertname)))
	if errors.Is(err, nflog.ErrNotFound) {
		return false
	}
	require.NoError(h.t, err)
	return len(entries) == 1 && !entries[0].GetTimestamp().AsTime().Before(since)
}

// tenantSum sums the values of the series of the counter or gauge name that the tenant's label selects.
func (h *harness) tenantSum(name, tenantID string) float64 {
	h.t.Helper()
	families, err := h.reg.Gather()
	require.NoError(h.t, err)
	var sum float64
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "tenant" && lp.GetValue() == tenantID {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return sum
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 15*time.Second, 10*time.Millisecond, msg)
}

// tenantOverrides are tenants' runtime overrides, which a test may change while the Alertmanager runs.
type tenantOverrides struct {
	mtx     sync.Mutex
	tenants map[string]*validation.Limits
}

// newTenantOverrides returns the overrides, empty, and the limits of every tenant with them.
func newTenantOverrides() (*tenantOverrides, *validation.Overrides) {
	o := &tenantOverrides{tenants: map[string]*validation.Limits{}}
	return o, validation.NewOverrides(validation.DefaultLimits(), o)
}

// set gives tenantID the default limits as mod changes them, replacing its previous overrides.
func (o *tenantOverrides) set(tenantID string, mod func(*validation.Limits)) {
	l := validation.DefaultLimits()
	mod(&l)
	o.mtx.Lock()
	defer o.mtx.Unlock()
	o.tenants[tenantID] = &l
}

func (o *tenantOverrides) ByTenant(tenantID string) *validation.Limits {
	o.mtx.Lock()
	defer o.mtx.Unlock()
	return o.tenants[tenantID]
}

func (o *tenantOverrides) AllByTenant() map[string]*validation.Limits {
	o.mtx.Lock()
	defer o.mtx.Unlock()
	return maps.Clone(o.tenants)
}

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("test", flag.ContinueOnError) }

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
