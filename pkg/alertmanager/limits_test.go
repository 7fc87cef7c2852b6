package alertmanager

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/validation"
)

// postAlertAt fires (endsAt zero) or resolves an alert with labels and annotations through the v2 API.
func (h *harness) postAlertAt(tenantID string, labels, annotations map[string]string, endsAt time.Time) {
	h.t.Helper()
	a := map[string]any{
		"labels":      labels,
		"annotations": annotations,
		"startsAt":    time.Now().Add(-time.Minute).Format(time.RFC3339),
	}
	if !endsAt.IsZero() {
		a["endsAt"] = endsAt.Format(time.RFC3339)
	}
	body, err := json.Marshal([]map[string]any{a})
	require.NoError(h.t, err)
	code, resp := h.do(tenantID, http.MethodPost, PathPrefix+"/api/v2/alerts", string(body))
	require.Equal(h.t, http.StatusOK, code, resp)
}

func TestAlertmanager_MaxAlertsSizeBytesIsPerTenant(t *testing.T) {
	overrides, limits := newTenantOverrides()
	// Each alert below is 125 bytes: alertname=Big (12), i=<n> (2), description=<100 bytes> (111).
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxAlertsSizeBytes = 300 })
	h := newLimitedHarness(t, objstore.NewInMemBucket(), testConfig(t), limits)
	h.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	h.setConfig("t2", webhookConfig("http://127.0.0.1:1/"))
	fire := func(tenantID, i string, description int, endsAt time.Time) {
		h.postAlertAt(tenantID, map[string]string{"alertname": "Big", "i": i},
			map[string]string{"description": strings.Repeat("x", description)}, endsAt)
	}
	discarded := func() float64 {
		return testutil.ToFloat64(h.am.metrics.alertsDiscarded.WithLabelValues("t1", "alertmanager_max_alerts_size_bytes"))
	}
	for _, i := range []string{"1", "2", "3"} {
		fire("t1", i, 100, time.Time{})
		fire("t2", i, 100, time.Time{})
	}
	require.Len(t, h.alerts("t1"), 2, "the third alert would take t1 to 375 bytes")
	require.Equal(t, 1.0, discarded())
	require.Len(t, h.alerts("t2"), 3, "a tenant without overrides has the default limit")

	fire("t1", "1", 100, time.Time{})
	require.Equal(t, 1.0, discarded(), "an update that does not grow the alert passes")
	fire("t1", "1", 200, time.Time{})
	require.Equal(t, 2.0, discarded(), "one that grows it over the limit does not")
	fire("t1", "1", 200, time.Now().Add(-time.Second))
	require.Equal(t, 2.0, discarded(), "resolving an alert always passes")
	require.Len(t, h.alerts("t1"), 1, "the resolved alert is no longer listed")

	// A change of the overrides applies to the next alert.
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxAlertsSizeBytes = 0 })
	fire("t1", "3", 100, time.Time{})
	fire("t1", "4", 100, time.Time{})
	require.Len(t, h.alerts("t1"), 3)
}

func TestAlertmanager_MaxDispatcherAggregationGroupsIsPerTenant(t *testing.T) {
	overrides, limits := newTenantOverrides()
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxDispatcherAggregationGroups = 2 })
	var logs syncBuffer
	h := startHarness(t, objstore.NewInMemBucket(), testConfig(t), limits, func(am *MultitenantAlertmanager) {
		am.logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	hook1, hook2 := newWebhook(t), newWebhook(t)
	h.setConfig("t1", webhookConfig(hook1.srv.URL)) // grouped by alertname: one group per alert here
	h.setConfig("t2", webhookConfig(hook2.srv.URL))
	// One at a time for t1: the dispatcher takes alerts posted together in no set order, and which group
	// is the one over the limit must be known.
	for i, name := range []string{"A", "B", "C"} {
		h.postAlert("t1", map[string]string{"alertname": name})
		h.postAlert("t2", map[string]string{"alertname": name})
		if i < 2 {
			eventually(t, func() bool {
				return h.tenantSum("strata_alertmanager_dispatcher_aggregation_groups", "t1") == float64(i+1)
			}, "t1's group of "+name+" is made")
		}
	}
	eventually(t, func() bool { return len(hook2.received()) == 3 }, "a tenant without overrides has the default limit")
	eventually(t, func() bool {
		return h.tenantSum("strata_alertmanager_dispatcher_aggregation_group_limit_reached_total", "t1") == 1
	}, "the third group is over t1's limit")
	eventually(t, func() bool { return len(hook1.received()) == 2 }, "the first two groups are notified")
	require.NotContains(t, hook1.received(), "C")
	require.Equal(t, 2.0, h.tenantSum("strata_alertmanager_dispatcher_aggregation_groups", "t1"))
	require.NotContains(t, logs.String(), msgAggregationGroupLimit, "an alert over the limit is counted, not logged")

	// A change of the overrides applies to the next alert, without restarting the tenant.
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxDispatcherAggregationGroups = 3 })
	h.postAlert("t1", map[string]string{"alertname": "C"})
	eventually(t, func() bool { return slices.Contains(hook1.received(), "C") }, "the third group is notified")
}

func TestDropMessageHandler_DropsOnlyItsMessage(t *testing.T) {
	var buf bytes.Buffer
	logger := withoutAggregationGroupLimitLogs(slog.New(slog.NewTextHandler(&buf, nil))).With("component", "dispatcher")
	logger.Error(msgAggregationGroupLimit, "limit", 2)
	logger.WithGroup("g").Error(msgAggregationGroupLimit)
	logger.Error("Notify for alerts failed", "err", "boom")
	require.NotContains(t, buf.String(), msgAggregationGroupLimit)
	require.Contains(t, buf.String(), "Notify for alerts failed")
	require.Contains(t, buf.String(), "component=dispatcher")
}
