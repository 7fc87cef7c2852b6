package integration

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// HA timings of the tests: a fail-over within seconds, Prometheus scraping every second.
const (
	haFailoverTimeout = 5 * time.Second
	haUpdateTimeout   = time.Second
	haScrapeInterval  = time.Second
	haTenant          = "ha-tenant"
)

// TestHA_PrometheusPairWithMemberlist runs two real Prometheus replicas of one cluster, each writing to
// its own distributor with remote write 1.0, with the elected replicas gossiped in memberlist.
func TestHA_PrometheusPairWithMemberlist(t *testing.T) {
	testHAPair(t, "", "prometheus.WriteRequest")
}

// TestHA_PrometheusPairWithEtcd is the same with the elected replicas (and the rings) in etcd, and the
// replicas writing remote write 2.0.
func TestHA_PrometheusPairWithEtcd(t *testing.T) {
	testHAPair(t, startEmbeddedEtcd(t), "io.prometheus.write.v2.Request")
}

func testHAPair(t *testing.T, etcdEndpoint, protobufMessage string) {
	prometheusBin := prometheus3Binary(t)
	target := startScrapeTarget(t)
	runtimeFile := writeFile(t, t.TempDir(), "runtime.yaml", "overrides:\n  "+haTenant+":\n    accept_ha_samples: true\n")
	c := startCluster(t, clusterOptions{ingesters: 1, distributors: 2, etcdEndpoint: etcdEndpoint, args: []string{
		"-distributor.replication-factor=1",
		"-runtime-config.file=" + runtimeFile,
		"-distributor.ha-tracker.enable=true",
		"-distributor.ha-tracker.failover-timeout=" + haFailoverTimeout.String(),
		"-distributor.ha-tracker.update-timeout=" + haUpdateTimeout.String(),
		"-distributor.ha-tracker.update-timeout-jitter-max=0",
	}})
	query := c.querier.url("/prometheus")

	// r1 starts first, so the election does not depend on which replica's first push wins the race
	// between the two distributors (memberlist needs a gossip round to spread it).
	r1 := startHAReplica(t, prometheusBin, "r1", target, c.distributors[0], protobufMessage)
	waitForValue(t, query, "ha_test_scraper", "1", 60*time.Second)
	r2 := startHAReplica(t, prometheusBin, "r2", target, c.distributors[1], protobufMessage)
	defer r2.kill()

	// r2's distributor drops its samples for several fail-over timeouts, as r1 keeps sending.
	pollUntil(t, 30*time.Second, "r2's samples reach its distributor and are dropped", func() (bool, string) {
		n := metricTotal(t, c.distributors[1], "strata_distributor_deduped_samples_total")
		return n > 0, fmt.Sprint(n)
	})
	time.Sleep(3 * haFailoverTimeout) // a stretch of time in which r2 must not take over, not a wait for a condition
	for _, d := range c.distributors {
		require.Equal(t, "r1", electedReplica(t, d, "c1"), "every distributor has r1 elected")
	}
	require.Equal(t, []string{}, seriesWithReplicaLabel(t, query), "the replica label is removed before storage")

	killed := time.Now()
	r1.kill()
	t.Logf("killed r1 at %s", killed.Format(time.RFC3339Nano))
	waitForValue(t, query, "ha_test_scraper", "2", 60*time.Second)
	t.Logf("r2's samples answered %s after r1 was killed", time.Since(killed).Round(time.Millisecond))
	for _, d := range c.distributors {
		pollUntil(t, 10*time.Second, "r2 elected on "+d.httpAddr, func() (bool, string) {
			r := electedReplica(t, d, "c1")
			return r == "r2", r
		})
	}
	time.Sleep(3 * haScrapeInterval) // let r2 write a few samples after its first

	samples := rawSamples(t, query, `ha_test_scraper{cluster="c1"}`, 5*time.Minute)
	lastR1, firstR2 := -1, -1
	for i, s := range samples {
		switch s.value {
		case "1":
			require.Equal(t, -1, firstR2, "a sample of r1 after r2's first: both replicas' samples were stored\n%v", samples)
			lastR1 = i
		case "2":
			if firstR2 < 0 {
				firstR2 = i
			}
		default:
			t.Fatalf("unexpected value %q", s.value)
		}
		if i > 0 {
			// Interleaved replicas would put samples less than a scrape interval apart.
			require.Greater(t, s.ts.Sub(samples[i-1].ts), haScrapeInterval/2, "samples %d and %d are too close: duplicates of two replicas\n%v", i-1, i, samples)
		}
	}
	require.GreaterOrEqual(t, lastR1, 10, "r1 wrote for over 15s")
	require.Greater(t, firstR2, lastR1)
	gap := samples[firstR2].ts.Sub(samples[lastR1].ts)
	t.Logf("gap between r1's last sample and r2's first: %s (fail-over timeout %s, scrape interval %s)", gap, haFailoverTimeout, haScrapeInterval)
	// r2 is elected once r1's last recorded time (at most an update timeout old) is a fail-over timeout
	// behind; its first kept sample is at most a scrape interval older than its first kept push.
	require.LessOrEqual(t, gap, haFailoverTimeout+haScrapeInterval+time.Second, "fail-over took too long")
	require.GreaterOrEqual(t, gap, haFailoverTimeout-haUpdateTimeout-2*haScrapeInterval, "r2 took over before the fail-over timeout")
	require.Equal(t, []string{}, seriesWithReplicaLabel(t, query))
}

