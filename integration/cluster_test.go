package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// Ring timing of the test clusters: short, so a killed ingester turns unhealthy within seconds.
const (
	testHeartbeatPeriod  = "500ms"
	testHeartbeatTimeout = 4 * time.Second
)

// clusterOptions shape a test cluster.
type clusterOptions struct {
	ingesters int
	// zones, when set, gives ingester i the zone zones[i%len(zones)] and turns zone awareness on.
	zones []string
	// etcdEndpoint switches the ring from memberlist to etcd.
	etcdEndpoint string
	// args are given to every process (e.g. a shared bucket, storage timings).
	args []string
	// querierArgs are given to the querier only.
	querierArgs []string
	// distributors is how many distributors run; 0 means one.
	distributors int
	// configure, when set, adjusts each process before it starts (e.g. TLS: its scheme and client).
	configure func(*strataProcess)
}

// cluster is a multi-process Strata: ingesters, one distributor and one querier, RF=3.
type cluster struct {
	t            *testing.T
	opts         clusterOptions
	dir          string
	joinAddr     string
	ingesters    []*strataProcess
	distributor  *strataProcess // the first of distributors
	distributors []*strataProcess
	querier      *strataProcess
}

func startCluster(t *testing.T, opts clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, opts: opts, dir: t.TempDir()}
	// Every member joins through the ingesters' gossip addresses, as in production, so a restarted
	// ingester finds the cluster through the others.
	gossipPorts := make([]int, opts.ingesters)
	var seeds []string
	for i := range gossipPorts {
		gossipPorts[i] = freePort(t)
		seeds = append(seeds, fmt.Sprintf("127.0.0.1:%d", gossipPorts[i]))
	}
	c.joinAddr = strings.Join(seeds, ",")
	for i := range opts.ingesters {
		args := []string{
			"-target=ingester",
			"-ingester.ring.instance-id=" + ingesterID(i),
			"-ingester.ring.instance-addr=127.0.0.1",
			"-ingester.ring.tokens-file-path=" + filepath.Join(c.dir, ingesterID(i), "tokens.json"),
		}
		if len(opts.zones) > 0 {
			args = append(args, "-ingester.ring.instance-availability-zone="+opts.zones[i%len(opts.zones)])
		}
		p := c.newProcess(ingesterID(i), gossipPorts[i], args...)
		c.ingesters = append(c.ingesters, p)
		p.startNoWait()
	}
	for _, p := range c.ingesters {
		p.waitReady()
	}
	for i := range max(opts.distributors, 1) {
		name := "distributor"
		if i > 0 {
			name = fmt.Sprintf("distributor-%d", i+1)
		}
		d := c.newProcess(name, 0, "-target=distributor", "-distributor.ring.instance-addr=127.0.0.1", "-distributor.ring.instance-id="+name)
		d.start()
		c.distributors = append(c.distributors, d)
	}
	c.distributor = c.distributors[0]
	c.querier = c.newProcess("querier", 0, append([]string{"-target=querier"}, opts.querierArgs...)...)
	querierStarted := time.Now()
	c.querier.start()
	c.waitForActiveIngesters(c.querier, opts.ingesters)
	t.Logf("a querier joining the cluster saw all %d ingesters ACTIVE %s after it started", opts.ingesters, time.Since(querierStarted).Round(time.Millisecond))
	for _, d := range c.distributors {
		c.waitForActiveIngesters(d, opts.ingesters)
	}
	return c
}

func ingesterID(i int) string { return fmt.Sprintf("ingester-%d", i+1) }

