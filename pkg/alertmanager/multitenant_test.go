package alertmanager

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/validation"
)

func TestAlertmanager_DeliversTenantsAlertsToTheirOwnReceivers(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	hookA, hookB := newWebhook(t), newWebhook(t)
	h.setConfig("team-a", webhookConfig(hookA.srv.URL))
	h.setConfig("team-b", webhookConfig(hookB.srv.URL))

	h.postAlert("team-a", map[string]string{"alertname": "DiskFull", "instance": "db1"})
	eventually(t, func() bool { return slices.Contains(hookA.received(), "DiskFull") }, "team-a's webhook gets its alert")

	// Now team-b posts one of its own: once it arrived, team-b's webhook has had time to get team-a's.
	h.postAlert("team-b", map[string]string{"alertname": "HighLatency"})
	eventually(t, func() bool { return slices.Contains(hookB.received(), "HighLatency") }, "team-b's webhook gets its alert")
	require.Equal(t, []string{"HighLatency"}, hookB.received())
	require.Equal(t, []string{"DiskFull"}, hookA.received())
}

func TestAlertmanager_TenantsAreIsolatedInTheAPI(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	hook := newWebhook(t)
	h.setConfig("team-a", webhookConfig(hook.srv.URL))
	h.setConfig("team-b", webhookConfig(hook.srv.URL))

	h.postAlert("team-a", map[string]string{"alertname": "OnlyA"})
	silenceID := h.createSilence("team-a", "alertname", "Other")

	require.Len(t, h.alerts("team-a"), 1)
	require.Len(t, h.silences("team-a"), 1)
	require.Empty(t, h.alerts("team-b"))
	require.Empty(t, h.silences("team-b"))
	code, _ := h.do("team-b", http.MethodGet, PathPrefix+"/api/v2/silence/"+silenceID, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = h.do("team-b", http.MethodDelete, PathPrefix+"/api/v2/silence/"+silenceID, "")
	require.NotEqual(t, http.StatusOK, code, "team-b cannot expire team-a's silence")
	require.Equal(t, "active", h.silences("team-a")[0].Status.State)

	// A tenant without a configuration has no Alertmanager, and no fallback is configured.
	code, body := h.do("team-c", http.MethodGet, PathPrefix+"/api/v2/alerts", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "the Alertmanager is not configured")
}

func TestAlertmanager_SilenceSuppressesNotifications(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	hook := newWebhook(t)
	h.setConfig("t1", webhookConfig(hook.srv.URL))

	h.createSilence("t1", "alertname", "Silenced")
	h.postAlert("t1", map[string]string{"alertname": "Silenced"})
	eventually(t, func() bool {
		a := h.alerts("t1")
		return len(a) == 1 && a[0].Status.State == "suppressed"
	}, "the alert is suppressed by the silence")

	// An alert of another group goes out; the silenced one, grouped the same way, has had its
	// chance to be notified by then.
	h.postAlert("t1", map[string]string{"alertname": "Loud"})
	eventually(t, func() bool { return slices.Contains(hook.received(), "Loud") }, "the unsilenced alert is notified")
	require.Equal(t, []string{"Loud"}, hook.received())
}

func TestAlertmanager_ConfigUpdateKeepsSilencesAndAlerts(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	hookOld, hookNew := newWebhook(t), newWebhook(t)
	h.setConfig("t1", webhookConfig(hookOld.srv.URL))
	id := h.createSilence("t1", "alertname", "Silenced")
	h.postAlert("t1", map[string]string{"alertname": "Kept"})
	eventually(t, func() bool { return slices.Contains(hookOld.received(), "Kept") }, "notified under the first configuration")

	// A receiver of another name: the notification log would otherwise, rightly, remember that this
	// group was notified to "hook" already.
	renamed := webhookConfig(hookNew.srv.URL)
	renamed.AlertmanagerConfig = strings.ReplaceAll(renamed.AlertmanagerConfig, ": hook", ": new-hook")
	h.setConfig("t1", renamed)
	sils := h.silences("t1")
	require.Len(t, sils, 1)
	require.Equal(t, id, sils[0].ID)
	require.Equal(t, "active", sils[0].Status.State)
	require.Len(t, h.alerts("t1"), 1)

	// The new dispatcher routes the held alert to the new receiver.
	eventually(t, func() bool { return slices.Contains(hookNew.received(), "Kept") }, "the alert held goes to the new receiver")
}

func TestAlertmanager_StateSurvivesRestart(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	cfg := testConfig(t)
	h := newHarness(t, bkt, cfg)
	hook := newWebhook(t)
	h.setConfig("t1", webhookConfig(hook.srv.URL))
	id := h.createSilence("t1", "alertname", "Silenced")
	h.postAlert("t1", map[string]string{"alertname": "Notified"})
	eventually(t, func() bool { return slices.Contains(hook.received(), "Notified") }, "notified before the restart")
	eventually(t, func() bool { return h.notificationLogged("t1", "Notified", time.Time{}) }, "and logged")
	h.stop()

	h2 := newHarness(t, bkt, cfg)
	sils := h2.silences("t1")
	require.Len(t, sils, 1, "the silence was persisted on stop and restored on start")
	require.Equal(t, id, sils[0].ID)
	require.Equal(t, "active", sils[0].Status.State)

	// The notification log came back too: the same alert, posted again, is not notified twice
	// within the repeat interval.
	h2.postAlert("t1", map[string]string{"alertname": "Notified"})
	h2.postAlert("t1", map[string]string{"alertname": "Fresh"})
	eventually(t, func() bool { return slices.Contains(hook.received(), "Fresh") }, "a new alert is notified after the restart")
	require.Equal(t, []string{"Notified", "Fresh"}, hook.received())
}

func TestAlertmanager_PersistsPeriodically(t *testing.T) {
	cfg := testConfig(t)
	cfg.PersistInterval = 20 * time.Millisecond
	h := newHarness(t, objstore.NewInMemBucket(), cfg)
	h.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	h.createSilence("t1", "alertname", "X")
	eventually(t, func() bool {
		state, err := h.store.GetState(context.Background(), "t1")
		if err != nil {
			return false
		}
		sil, _, err := decodeState(state)
		return err == nil && len(sil) > 0
	}, "the silence is written without a stop")
	persists := testutil.ToFloat64(h.am.metrics.persists.WithLabelValues("success"))
	time.Sleep(5 * cfg.PersistInterval) // let several unchanged rounds pass; none should write
	require.Equal(t, persists, testutil.ToFloat64(h.am.metrics.persists.WithLabelValues("success")), "an unchanged state is not written again")
}

func TestAlertmanager_DeletedConfigStopsTenantAndDropsState(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	h.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	h.createSilence("t1", "alertname", "X")
	// A persisted state, as a periodic persist would have left.
	h.am.persistAll(context.Background())
	_, err := h.store.GetState(context.Background(), "t1")
	require.NoError(t, err)
	require.DirExists(t, filepath.Join(h.am.cfg.DataDir, "t1"))

	code, _ := h.do("t1", http.MethodDelete, ConfigPath, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, h.am.SyncConfigs(context.Background()))

	code, _ = h.do("t1", http.MethodGet, PathPrefix+"/api/v2/silences", "")
	require.Equal(t, http.StatusNotFound, code)
	_, err = h.store.GetState(context.Background(), "t1")
	require.ErrorIs(t, err, alertstore.ErrNotFound)
	require.NoDirExists(t, filepath.Join(h.am.cfg.DataDir, "t1"))
}

func TestAlertmanager_FallbackConfig(t *testing.T) {
	hook := newWebhook(t)
	cfg := testConfig(t)
	cfg.FallbackConfigFile = filepath.Join(t.TempDir(), "fallback.yaml")
	require.NoError(t, os.WriteFile(cfg.FallbackConfigFile, []byte(webhookConfig(hook.srv.URL).AlertmanagerConfig), 0o644))
	h := newHarness(t, objstore.NewInMemBucket(), cfg)

	require.Empty(t, h.am.Tenants(), "fallback Alertmanagers start on first use")
	h.postAlert("newcomer", map[string]string{"alertname": "ViaFallback"})
	eventually(t, func() bool { return slices.Contains(hook.received(), "ViaFallback") }, "the fallback's receiver gets the alert")
	tenants := h.am.Tenants()
	require.Len(t, tenants, 1)
	require.Equal(t, "fallback", tenants[0].Config)

	code, _ := h.do("newcomer", http.MethodGet, ConfigPath, "")
	require.Equal(t, http.StatusNotFound, code, "the fallback is not the tenant's own configuration")
	require.NoError(t, h.am.SyncConfigs(context.Background()))
	require.Len(t, h.am.Tenants(), 1, "a sync keeps a fallback Alertmanager")

	// Uploading a configuration replaces the fallback in place, silences kept.
	h.createSilence("newcomer", "alertname", "X")
	h.setConfig("newcomer", webhookConfig(hook.srv.URL))
	require.Equal(t, "own", h.am.Tenants()[0].Config)
	require.Len(t, h.silences("newcomer"), 1)

	// Deleting it goes back to the fallback, silences kept.
	code, _ = h.do("newcomer", http.MethodDelete, ConfigPath, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, h.am.SyncConfigs(context.Background()))
	require.Equal(t, "fallback", h.am.Tenants()[0].Config)
	require.Len(t, h.silences("newcomer"), 1)
}

func TestNew_RejectsBadFallback(t *testing.T) {
	store, err := alertstore.New(alertstore.Config{Prefix: "alertmanager"}, objstore.NewInMemBucket())
	require.NoError(t, err)
	for name, content := range map[string]string{
		"invalid":   "route: {}\n",
		"templates": minimalConfig + "templates: ['*.tmpl']\n",
	} {
		cfg := testConfig(t)
		cfg.FallbackConfigFile = filepath.Join(t.TempDir(), "fallback.yaml")
		require.NoError(t, os.WriteFile(cfg.FallbackConfigFile, []byte(content), 0o644))
		_, err := New(cfg, store, nil, prometheusRegistry(), discardLogger())
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "-alertmanager.fallback-config-file", name)
	}
}

