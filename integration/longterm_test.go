package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/compactor"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storegateway"
)

// TestLongTerm_SevenDayRangeQueryMatchesPrometheus backfills a week of samples as 2h blocks into the bucket,
// pushes the last hours through remote write, and checks that 7-day queries, answered from store-gateways
// and ingesters together, equal those of a single Prometheus holding the same blocks and samples. Samples
// between -querier.query-store-after (12h) and the pushed ones exist only in the bucket: no ingester has
// them, so the querier must read them from store-gateways however recent they are.
func TestLongTerm_SevenDayRangeQueryMatchesPrometheus(t *testing.T) {
	const tenantID = "longterm"
	end := time.Now().Truncate(time.Minute) // the newest sample
	start := end.Add(-7 * 24 * time.Hour)
	// Samples older than split are only in blocks. It stays under the ingester's 3h head span, past which the
	// TSDB would cut and ship a block of the pushed samples too.
	split := end.Add(-170 * time.Minute).UnixMilli()
	week := generateWeek(start, end)

	blocks := writeBlocks(t, t.TempDir(), week, split)
	bucketDir, promDir := t.TempDir(), t.TempDir()
	var blockSamples uint64
	for _, b := range blocks {
		dst := uploadBlock(t, b, bucketDir, tenantID)
		// Prometheus gets the bucket's copy: its reader must ignore meta.json's "strata" section.
		require.NoError(t, os.CopyFS(filepath.Join(promDir, filepath.Base(dst)), os.DirFS(dst)))
		meta, err := blockstore.ReadMetaFromDir(dst)
		require.NoError(t, err)
		blockSamples += meta.Stats.NumSamples
	}

	strata := startStrata(t, t.TempDir(),
		"-blocks-storage.filesystem.dir="+bucketDir,
		"-compactor.compaction-interval=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
	)
	promAPI := startReferencePrometheus(t, promDir)
	strataAPI := strata.url("/prometheus")
	for _, req := range recentWrites(week, split, 30*time.Minute) {
		code, body := push(t, strata.url("/api/v1/push"), tenantID, req)
		require.Equal(t, http.StatusNoContent, code, "strata: %s", body)
		code, body = push(t, promAPI+"/api/v1/write", "", req)
		require.Equal(t, http.StatusNoContent, code, "prometheus: %s", body)
	}

	// Prometheus loaded the blocks: every series alive at the first sample is there.
	var first []vectorSample
	mustGetAPI(t, promAPI, "/api/v1/query", "", url.Values{
		"query": {"count(http_requests_total)"}, "time": {formatTime(start.Add(30 * time.Second))},
	}, &queryResult{Result: &first})
	require.Len(t, first, 1)
	require.Equal(t, "18", first[0].Value[1], "Prometheus did not load the oldest block")

	waitForCompactedBlocks(t, strata, tenantID, blockSamples)

	rangeStart, rangeEnd := formatTime(start.Add(30*time.Second)), formatTime(end.Add(-30*time.Second))
	queries := []struct {
		query string
		// tolerance is the relative difference allowed between values: Prometheus 3 sums with Kahan
		// compensation and 2.42 does not, so sums of fractions may differ in the last bit.
		tolerance float64
	}{
		{"http_requests_total", 0},
		{"process_resident_memory_bytes", 0},
		{"batch_job_progress", 0},
		{"rate(http_requests_total[1h])", 0},
		{"sum by (job) (rate(http_requests_total[1h]))", 1e-12},
		{"max_over_time(process_resident_memory_bytes[6h])", 0},
		{"increase(http_requests_total[1d])", 0},
		{"count by (job) (process_resident_memory_bytes)", 0},
	}
	// Evaluation times are 30 s off the samples' minute grid: Prometheus 2.42 closes range windows on the
	// left and Prometheus 3, whose engine Strata runs, does not; with no sample on an edge both agree.
	for _, step := range []string{"3600", "900"} {
		for _, q := range queries {
			t.Run(fmt.Sprintf("query_range step %ss %s", step, q.query), func(t *testing.T) {
				params := url.Values{"query": {q.query}, "start": {rangeStart}, "end": {rangeEnd}, "step": {step}}
				requireSameAsPrometheus(t, promAPI, strataAPI, tenantID, "/api/v1/query_range", params, normaliseMatrix, q.tolerance)
			})
		}
	}
	window := url.Values{"start": {rangeStart}, "end": {rangeEnd}}
	t.Run("series", func(t *testing.T) {
		params := url.Values{"match[]": {`{__name__=~".+"}`}, "start": window["start"], "end": window["end"]}
		requireSameAsPrometheus(t, promAPI, strataAPI, tenantID, "/api/v1/series", params, normaliseSeries, 0)
	})
	t.Run("labels", func(t *testing.T) {
		requireSameAsPrometheus(t, promAPI, strataAPI, tenantID, "/api/v1/labels", window, normaliseStrings, 0)
	})
	t.Run("label values", func(t *testing.T) {
		requireSameAsPrometheus(t, promAPI, strataAPI, tenantID, "/api/v1/label/instance/values", window, normaliseStrings, 0)
	})
}

