package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rulerAlert is an entry of /prometheus/api/v1/alerts.
type rulerAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

// loadRuleGroup stores a rule group (YAML) through a process' config API.
func loadRuleGroup(t *testing.T, p *strataProcess, tenantID, namespace, group string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url("/prometheus/config/v1/rules/"+url.PathEscape(namespace)), bytes.NewBufferString(group))
	require.NoError(t, err)
	req.Header.Set("X-Scope-OrgID", tenantID)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
}

func rulerAlerts(t *testing.T, p *strataProcess, tenantID string) []rulerAlert {
	t.Helper()
	var out struct {
		Alerts []rulerAlert `json:"alerts"`
	}
	mustGetAPI(t, p.url(""), "/prometheus/api/v1/alerts", tenantID, nil, &out)
	return out.Alerts
}

// groupOwner returns the index of the ruler whose own rule files hold the tenant's group.
func groupOwner(rulers []*strataProcess, tenantID string) int {
	for i, r := range rulers {
		if r.exited != nil {
			select {
			case <-r.exited:
				continue
			default:
			}
		}
		matches, _ := filepath.Glob(filepath.Join(r.dataDir, "rules", tenantID, "*"))
		if len(matches) > 0 {
			return i
		}
	}
	return -1
}

// TestRuler_KilledOwnersGroupMovesWithItsAlertState runs three rulers over a 3-ingester cluster: the
// ruler that evaluates a group is killed with SIGKILL while its alert is pending; another takes the
// group within the heartbeat timeout, keeps the alert's 'for' clock, and no interval is evaluated twice.
func TestRuler_KilledOwnersGroupMovesWithItsAlertState(t *testing.T) {
	bucketDir := t.TempDir()
	c := startCluster(t, clusterOptions{ingesters: 3, args: []string{"-blocks-storage.filesystem.dir=" + bucketDir}})
	const interval = time.Second
	var rulers []*strataProcess
	for i := range 3 {
		name := fmt.Sprintf("ruler-%d", i+1)
		p := c.newProcess(name, 0, "-target=ruler",
			"-ruler.ring.instance-id="+name, "-ruler.ring.instance-addr=127.0.0.1",
			"-ruler.ring.heartbeat-period="+testHeartbeatPeriod,
			"-ruler.ring-check-period=200ms", "-ruler.poll-interval=1s",
			"-ruler.for-grace-period=1s", "-ruler.for-outage-tolerance=1h")
		p.startNoWait()
		rulers = append(rulers, p)
	}
	for _, p := range rulers {
		p.waitReady()
	}
	require.Eventually(t, func() bool {
		view := ringViewAt(t, rulers[0], "/ruler/ring")
		return len(view) == 3
	}, 20*time.Second, 100*time.Millisecond, "the three rulers see each other")

	const tenantID = "team-rules"
	loadRuleGroup(t, rulers[0], tenantID, "ops", `name: watch
interval: 1s
rules:
- record: evaluation_time
  expr: time()
- alert: SlowBurn
  expr: vector(1)
  for: 40s
  labels: {severity: ticket}
`)
	var owner int
	require.Eventually(t, func() bool { owner = groupOwner(rulers, tenantID); return owner >= 0 }, 15*time.Second, 100*time.Millisecond)
	other := rulers[(owner+1)%3]
	var before []rulerAlert
	require.Eventually(t, func() bool {
		before = rulerAlerts(t, other, tenantID) // asked of another ruler: the API gathers every ruler's
		return len(before) == 1 && before[0].State == "pending"
	}, 15*time.Second, 100*time.Millisecond)
	activeAt := before[0].ActiveAt
	// Pending for a while, so that ALERTS_FOR_STATE holds that time.
	time.Sleep(6 * time.Second)

	killedAt := time.Now()
	rulers[owner].kill()
	t.Logf("killed %s, the owner of the group, %s after the alert went pending", rulers[owner].dataDir, killedAt.Sub(activeAt).Round(time.Millisecond))

	var newOwner int
	require.Eventually(t, func() bool {
		newOwner = groupOwner(rulers, tenantID)
		return newOwner >= 0 && newOwner != owner
	}, testHeartbeatTimeout+10*time.Second, 100*time.Millisecond)
	var after []rulerAlert
	require.Eventually(t, func() bool {
		after = rulerAlerts(t, rulers[newOwner], tenantID)
		return len(after) == 1
	}, 15*time.Second, 100*time.Millisecond)
	tookOver := time.Now()
	t.Logf("%s evaluates the group %s after the kill; alert activeAt %s, was %s",
		rulers[newOwner].dataDir, tookOver.Sub(killedAt).Round(time.Millisecond), after[0].ActiveAt, activeAt)
	require.Less(t, tookOver.Sub(killedAt), testHeartbeatTimeout+5*time.Second, "the group moves within the heartbeat timeout")
	// Restored (right after the group's first evaluation on its new ruler), the alert counts the time it
	// was pending before the kill: a reset clock would make it active since the new ruler took over.
	pendingBefore := killedAt.Sub(activeAt)
	require.Eventually(t, func() bool {
		after = rulerAlerts(t, rulers[newOwner], tenantID)
		return len(after) == 1 && after[0].ActiveAt.Before(tookOver.Add(-pendingBefore+2*time.Second))
	}, 5*time.Second, 100*time.Millisecond, "the pending alert's 'for' clock was reset: %+v, new owner since %s", after, tookOver)
	require.Equal(t, "pending", after[0].State)
	t.Logf("restored activeAt %s", after[0].ActiveAt)

	// Every interval once: the recorded samples' timestamps are at least an interval apart.
	time.Sleep(3 * time.Second)
	var matrix []struct {
		Values [][2]any `json:"values"`
	}
	end := time.Now()
	mustGetAPI(t, c.querier.url(""), "/prometheus/api/v1/query", tenantID, url.Values{
		"query": {"evaluation_time[2m]"}, "time": {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
	}, &struct {
		Result *[]struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}{Result: &matrix})
	require.Len(t, matrix, 1)
	var stamps []float64
	for _, v := range matrix[0].Values {
		stamps = append(stamps, v[0].(float64))
	}
	require.True(t, slices.IsSorted(stamps))
	require.Greater(t, len(stamps), 8)
	for i := 1; i < len(stamps); i++ {
		require.GreaterOrEqual(t, stamps[i]-stamps[i-1], interval.Seconds()*0.9,
			"samples at %v and %v: an interval evaluated twice", stamps[i-1], stamps[i])
	}
}