func TestAlertmanager_OwnsSelectsTenants(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	h := newHarness(t, bkt, testConfig(t))
	h.setConfig("mine", webhookConfig("http://127.0.0.1:1/"))
	h.setConfig("theirs", webhookConfig("http://127.0.0.1:1/"))
	h.createSilence("theirs", "alertname", "X")
	require.Len(t, h.am.Tenants(), 2)

	// The ring moved "theirs" elsewhere: it stops here, and its state is kept for the new owner.
	h.am.Owns = func(id string) bool { return id == "mine" }
	require.NoError(t, h.am.SyncConfigs(context.Background()))
	tenants := h.am.Tenants()
	require.Len(t, tenants, 1)
	require.Equal(t, "mine", tenants[0].Tenant)
	state, err := h.store.GetState(context.Background(), "theirs")
	require.NoError(t, err)
	sil, _, err := decodeState(state)
	require.NoError(t, err)
	require.NotEmpty(t, sil)
}

func TestAlertmanager_InvalidStoredConfigKeepsPrevious(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	hook := newWebhook(t)
	h.setConfig("t1", webhookConfig(hook.srv.URL))
	// Written around the config API (by hand, or by an older version with other rules).
	require.NoError(t, h.store.SetConfig(context.Background(), "t1", alertstore.AlertConfig{AlertmanagerConfig: "route: {receiver: nope}\n"}))
	require.Error(t, h.am.SyncConfigs(context.Background()))
	require.Equal(t, 0.0, testutil.ToFloat64(h.am.metrics.lastApplyOK.WithLabelValues("t1")))
	require.NoError(t, h.am.SyncConfigs(context.Background()), "a configuration that failed is not retried until it changes")

	h.postAlert("t1", map[string]string{"alertname": "StillRouted"})
	eventually(t, func() bool { return slices.Contains(hook.received(), "StillRouted") }, "the previous configuration stays in effect")

	// A stored configuration with local-file settings is refused at apply time too.
	require.NoError(t, h.store.SetConfig(context.Background(), "t2", alertstore.AlertConfig{AlertmanagerConfig: strings.ReplaceAll(
		webhookConfig("http://x/").AlertmanagerConfig, "send_resolved: false", "http_config: {bearer_token_file: /etc/x}")}))
	err := h.am.SyncConfigs(context.Background())
	require.ErrorIs(t, err, errLocalSettings)
	code, _ := h.do("t2", http.MethodGet, PathPrefix+"/api/v2/status", "")
	require.Equal(t, http.StatusNotFound, code)
}