// weekSeries is one generated series with a sample every minute while it exists.
type weekSeries struct {
	labels  labels.Labels
	samples []prompb.Sample
}

// generateWeek returns about 30 series of a small service, one sample a minute from start to end: request
// counters that reset now and then, memory and queue gauges, an instance replaced mid-week, and a batch
// job that only ran between 10h and 6h before end. Only the timestamps change from run to run.
func generateWeek(start, end time.Time) []weekSeries {
	rng := rand.New(rand.NewPCG(20240601, 7))
	const day = 24 * 60
	minutes := int(end.Sub(start) / time.Minute)
	var week []weekSeries
	add := func(from, to int, next func(minute int) float64, nameValues ...string) {
		s := weekSeries{labels: labels.FromStrings(nameValues...)}
		for m := from; m <= to; m++ {
			s.samples = append(s.samples, prompb.Sample{Timestamp: start.Add(time.Duration(m) * time.Minute).UnixMilli(), Value: next(m)})
		}
		week = append(week, s)
	}
	instances := []struct {
		job, instance string
		from, to      int
	}{
		{"api", "api-1:8080", 0, minutes},
		{"api", "api-2:8080", 0, minutes},
		{"api", "api-3:8080", 0, minutes},
		{"web", "web-1:8080", 0, minutes},
		{"web", "web-2:8080", 0, minutes},
		{"web", "web-3:8080", 0, 4 * day}, // replaced by web-4
		{"web", "web-4:8080", 4*day + 3, minutes},
	}
	for _, in := range instances {
		for _, c := range []struct {
			code      string
			perMinute int
		}{{"200", 60}, {"404", 6}, {"500", 2}} {
			// A process that has been up for a while, or a new one counting from zero: a small first value
			// would make Prometheus 2.42 and 3 extrapolate rate() differently towards the series' start.
			v := float64(1000 + rng.IntN(100_000))
			if in.from > 0 {
				v = 0
			}
			add(in.from, in.to, func(m int) float64 {
				switch {
				case m == in.from:
				case rng.IntN(3000) == 0:
					v = 0 // the process restarted
				default:
					v += float64(rng.IntN(c.perMinute + 1))
				}
				return v
			}, "__name__", "http_requests_total", "job", in.job, "instance", in.instance, "code", c.code)
		}
		base := float64(200+rng.IntN(100)) * (1 << 20)
		add(in.from, in.to, func(m int) float64 {
			daily := math.Sin(2 * math.Pi * float64(m) / day)
			return math.Round(base + daily*(64<<20) + float64(rng.IntN(1<<20)))
		}, "__name__", "process_resident_memory_bytes", "job", in.job, "instance", in.instance)
	}
	for _, worker := range []string{"worker-1:8080", "worker-2:8080"} {
		var queue float64
		add(0, minutes, func(int) float64 {
			queue = max(0, queue+float64(rng.IntN(11)-5))
			return queue
		}, "__name__", "queue_length", "job", "worker", "instance", worker)
	}
	// Newer than -querier.query-store-after but only in blocks: no ingester has it.
	add(minutes-10*60, minutes-6*60, func(m int) float64 { return float64(m - (minutes - 10*60)) },
		"__name__", "batch_job_progress", "job", "batch", "instance", "batch-1:8080")
	return week
}

// backfillBlockRange is the ingesters' default block range, -blocks-storage.tsdb.block-ranges-period, in ms.
const backfillBlockRange = int64(2 * time.Hour / time.Millisecond)

// writeBlocks writes the samples older than before (unix ms) into blocks under dir, one per aligned 2h range
// , and returns the blocks' directories.
func writeBlocks(t *testing.T, dir string, week []weekSeries, before int64) []string {
	t.Helper()
	first := week[0].samples[0].Timestamp
	for _, s := range week {
		first = min(first, s.samples[0].Timestamp)
	}
	var dirs []string
	for mint := first - first%backfillBlockRange; mint < before; mint += backfillBlockRange {
		dirs = append(dirs, writeBlock(t, dir, week, mint, min(mint+backfillBlockRange, before)))
	}
	return dirs
}

