package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// amTenantStatus is an entry of /multitenant_alertmanager/status's JSON.
type amTenantStatus struct {
	Tenant         string `json:"tenant"`
	Position       int    `json:"position"`
	ActiveSilences int    `json:"active_silences"`
}

func amStatus(t *testing.T, p *strataProcess) []amTenantStatus {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url("/multitenant_alertmanager/status"), nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out []amTenantStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// amRequest sends a request of the tenant to a process and returns the status and body.
func amRequest(p *strataProcess, method, path, tenantID string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, p.url(path), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Scope-OrgID", tenantID)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// TestAlertmanager_KilledReplicaLosesNoSilenceAndSendsNoDuplicate runs a tenant's Alertmanager on three
// replicas, fed by a ruler that finds them in the ring, and kills, with SIGKILL, the one that notifies:
// the silences live on in the others, and the firing alert is still notified once per repeat interval,
// by the next replica.
func TestAlertmanager_KilledReplicaLosesNoSilenceAndSendsNoDuplicate(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	bucketDir := filepath.Join(c.dir, "bucket")
	gossipPorts := []int{freePort(t), freePort(t), freePort(t)}
	var seeds []string
	for _, port := range gossipPorts {
		seeds = append(seeds, fmt.Sprintf("127.0.0.1:%d", port))
	}
	c.joinAddr = strings.Join(seeds, ",")
	var ams []*strataProcess
	for i := range 3 {
		name := fmt.Sprintf("alertmanager-%d", i+1)
		p := c.newProcess(name, gossipPorts[i], "-target=alertmanager",
			"-blocks-storage.filesystem.dir="+bucketDir,
			"-alertmanager.sharding-ring.instance-id="+name, "-alertmanager.sharding-ring.instance-addr=127.0.0.1",
			"-alertmanager.sharding-ring.heartbeat-period="+testHeartbeatPeriod,
			// As in Alertmanager's own cluster, a route's group_interval (1s below) must be longer than
			// (replicas - 1) × the peer timeout, for the later replicas to see the first one's
			// notification in the replicated log before they would send it themselves.
			"-alertmanager.configs.poll-interval=1s", "-alertmanager.peer-timeout=300ms",
			// The test's webhook listens on loopback, which the receivers firewall blocks by default.
			"-alertmanager.receivers-firewall-block-cidr-networks=")
		p.startNoWait()
		ams = append(ams, p)
	}
	for _, p := range ams {
		p.waitReady()
	}
	require.Eventually(t, func() bool {
		view := ringViewAt(t, ams[0], "/multitenant_alertmanager/ring")
		active := 0
		for _, inst := range view {
			if inst.State == "ACTIVE" {
				active++
			}
		}
		return active == 3
	}, 20*time.Second, 100*time.Millisecond)

	const tenantID = "team-oncall"
	hook := newWebhookReceiver(t)
	const repeatInterval = 5 * time.Second
	config := fmt.Sprintf(`alertmanager_config: |
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 1s
    group_interval: 1s
    repeat_interval: %s
  receivers:
  - name: hook
    webhook_configs:
    - url: %s
`, repeatInterval, hook.URL)
	code, body, err := amRequest(ams[0], http.MethodPost, "/api/v1/alerts", tenantID, []byte(config))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, string(body))
	require.Eventually(t, func() bool {
		for _, p := range ams {
			if len(amStatus(t, p)) != 1 {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "every replica runs the tenant's Alertmanager")

	// A silence of another alert, created through one replica.
	silence := fmt.Sprintf(`{"matchers":[{"name":"alertname","value":"Maintenance","isRegex":false,"isEqual":true}],"startsAt":%q,"endsAt":%q,"createdBy":"test","comment":"planned"}`,
		time.Now().Format(time.RFC3339), time.Now().Add(time.Hour).Format(time.RFC3339))
	code, body, err = amRequest(ams[1], http.MethodPost, "/alertmanager/api/v2/silences", tenantID, []byte(silence))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, string(body))

	// A ruler in a process of its own (with an ingester to evaluate over), no -ruler.alertmanager-url: it
	// sends the tenant's alerts to the tenant's replicas it finds in the Alertmanager ring.
	rulerProcess := c.newProcess("ruler", 0, "-target=ingester,distributor,ruler",
		"-blocks-storage.filesystem.dir="+bucketDir,
		"-ingester.ring.instance-id=ruler-host", "-ingester.ring.instance-addr=127.0.0.1",
		"-ruler.evaluation-interval=1s", "-ruler.poll-interval=1s", "-ruler.resend-delay=1s")
	rulerProcess.start()
	loadRuleGroup(t, rulerProcess, tenantID, "disks", `name: disks
rules:
- alert: DiskFull
  expr: vector(1)
  labels: {severity: page}
`)

	require.Eventually(t, func() bool { return len(hook.messages()) >= 2 }, 30*time.Second, 100*time.Millisecond)
	var notifier int
	for i, p := range ams {
		if st := amStatus(t, p); len(st) == 1 && st[0].Position == 0 {
			notifier = i
		}
	}
	killedAt := time.Now()
	ams[notifier].kill()
	t.Logf("killed %s, the first replica of the tenant", ams[notifier].dataDir)

	time.Sleep(4 * repeatInterval)
	for i, p := range ams {
		if i == notifier {
			continue
		}
		st := amStatus(t, p)
		require.Len(t, st, 1)
		require.Equal(t, 1, st[0].ActiveSilences, "the silence lives on in %s", p.dataDir)
	}
	times := hook.times()
	var after int
	for _, at := range times {
		if at.After(killedAt) {
			after++
		}
	}
	var gaps []string
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]).Round(100*time.Millisecond).String())
	}
	t.Logf("%d notifications, %d after the kill; gaps between them: %s", len(times), after, strings.Join(gaps, " "))
	require.GreaterOrEqual(t, after, 2, "the next replica goes on notifying: %v", times)
	for i, m := range hook.messages() {
		require.Equal(t, "firing", m.Status, "the alert never stopped firing: %+v at %s (killed at %s)", m, times[i], killedAt)
	}
	for i := 1; i < len(times); i++ {
		require.GreaterOrEqual(t, times[i].Sub(times[i-1]), repeatInterval-time.Second,
			"two notifications within one repeat interval (a duplicate): %v", times)
	}
}