// newProcess prepares one member with the ring settings every member shares; gossipPort 0 picks one.
func (c *cluster) newProcess(name string, gossipPort int, args ...string) *strataProcess {
	common := []string{
		"-distributor.replication-factor=3",
		"-ingester.ring.heartbeat-period=" + testHeartbeatPeriod,
		"-distributor.ring.heartbeat-period=" + testHeartbeatPeriod,
		"-ring.heartbeat-timeout=" + testHeartbeatTimeout.String(),
	}
	if len(c.opts.zones) > 0 {
		common = append(common, "-distributor.zone-awareness-enabled=true")
	}
	common = append(common, c.opts.args...)
	if c.opts.etcdEndpoint != "" {
		common = append(common, "-ingester.ring.store=etcd", "-ingester.ring.etcd.endpoints="+c.opts.etcdEndpoint)
	} else {
		if gossipPort == 0 {
			gossipPort = freePort(c.t)
		}
		common = append(common,
			"-ingester.ring.store=memberlist",
			"-memberlist.bind-addr=127.0.0.1",
			"-memberlist.bind-port="+strconv.Itoa(gossipPort),
			"-memberlist.nodename="+name,
			"-memberlist.gossip-interval=100ms",
			"-memberlist.pullpush-interval=2s",
			"-memberlist.join="+c.joinAddr,
			"-memberlist.min-join-backoff=100ms",
			"-memberlist.max-join-backoff=1s",
		)
	}
	p := newStrataProcess(c.t, filepath.Join(c.dir, name), append(common, args...)...)
	if c.opts.configure != nil {
		c.opts.configure(p)
	}
	return p
}

// ringInstance is an entry of /ingester/ring's JSON.
type ringInstance struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Zone    string `json:"zone"`
	Tokens  int    `json:"tokens"`
	Healthy bool   `json:"healthy"`
}

// ringView is the ingester ring as process p sees it.
func ringView(t *testing.T, p *strataProcess) map[string]ringInstance {
	t.Helper()
	return ringViewAt(t, p, "/ingester/ring")
}

