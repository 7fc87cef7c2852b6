package ruler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// receivedAlerts is what a fake Alertmanager's POST /alertmanager/api/v2/alerts got.
type receivedAlerts struct {
	mtx   sync.Mutex
	posts []alertsPost
}

type alertsPost struct {
	tenant, user, path string
	alerts             []map[string]any
}

func (ra *receivedAlerts) handler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		p := alertsPost{tenant: r.Header.Get("X-Scope-OrgID"), path: r.URL.Path}
		p.user, _, _ = r.BasicAuth()
		require.NoError(t, json.Unmarshal(body, &p.alerts), string(body))
		ra.mtx.Lock()
		ra.posts = append(ra.posts, p)
		ra.mtx.Unlock()
		w.WriteHeader(http.StatusOK)
	})
}

func (ra *receivedAlerts) get() []alertsPost {
	ra.mtx.Lock()
	defer ra.mtx.Unlock()
	return append([]alertsPost(nil), ra.posts...)
}

func TestRuler_SendsFiringAlertsToTheAlertmanagerURLWithTheTenantHeader(t *testing.T) {
	am := &receivedAlerts{}
	srv := httptest.NewServer(am.handler(t))
	defer srv.Close()

	cfg := testConfig(t)
	cfg.AlertmanagerURL = strings.Replace(srv.URL, "http://", "http://ruler:secret@", 1) + "/alertmanager"
	cfg.ExternalURL = "https://strata.example.com"
	now := time.Now()
	dbA := openTSDB(t, testSample{labels.FromStrings("__name__", "queue_length", "queue", "q1"), now.Add(-5 * time.Second), 50})
	dbB := openTSDB(t, testSample{labels.FromStrings("__name__", "queue_length", "queue", "q9"), now.Add(-5 * time.Second), 1})
	r := newTestRuler(t, cfg, nil, map[string]storage.Queryable{"tenant-a": dbA, "tenant-b": dbB}, Dependencies{})
	g := rulefmt.RuleGroup{Name: "queues", Rules: []rulefmt.Rule{{
		Alert:       "QueueTooLong",
		Expr:        "queue_length > 10",
		Labels:      map[string]string{"severity": "page"},
		Annotations: map[string]string{"summary": "queue {{ $labels.queue }} holds {{ $value }}"},
	}}}
	r.setGroup(t, "tenant-a", "alerts", g)
	r.setGroup(t, "tenant-b", "alerts", g)
	r.sync(t)

	require.Eventually(t, func() bool { return len(am.get()) > 0 }, waitFor, 10*time.Millisecond)
	post := am.get()[0]
	require.Equal(t, "tenant-a", post.tenant, "only tenant-a's alert fires")
	require.Equal(t, "/alertmanager/api/v2/alerts", post.path)
	require.Equal(t, "ruler", post.user)
	require.Len(t, post.alerts, 1)
	a := post.alerts[0]
	require.Equal(t, map[string]any{"alertname": "QueueTooLong", "queue": "q1", "severity": "page"}, a["labels"])
	require.Equal(t, map[string]any{"summary": "queue q1 holds 50"}, a["annotations"])
	require.Equal(t, "https://strata.example.com/graph?g0.expr=queue_length+%3E+10&g0.tab=1", a["generatorURL"])
	endsAt, err := time.Parse(time.RFC3339, a["endsAt"].(string))
	require.NoError(t, err)
	require.True(t, endsAt.After(time.Now()), "a firing alert is valid until a few intervals ahead")
	require.Eventually(t, func() bool {
		n, err := testutil.GatherAndCount(r.reg, "prometheus_notifications_sent_total")
		return err == nil && n == 1
	}, waitFor, 10*time.Millisecond, "the tenant's notifier metrics are exposed")

	// A tenant whose rules go away takes its notifier and its metrics along.
	require.NoError(t, r.store.DeleteNamespace(t.Context(), "tenant-a", "alerts"))
	r.sync(t)
	families, err := r.reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				require.False(t, l.GetName() == "tenant" && l.GetValue() == "tenant-a", "metric %s still has tenant-a", mf.GetName())
			}
		}
	}
}

func TestRuler_SyncsAsSoonAsOwnershipChanges(t *testing.T) {
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "up", "job", "a"), time.Now().Add(-5 * time.Second), 1})
	var mtx sync.Mutex
	owned, version := false, uint64(1)
	cfg := testConfig(t)
	cfg.RingCheckPeriod = 10 * time.Millisecond
	r := newTestRuler(t, cfg, nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{
		Owns: func(string, string, string) bool { mtx.Lock(); defer mtx.Unlock(); return owned },
		OwnershipVersion: func() uint64 {
			mtx.Lock()
			defer mtx.Unlock()
			return version
		},
	})
	r.setGroup(t, "tenant-a", "ns", recordingGroup("g", 0, recordRule("job:up", "up")))
	r.sync(t)
	require.Empty(t, r.groupNames("tenant-a"), "another ruler owns the group")

	mtx.Lock()
	owned, version = true, 2
	mtx.Unlock()
	// The poll interval is an hour: only the ring check can bring the group here.
	require.Eventually(t, func() bool { return len(r.groupNames("tenant-a")) == 1 }, waitFor, 10*time.Millisecond)

	mtx.Lock()
	owned, version = false, 3
	mtx.Unlock()
	require.Eventually(t, func() bool { return len(r.groupNames("tenant-a")) == 0 }, waitFor, 10*time.Millisecond)
}

func TestRuler_SendAlertsDeliversTheNotifiersRequestsWithoutAnURL(t *testing.T) {
	am := &receivedAlerts{}
	handler := am.handler(t)
	var mtx sync.Mutex
	var tenants []string
	send := func(ctx context.Context, req *http.Request) (*http.Response, error) {
		id, err := tenant.FromContext(ctx)
		require.NoError(t, err)
		mtx.Lock()
		tenants = append(tenants, id)
		mtx.Unlock()
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Result(), nil
	}
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "queue_length", "queue", "q1"), time.Now().Add(-5 * time.Second), 50})
	r := newTestRuler(t, testConfig(t), nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{SendAlerts: send})
	r.setGroup(t, "tenant-a", "alerts", rulefmt.RuleGroup{Name: "queues", Rules: []rulefmt.Rule{{Alert: "QueueTooLong", Expr: "queue_length > 10"}}})
	r.sync(t)

	require.Eventually(t, func() bool { return len(am.get()) > 0 }, waitFor, 10*time.Millisecond)
	post := am.get()[0]
	require.Equal(t, "/alertmanager/api/v2/alerts", post.path)
	require.Equal(t, "tenant-a", post.tenant)
	require.Equal(t, "QueueTooLong", post.alerts[0]["labels"].(map[string]any)["alertname"])
	mtx.Lock()
	defer mtx.Unlock()
	require.Equal(t, "tenant-a", tenants[0])
}