func TestAlertmanager_TemplatesAreTheTenants(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	cfg := webhookConfig("http://127.0.0.1:1/")
	cfg.AlertmanagerConfig += "templates: ['*.tmpl']\n"
	cfg.TemplateFiles = map[string]string{"a.tmpl": `{{ define "a" }}A{{ end }}`, "unused.txt": "{{ not parsed"}
	h.setConfig("t1", cfg)
	dir := filepath.Join(h.am.cfg.DataDir, "t1", "templates")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "the tenant's template files are written to its own directory")

	code, body := h.do("t1", http.MethodGet, PathPrefix+"/api/v2/status", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "*.tmpl")
}

func TestAlertmanager_HTTPPaths(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	h.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	h.postAlert("t1", map[string]string{"alertname": "OnThePage"})

	for _, tc := range []struct {
		method, path string
		code         int
		bodyHas      string
	}{
		{http.MethodGet, PathPrefix + "/-/healthy", http.StatusOK, "OK"},
		{http.MethodGet, PathPrefix + "/-/ready", http.StatusOK, "OK"},
		{http.MethodPost, PathPrefix + "/-/healthy", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, PathPrefix + "/api/v2/status", http.StatusOK, `"original"`},
		{http.MethodGet, PathPrefix + "/api/v2/receivers", http.StatusOK, "hook"},
		{http.MethodGet, PathPrefix + "/api/v1/alerts", http.StatusGone, "deprecated"},
		{http.MethodGet, PathPrefix, http.StatusFound, ""},
		{http.MethodGet, PathPrefix + "/", http.StatusOK, "OnThePage"},
		{http.MethodGet, PathPrefix + "/nothing-here", http.StatusNotFound, ""},
		{http.MethodGet, "/elsewhere", http.StatusNotFound, ""},
	} {
		code, body := h.do("t1", tc.method, tc.path, "")
		require.Equal(t, tc.code, code, "%s %s: %s", tc.method, tc.path, body)
		require.Contains(t, body, tc.bodyHas, "%s %s", tc.method, tc.path)
	}
	// Health does not depend on the tenant having an Alertmanager.
	code, _ := h.do("unconfigured", http.MethodGet, PathPrefix+"/-/healthy", "")
	require.Equal(t, http.StatusOK, code)
}

