package alertmanager

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"go.uber.org/goleak"
)

func TestStop_LeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	hook := newWebhook(t)
	cfg := testConfig(t)
	cfg.PersistInterval = 10 * time.Millisecond
	cfg.FallbackConfigFile = filepath.Join(t.TempDir(), "fallback.yaml")
	require.NoError(t, os.WriteFile(cfg.FallbackConfigFile, []byte(webhookConfig(hook.srv.URL).AlertmanagerConfig), 0o644))
	h := newHarness(t, objstore.NewInMemBucket(), cfg)

	// Every kind of part runs: tenants with their own configuration, changed and deleted ones, a
	// fallback one started by a request, notifications sent, silences and inhibitions.
	withInhibition := webhookConfig(hook.srv.URL)
	withInhibition.AlertmanagerConfig += "inhibit_rules:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [alertname]\n"
	h.setConfig("a", withInhibition)
	h.setConfig("b", webhookConfig(hook.srv.URL))
	h.postAlert("a", map[string]string{"alertname": "A"})
	h.postAlert("fallback-tenant", map[string]string{"alertname": "F"})
	h.createSilence("b", "alertname", "B")
	eventually(t, func() bool {
		got := hook.received()
		return slices.Contains(got, "A") && slices.Contains(got, "F")
	}, "notified")
	h.setConfig("a", webhookConfig(hook.srv.URL))
	code, _ := h.do("b", http.MethodDelete, ConfigPath, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, h.am.SyncConfigs(context.Background()))

	h.stop()
	// The receivers' HTTP clients keep idle connections to the webhook until it closes them.
	hook.srv.Close()
}

func TestStop_LeavesNoGoroutines_Replicated(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	hook := newWebhook(t)
	c := newCluster(t, 3, clusterConfig(t))
	c.setConfig("t1", webhookConfig(hook.srv.URL))
	// Alerts and silences through every path: distributed to the replicas, replicated between them,
	// a replica killed (its peers' sends to it fail) and restarted (it reads their state).
	c.nodes[2].postAlert("t1", map[string]string{"alertname": "A"})
	id := c.nodes[1].createSilence("t1", "alertname", "B")
	eventually(t, func() bool { return slices.Contains(hook.received(), "A") }, "notified")
	c.nodes[0].kill()
	c.nodes[1].createSilence("t1", "alertname", "C")
	restarted := c.restart(0)
	require.Contains(t, restarted.silenceIDs("t1"), id)

	for _, n := range c.nodes {
		n.stop()
		n.srv.Stop()
	}
	c.ring.closeConns()
	hook.srv.Close()
}