// startScrapeTarget serves ha_test_scraper, whose value is the scraper's ?replica= parameter: the same
// series for both replicas, with a value that says which replica scraped it.
func startScrapeTarget(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = fmt.Fprintf(w, "# TYPE ha_test_scraper gauge\nha_test_scraper %s\n", r.URL.Query().Get("replica"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// haReplica is one running Prometheus of the HA pair.
type haReplica struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startHAReplica runs Prometheus as replica name (r1, r2) of cluster c1, scraping target and writing to
// distributor as haTenant in protobufMessage (the remote write version), and returns once it is ready.
func startHAReplica(t *testing.T, bin, name, target string, distributor *strataProcess, protobufMessage string) *haReplica {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf(`
global:
  scrape_interval: %s
  external_labels: {cluster: c1, __replica__: %s}
scrape_configs:
  - job_name: ha
    params: {replica: ["%s"]}
    static_configs: [{targets: ["%s"]}]
remote_write:
  - url: %s
    headers: {X-Scope-OrgID: %s}
    protobuf_message: %s
    queue_config: {batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}
`, haScrapeInterval, name, name[1:], target, distributor.url("/api/v1/push"), haTenant, protobufMessage)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out := &syncBuffer{}
	cmd := exec.Command(bin, "--config.file="+writeFile(t, dir, "prometheus.yml", config),
		"--storage.tsdb.path="+dir+"/data", "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	r := &haReplica{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("prometheus %s log:\n%s", name, out)
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "prometheus %s ready:\n%s", name, out)
	return r
}

// kill ends the replica with SIGKILL, as a crashed server ends: nothing it has not sent is sent.
func (r *haReplica) kill() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

// waitForValue polls an instant query of metric until its only series has value.
func waitForValue(t *testing.T, base, metric, value string, timeout time.Duration) {
	t.Helper()
	pollUntil(t, timeout, metric+" = "+value, func() (bool, string) {
		var res queryResult
		var vec []vectorSample
		res.Result = &vec
		mustGetAPI(t, base, "/api/v1/query", haTenant, url.Values{"query": {metric}}, &res)
		return len(vec) == 1 && vec[0].Value[1] == value, fmt.Sprint(vec)
	})
}

// pollUntil calls cond on the test's goroutine (so it may use require) until it holds, failing the test
// after timeout with the last state cond saw.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() (done bool, last string)) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		done, last := cond()
		if done {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s: not within %s; last seen: %s", what, timeout, last)
	}
}

// electedReplica reads the elected replica of cluster of haTenant from a distributor's HA tracker page.
func electedReplica(t *testing.T, d *strataProcess, cluster string) string {
	t.Helper()
	var elected []struct{ Tenant, Cluster, Replica string }
	getJSON(t, d.url("/distributor/ha_tracker?format=json"), &elected)
	for _, e := range elected {
		if e.Tenant == haTenant && e.Cluster == cluster {
			return e.Replica
		}
	}
	return ""
}

// seriesWithReplicaLabel lists the tenant's series that still carry the replica label.
func seriesWithReplicaLabel(t *testing.T, base string) []string {
	t.Helper()
	var series []map[string]string
	mustGetAPI(t, base, "/api/v1/series", haTenant, url.Values{"match[]": {`{__replica__!=""}`}}, &series)
	out := []string{}
	for _, s := range series {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

type haSample struct {
	ts    time.Time
	value string
}

// rawSamples returns the samples of the one series selector selects over the last window.
func rawSamples(t *testing.T, base, selector string, window time.Duration) []haSample {
	t.Helper()
	var res queryResult
	var matrix []matrixSeries
	res.Result = &matrix
	mustGetAPI(t, base, "/api/v1/query", haTenant, url.Values{"query": {selector + "[" + strconv.Itoa(int(window.Seconds())) + "s]"}}, &res)
	require.Len(t, matrix, 1, "one series: %v", matrix)
	require.NotContains(t, matrix[0].Metric, "__replica__")
	require.Equal(t, "c1", matrix[0].Metric["cluster"])
	out := make([]haSample, 0, len(matrix[0].Values))
	for _, p := range matrix[0].Values {
		out = append(out, haSample{ts: time.UnixMilli(p.millis(t)), value: p[1].(string)})
	}
	return out
}