// writeBlock writes the samples in [mint, maxt) into a block under dir and returns its directory.
func writeBlock(t *testing.T, dir string, week []weekSeries, mint, maxt int64) string {
	t.Helper()
	ctx := context.Background()
	w, err := promtsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, backfillBlockRange)
	require.NoError(t, err)
	defer w.Close()
	app := w.Appender(ctx)
	for _, s := range week {
		i, _ := slices.BinarySearchFunc(s.samples, mint, func(p prompb.Sample, ts int64) int { return cmp.Compare(p.Timestamp, ts) })
		for ; i < len(s.samples) && s.samples[i].Timestamp < maxt; i++ {
			_, err := app.Append(0, s.labels, s.samples[i].Timestamp, s.samples[i].Value)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(ctx)
	require.NoError(t, err)
	return filepath.Join(dir, id.String())
}

// uploadBlock copies a block into a filesystem bucket as <tenant>/<ULID> with the meta.json an uploaded
// block carries, and returns its directory there.
func uploadBlock(t *testing.T, src, bucketDir, tenantID string) string {
	t.Helper()
	meta, err := blockstore.ReadMetaFromDir(src)
	require.NoError(t, err)
	meta.Strata = blockstore.StrataMeta{TenantID: tenantID, Source: blockstore.SourceUpload}
	dst := filepath.Join(bucketDir, tenantID, meta.ULID.String())
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	require.NoError(t, meta.WriteToDir(dst))
	return dst
}

// recentWrites turns the samples from from (unix ms) on into remote-write requests of batch each, oldest
// first, so that no request reaches further back than a TSDB head accepts.
func recentWrites(week []weekSeries, from int64, batch time.Duration) []*prompb.WriteRequest {
	var reqs []*prompb.WriteRequest
	for {
		to := from + batch.Milliseconds()
		req := &prompb.WriteRequest{}
		more := false
		for _, s := range week {
			ts := prompb.TimeSeries{}
			for _, p := range s.samples {
				if p.Timestamp >= from && p.Timestamp < to {
					ts.Samples = append(ts.Samples, p)
				}
				more = more || p.Timestamp >= to
			}
			if len(ts.Samples) > 0 {
				s.labels.Range(func(l labels.Label) {
					ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
				})
				req.Timeseries = append(req.Timeseries, ts)
			}
		}
		if len(req.Timeseries) > 0 {
			reqs = append(reqs, req)
		}
		if !more {
			return reqs
		}
		from = to
	}
}

// waitForCompactedBlocks waits until the store-gateway serves the tenant's blocks fully compacted: no two
// overlap, the compactor (default -compactor.block-ranges) has nothing left to plan, and they hold
// wantSamples, the samples of the uploaded blocks.
func waitForCompactedBlocks(t *testing.T, p *strataProcess, tenantID string, wantSamples uint64) {
	t.Helper()
	ranges := []int64{backfillBlockRange, (12 * time.Hour).Milliseconds(), (24 * time.Hour).Milliseconds()}
	var (
		loaded []storegateway.BlockInfo
		err    error
	)
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		loaded, err = storeGatewayBlockInfos(p, tenantID)
		if err != nil {
			continue
		}
		entries := make([]*blockstore.BlockEntry, 0, len(loaded))
		var samples uint64
		for _, b := range loaded {
			entries = append(entries, &blockstore.BlockEntry{ID: ulid.MustParse(b.ID), MinTime: b.MinTime, MaxTime: b.MaxTime})
			samples += b.Samples
		}
		if samples == wantSamples && len(compactor.Plan(entries, ranges)) == 0 {
			t.Logf("store-gateway serves %d compacted blocks", len(loaded))
			return
		}
	}
	t.Fatalf("the store-gateway did not serve the compacted blocks within 45s; last seen: %+v (err %v)", loaded, err)
}

// storeGatewayBlockInfos returns the blocks of a tenant that the store-gateway of p has loaded.
func storeGatewayBlockInfos(p *strataProcess, tenantID string) ([]storegateway.BlockInfo, error) {
	req, err := http.NewRequest(http.MethodGet, p.url("/store-gateway/tenants"), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tenants []storegateway.TenantBlocks
	if err := json.NewDecoder(resp.Body).Decode(&tenants); err != nil {
		return nil, err
	}
	for _, tb := range tenants {
		if tb.Tenant == tenantID {
			return tb.Blocks, nil
		}
	}
	return nil, nil
}

// startReferencePrometheus runs Debian's Prometheus on dataDir with the remote-write receiver on, and
// returns its URL once it is ready.
func startReferencePrometheus(t *testing.T, dataDir string) string {
	t.Helper()
	bin, err := exec.LookPath(prometheusBinary)
	require.NoError(t, err, "this test needs Debian's prometheus package: apt-get install prometheus")
	return runPrometheus(t, bin,
		"--config.file="+writeFile(t, t.TempDir(), "prometheus.yml", "scrape_configs: []\n"),
		"--storage.tsdb.path="+dataDir,
		"--web.enable-remote-write-receiver",
	)
}

// runPrometheus runs a Prometheus binary with args on a fresh 127.0.0.1 port, stops it when the test
// ends (its log shown if the test failed), and returns its URL once it is ready.
func runPrometheus(t *testing.T, bin string, args ...string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out := &syncBuffer{}
	cmd := exec.Command(bin, append(args, "--web.listen-address="+addr)...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", out)
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready:\n%s", out)
		default:
		}
		require.True(t, time.Now().Before(deadline), "prometheus was not ready within 30s:\n%s", out)
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
	}
}