func TestAlertmanager_RefusesOversizedAPIBodies(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	h.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	body := `[{"labels":{"alertname":"` + strings.Repeat("x", maxAPIBodyBytes) + `"}}]`
	code, resp := h.do("t1", http.MethodPost, PathPrefix+"/api/v2/alerts", body)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, resp)
	require.Empty(t, h.alerts("t1"))
}

func TestAlertmanager_MaxAlertsCountIsPerTenant(t *testing.T) {
	overrides, limits := newTenantOverrides()
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxAlertsCount = 3 })
	overrides.set("t2", func(l *validation.Limits) { l.AlertmanagerMaxAlertsCount = 5 })
	h := newLimitedHarness(t, objstore.NewInMemBucket(), testConfig(t), limits)
	for _, id := range []string{"t1", "t2", "t3"} {
		h.setConfig(id, webhookConfig("http://127.0.0.1:1/"))
		for i := range 10 {
			h.postAlert(id, map[string]string{"alertname": "Flood", "i": string(rune('a' + i))})
		}
	}
	require.Len(t, h.alerts("t1"), 3)
	require.Len(t, h.alerts("t2"), 5)
	require.Len(t, h.alerts("t3"), 10, "a tenant without overrides has the default limit")
	require.Equal(t, 7.0, testutil.ToFloat64(h.am.metrics.alertsDiscarded.WithLabelValues("t1", "alertmanager_max_alerts_count")))
	require.Equal(t, 5.0, testutil.ToFloat64(h.am.metrics.alertsDiscarded.WithLabelValues("t2", "alertmanager_max_alerts_count")))

	// Held alerts can still be updated.
	h.postAlert("t1", map[string]string{"alertname": "Flood", "i": "a"})
	require.Equal(t, 7.0, testutil.ToFloat64(h.am.metrics.alertsDiscarded.WithLabelValues("t1", "alertmanager_max_alerts_count")))

	// A change of the overrides applies to the next alert, without restarting the tenant.
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxAlertsCount = 4 })
	h.postAlert("t1", map[string]string{"alertname": "Flood", "i": "x"})
	h.postAlert("t1", map[string]string{"alertname": "Flood", "i": "y"})
	require.Len(t, h.alerts("t1"), 4)
}