// ringViewAt is the ring whose page is at path as process p sees it.
func ringViewAt(t *testing.T, p *strataProcess, path string) map[string]ringInstance {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url(path), nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := p.httpClient().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Instances []ringInstance `json:"instances"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	out := map[string]ringInstance{}
	for _, inst := range body.Instances {
		out[inst.ID] = inst
	}
	return out
}

func (c *cluster) waitForActiveIngesters(p *strataProcess, n int) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		active := 0
		for _, inst := range ringView(c.t, p) {
			if inst.State == "ACTIVE" && inst.Healthy {
				active++
			}
		}
		return active == n
	}, 30*time.Second, 50*time.Millisecond, "%d healthy ACTIVE ingesters never showed in the ring", n)
}

// waitForInstance polls p's view of the ring until the instance satisfies cond.
func (c *cluster) waitForInstance(p *strataProcess, id string, what string, cond func(ringInstance, bool) bool) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		inst, ok := ringView(c.t, p)[id]
		return cond(inst, ok)
	}, 60*time.Second, 20*time.Millisecond, "%s never became %s", id, what)
}

// loadClient pushes a steady stream of samples through the distributor and queries through the querier,
// recording every acknowledged sample, every failure and the push latencies.
type loadClient struct {
	pushURL, queryURL string
	tenant            string
	series            int
	// pushInterval is the pause between pushes; 0 means 20ms.
	pushInterval time.Duration

	mu            sync.Mutex
	acked         map[string]map[int64]float64
	pushFailures  []string
	queryFailures []string
	latencies     []time.Duration
	pushes        int
	queries       int
	lastTS        int64
}

func newLoadClient(c *cluster, tenantID string) *loadClient {
	return &loadClient{
		pushURL:  c.distributor.url("/api/v1/push"),
		queryURL: c.querier.url("/prometheus/api/v1/query"),
		tenant:   tenantID,
		series:   10,
		acked:    map[string]map[int64]float64{},
	}
}

// run drives the load until ctx is done; it returns when both loops have stopped.
func (l *loadClient) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		interval := l.pushInterval
		if interval == 0 {
			interval = 20 * time.Millisecond
		}
		for seq := 0; ctx.Err() == nil; seq++ {
			l.pushOnce(seq)
			time.Sleep(interval)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			l.queryOnce()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	wg.Wait()
}

func (l *loadClient) pushOnce(seq int) {
	ts := time.Now().UnixMilli()
	if ts <= l.lastTS {
		ts = l.lastTS + 1
	}
	l.lastTS = ts
	req := &prompb.WriteRequest{}
	for s := range l.series {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "load_test_value"}, {Name: "series", Value: strconv.Itoa(s)}},
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(seq*100 + s)}},
		})
	}
	start := time.Now()
	code, err := tryPush(l.pushURL, l.tenant, req)
	took := time.Since(start)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pushes++
	l.latencies = append(l.latencies, took)
	if err != nil || code/100 != 2 {
		l.pushFailures = append(l.pushFailures, fmt.Sprintf("push %d: status %d err %v", seq, code, err))
		return
	}
	for s := range l.series {
		key := strconv.Itoa(s)
		if l.acked[key] == nil {
			l.acked[key] = map[int64]float64{}
		}
		l.acked[key][ts] = float64(seq*100 + s)
	}
}

func (l *loadClient) queryOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.queryURL+"?"+url.Values{"query": {"sum(load_test_value)"}}.Encode(), nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("X-Scope-OrgID", l.tenant)
	resp, err := http.DefaultClient.Do(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries++
	if err != nil {
		l.queryFailures = append(l.queryFailures, err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body apiResponse
		_ = json.NewDecoder(resp.Body).Decode(&body)
		l.queryFailures = append(l.queryFailures, fmt.Sprintf("status %d: %s", resp.StatusCode, body.Error))
	}
}

// p99 is the 99th percentile push latency.
func (l *loadClient) p99() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lat := slices.Clone(l.latencies)
	slices.Sort(lat)
	if len(lat) == 0 {
		return 0
	}
	return lat[len(lat)*99/100]
}

// requireNoFailures checks that every push and every query succeeded.
func (l *loadClient) requireNoFailures(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Greater(t, l.pushes, 50, "the load ran")
	require.Greater(t, l.queries, 20, "the load ran")
	require.Empty(t, l.pushFailures, "failed pushes (of %d)", l.pushes)
	require.Empty(t, l.queryFailures, "failed queries (of %d)", l.queries)
}

// requireAllAckedSamplesQueryable reads every series back through the querier and checks that each
// acknowledged sample is there with its value.
func (l *loadClient) requireAllAckedSamplesQueryable(t *testing.T, querier *strataProcess) {
	t.Helper()
	var matrix []matrixSeries
	mustGetAPI(t, querier.url("/prometheus"), "/api/v1/query", l.tenant, url.Values{
		"query": {"load_test_value[30m]"},
		"time":  {formatTime(time.Now().Add(time.Second))},
	}, &queryResult{Result: &matrix})
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Len(t, matrix, l.series)
	total := 0
	for _, s := range matrix {
		got := map[int64]float64{}
		for _, v := range s.Values {
			got[v.millis(t)] = v.float(t)
		}
		var missing []string
		for ts, val := range l.acked[s.Metric["series"]] {
			total++
			if g, ok := got[ts]; !ok || g != val {
				missing = append(missing, strconv.FormatInt(ts, 10))
			}
		}
		require.Empty(t, missing, "acknowledged samples of series %s missing or wrong", s.Metric["series"])
	}
	t.Logf("all %d acknowledged samples are queryable", total)
}

// startLoad runs a load client in the background; the returned function stops it and waits.
func startLoad(t *testing.T, c *cluster) (*loadClient, func()) {
	l := newLoadClient(c, "load")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.run(ctx)
		close(done)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return l, stop
}

// waitForPushes returns once the load has made n more pushes (successful or not).
func (l *loadClient) waitForPushes(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	target := l.pushes + n
	l.mu.Unlock()
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.pushes >= target
	}, 60*time.Second, 10*time.Millisecond, "the load client stalled")
}