// requireSameAsPrometheus asks Prometheus, and Strata as tenantID, the same and fails with the differences
// per series: whole 7-day answers are too long to read in a diff. Values may differ by the relative
// tolerance.
func requireSameAsPrometheus(t *testing.T, promAPI, strataAPI, tenantID, path string, params url.Values, normalise func(*testing.T, json.RawMessage) string, tolerance float64) {
	t.Helper()
	var promData, strataData json.RawMessage
	mustGetAPI(t, promAPI, path, "", params, &promData)
	mustGetAPI(t, strataAPI, path, tenantID, params, &strataData)
	want, got := normalise(t, promData), normalise(t, strataData)
	require.NotEmpty(t, want, "Prometheus returned nothing for %s %v; the comparison would prove nothing", path, params)
	if diff := answerDifferences(want, got, tolerance); diff != "" {
		t.Fatalf("%s %v: Strata's answer differs from Prometheus':\n%s", path, params, diff)
	}
}

// answerDifferences describes, per series, how two normalised answers (a line per series: labels, then
// "<unix ms>:<value>" points) differ, or returns "" when they agree within the relative tolerance.
func answerDifferences(want, got string, tolerance float64) string {
	bySeries := func(s string) map[string][]string {
		out := map[string][]string{}
		for _, line := range strings.Split(s, "\n") {
			if fields := strings.Fields(line); len(fields) > 0 {
				out[fields[0]] = fields[1:]
			}
		}
		return out
	}
	wantSeries, gotSeries := bySeries(want), bySeries(got)
	keys := slices.Collect(maps.Keys(wantSeries))
	for k := range gotSeries {
		if _, ok := wantSeries[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		w, inWant := wantSeries[k]
		g, inGot := gotSeries[k]
		switch {
		case !inGot:
			fmt.Fprintf(&b, "missing from Strata: %s%s\n", k, describePoints(w))
		case !inWant:
			fmt.Fprintf(&b, "only in Strata: %s%s\n", k, describePoints(g))
		default:
			i := 0
			for i < len(w) && i < len(g) && pointsAgree(w[i], g[i], tolerance) {
				i++
			}
			if i < len(w) || i < len(g) {
				fmt.Fprintf(&b, "%s: %d points in Prometheus, %d in Strata; first difference at point %d: Prometheus %s, Strata %s\n",
					k, len(w), len(g), i, describePoint(w, i), describePoint(g, i))
			}
		}
	}
	return b.String()
}

// pointsAgree compares two "<unix ms>:<value>" points: same time, values within the relative tolerance.
func pointsAgree(a, b string, tolerance float64) bool {
	if a == b {
		return true
	}
	aTime, aValue, _ := strings.Cut(a, ":")
	bTime, bValue, _ := strings.Cut(b, ":")
	x, errA := strconv.ParseFloat(aValue, 64)
	y, errB := strconv.ParseFloat(bValue, 64)
	return aTime == bTime && errA == nil && errB == nil && math.Abs(x-y) <= tolerance*max(math.Abs(x), math.Abs(y))
}

// describePoints renders how many points a series has and its first and last, or "" for a series without
// points (an answer of /api/v1/series).
func describePoints(points []string) string {
	if len(points) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d points, %s to %s)", len(points), describePoint(points, 0), describePoint(points, len(points)-1))
}

// describePoint renders the i-th "<unix ms>:<value>" point with a readable time, or "none".
func describePoint(points []string, i int) string {
	if i >= len(points) {
		return "none"
	}
	ms, value, _ := strings.Cut(points[i], ":")
	msec, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return points[i]
	}
	at := time.UnixMilli(msec)
	return fmt.Sprintf("%s=%s (%s ago)", at.UTC().Format(time.RFC3339), value, time.Since(at).Round(time.Minute))
}