func TestAlertmanager_MaxSilencesIsPerTenantAndLive(t *testing.T) {
	overrides, limits := newTenantOverrides()
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxSilencesCount = 1 })
	h := newLimitedHarness(t, objstore.NewInMemBucket(), testConfig(t), limits)
	h.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	h.setConfig("t2", webhookConfig("http://127.0.0.1:1/"))
	h.createSilence("t1", "alertname", "A")
	code, resp := h.do("t1", http.MethodPost, PathPrefix+"/api/v2/silences", silenceBody(t, "alertname", "B"))
	require.Equal(t, http.StatusBadRequest, code, resp)
	require.Contains(t, resp, "exceeded maximum number of silences")
	h.createSilence("t2", "alertname", "A")
	h.createSilence("t2", "alertname", "B")

	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxSilencesCount = 2 })
	h.createSilence("t1", "alertname", "B")
	require.Len(t, h.silences("t1"), 2)
}

func TestAlertmanager_Metrics(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	hook := newWebhook(t)
	h.setConfig("t1", webhookConfig(hook.srv.URL))
	h.postAlert("t1", map[string]string{"alertname": "Counted"})
	eventually(t, func() bool { return len(hook.received()) == 1 }, "notified")

	eventually(t, func() bool {
		return testutil.CollectAndCount(h.reg, "strata_alertmanager_notifications_total") == 1
	}, "one integration's series")
	require.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP strata_alertmanager_alerts_received_total Alerts received by the tenant's Alertmanager API, by status.
# TYPE strata_alertmanager_alerts_received_total counter
strata_alertmanager_alerts_received_total{status="firing",tenant="t1"} 1
strata_alertmanager_alerts_received_total{status="resolved",tenant="t1"} 0
# HELP strata_alertmanager_notifications_total Notifications attempted, by integration.
# TYPE strata_alertmanager_notifications_total counter
strata_alertmanager_notifications_total{integration="webhook",tenant="t1"} 1
# HELP strata_alertmanager_tenants Tenants whose Alertmanager runs here, by the configuration it runs: the tenant's own or the fallback.
# TYPE strata_alertmanager_tenants gauge
strata_alertmanager_tenants{config="fallback"} 0
strata_alertmanager_tenants{config="own"} 1
`), "strata_alertmanager_alerts_received_total", "strata_alertmanager_notifications_total", "strata_alertmanager_tenants"))

	// A tenant that stops takes its series along; starting it again registers them anew.
	code, _ := h.do("t1", http.MethodDelete, ConfigPath, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, h.am.SyncConfigs(context.Background()))
	require.Zero(t, testutil.CollectAndCount(h.reg, "strata_alertmanager_alerts_received_total"))
	h.setConfig("t1", webhookConfig(hook.srv.URL))
	h.alerts("t1") // the API, and its metrics, exist from the tenant's first request on
	require.Equal(t, 2, testutil.CollectAndCount(h.reg, "strata_alertmanager_alerts_received_total"))
	_, err := h.reg.Gather()
	require.NoError(t, err)
}

func TestStatusHandler(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	h.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	for accept, has := range map[string]string{"": "<td>t1</td>", "application/json": `"tenant":"t1"`} {
		req, err := http.NewRequest(http.MethodGet, StatusPath, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		rec := newRecorder()
		h.am.StatusHandler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Contains(t, rec.Body.String(), has)
	}
}
