package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// webhookReceiver records the notifications an Alertmanager delivers to it.
type webhookReceiver struct {
	*httptest.Server
	mtx      sync.Mutex
	received []webhookMessage
	at       []time.Time
}

type webhookMessage struct {
	Status string `json:"status"`
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		var m webhookMessage
		require.NoError(t, json.Unmarshal(body, &m), string(body))
		w.mtx.Lock()
		w.received = append(w.received, m)
		w.at = append(w.at, time.Now())
		w.mtx.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhookReceiver) messages() []webhookMessage {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	return append([]webhookMessage(nil), w.received...)
}

// times returns when each notification arrived.
func (w *webhookReceiver) times() []time.Time {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	return append([]time.Time(nil), w.at...)
}

// runTool runs a command and requires it to succeed.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// TestRulesAndAlerts_FromRuleFileToNotification follows a rule file to a notification in one Strata:
// loaded with stratatool for tenant A, its recording rule writes for A only, its alert fires after
// 'for' and reaches A's Alertmanager, which notifies A's webhook; B's webhook hears nothing; a silence
// added with amtool (the tenant header from its --http.config.file) suppresses the alert.
func TestRulesAndAlerts_FromRuleFileToNotification(t *testing.T) {
	stratatool, amtool := stratatoolBinary(t), moduleTool(t, "amtool")
	dir := t.TempDir()
	s := startStrata(t, dir+"/data", "-ruler.poll-interval=1s", "-ruler.evaluation-interval=1s",
		"-alertmanager.configs.poll-interval=1s", "-ruler.resend-delay=1s",
		// The webhooks below listen on loopback, which the receivers firewall blocks by default.
		"-alertmanager.receivers-firewall-block-cidr-networks=")
	const tenantA, tenantB = "team-a", "team-b"
	hookA, hookB := newWebhookReceiver(t), newWebhookReceiver(t)
	for tenantID, hook := range map[string]*webhookReceiver{tenantA: hookA, tenantB: hookB} {
		config := writeFile(t, dir, tenantID+"-alertmanager.yml", `route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
- name: hook
  webhook_configs:
  - url: `+hook.URL+`
`)
		runTool(t, stratatool, "alertmanager", "load", "--address="+s.url(""), "--id="+tenantID, config)
	}

	now := time.Now().UnixMilli()
	series := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "api"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: now}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "queue_length"}, {Name: "queue", Value: "q1"}}, Samples: []prompb.Sample{{Value: 50, Timestamp: now}}},
	}}
	for _, tenantID := range []string{tenantA, tenantB} {
		code, body := push(t, s.url("/api/v1/push"), tenantID, series)
		require.Equal(t, http.StatusNoContent, code, body)
	}

	rules := writeFile(t, dir, "rules.yml", `namespace: queues
groups:
- name: queue-health
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: QueueTooLong
    expr: queue_length > 10
    for: 3s
    labels: {severity: page}
    annotations:
      summary: "queue {{ $labels.queue }} holds {{ $value }} items"
`)
	runTool(t, stratatool, "rules", "check", rules)
	loaded := time.Now()
	runTool(t, stratatool, "rules", "load", "--address="+s.url(""), "--id="+tenantA, rules)

	// The recording rule's series, for A only.
	var vector []struct {
		Metric map[string]string `json:"metric"`
	}
	require.Eventually(t, func() bool {
		mustGetAPI(t, s.url(""), "/prometheus/api/v1/query", tenantA, url.Values{"query": {"job:up:sum"}}, &struct {
			Result *[]struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}{Result: &vector})
		return len(vector) == 1
	}, 20*time.Second, 200*time.Millisecond)
	require.Equal(t, map[string]string{"__name__": "job:up:sum", "job": "api"}, vector[0].Metric)
	mustGetAPI(t, s.url(""), "/prometheus/api/v1/query", tenantB, url.Values{"query": {"job:up:sum"}}, &struct {
		Result *[]struct {
			Metric map[string]string `json:"metric"`
		} `json:"result"`
	}{Result: &vector})
	require.Empty(t, vector, "tenant B has no rules: no recorded series")

	// The alert, pending for 'for', then at A's webhook with A's labels and annotations.
	require.Eventually(t, func() bool { return len(hookA.messages()) > 0 }, 30*time.Second, 100*time.Millisecond)
	firstNotification := time.Now()
	require.GreaterOrEqual(t, firstNotification.Sub(loaded), 3*time.Second, "notified before the alert's 'for' passed")
	msg := hookA.messages()[0]
	require.Equal(t, "firing", msg.Status)
	require.Len(t, msg.Alerts, 1)
	require.Equal(t, map[string]string{"alertname": "QueueTooLong", "queue": "q1", "severity": "page"}, msg.Alerts[0].Labels)
	require.Equal(t, map[string]string{"summary": "queue q1 holds 50 items"}, msg.Alerts[0].Annotations)

	// amtool, against A's Alertmanager with A's header, lists the alert and silences it.
	httpConfig := writeFile(t, dir, "amtool-http.yml", "http_headers:\n  X-Scope-OrgID:\n    values: ["+tenantA+"]\n")
	amArgs := []string{"--alertmanager.url=" + s.url("/alertmanager"), "--http.config.file=" + httpConfig}
	require.Contains(t, runTool(t, amtool, append([]string{"alert", "query"}, amArgs...)...), "QueueTooLong")
	silenceID := strings.TrimSpace(runTool(t, amtool, append([]string{"silence", "add", "alertname=QueueTooLong",
		"--comment=maintenance", "--author=integration", "--duration=1h"}, amArgs...)...))
	require.NotEmpty(t, silenceID)
	require.Contains(t, runTool(t, amtool, append([]string{"silence", "query", "-q"}, amArgs...)...), silenceID)
	silencedHTTP := writeFile(t, dir, "amtool-b.yml", "http_headers:\n  X-Scope-OrgID:\n    values: ["+tenantB+"]\n")
	require.NotContains(t, runTool(t, amtool, "silence", "query", "-q", "--alertmanager.url="+s.url("/alertmanager"), "--http.config.file="+silencedHTTP), silenceID,
		"tenant B does not see tenant A's silence")

	// Silenced, the alert is repeated no more (repeat_interval is 2s), though the ruler still sends it.
	var alerts []struct {
		Status struct {
			State      string   `json:"state"`
			SilencedBy []string `json:"silencedBy"`
		} `json:"status"`
	}
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodGet, s.url("/alertmanager/api/v2/alerts"), nil)
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", tenantA)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&alerts))
		return len(alerts) == 1 && alerts[0].Status.State == "suppressed"
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, []string{silenceID}, alerts[0].Status.SilencedBy)
	time.Sleep(2 * time.Second) // a notification being sent when the silence came may still land
	before := len(hookA.messages())
	time.Sleep(6 * time.Second)
	require.Equal(t, before, len(hookA.messages()), "notifications went on under the silence")
	require.Empty(t, hookB.messages(), "tenant B's webhook heard of tenant A's alert")
}
