package integration

import (
	"bufio"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/compactor"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// promtoolDebian is Debian's promtool 2.42, which has `tsdb create-blocks-from openmetrics`.
const promtoolDebian = "/usr/bin/promtool"

// backfillStep is the interval of the generated history's samples.
const backfillStep = 5 * time.Minute

// TestBackfill_ThirtyDaysOfPromtoolBlocksMatchPrometheus makes 30 days of history into blocks with promtool,
// uploads them with stratatool backfill (interrupted once, then resumed) and checks that Strata answers
// range queries over the 30 days as Prometheus does from the same blocks, that the compactor compacts the
// uploaded blocks, and that a corrupt block and another tenant's block are refused with their reasons.
func TestBackfill_ThirtyDaysOfPromtoolBlocksMatchPrometheus(t *testing.T) {
	_, err := os.Stat(promtoolDebian)
	require.NoError(t, err, "this test needs Debian's prometheus package (promtool 2.42): apt-get install prometheus")
	const tenantID = "backfill"
	end := time.Now().Add(-24 * time.Hour).Truncate(time.Hour)
	start := end.Add(-30 * 24 * time.Hour)

	work := t.TempDir()
	input := filepath.Join(work, "history.om")
	samples := writeOpenMetricsHistory(t, input, start, end)
	blocksDir := filepath.Join(work, "blocks")
	out, err := exec.Command(promtoolDebian, "tsdb", "create-blocks-from", "openmetrics", "--quiet", input, blocksDir).CombinedOutput()
	require.NoError(t, err, "promtool: %s", out)
	entries, err := os.ReadDir(blocksDir)
	require.NoError(t, err)
	var blockSamples uint64
	for _, e := range entries {
		meta, err := blockstore.ReadMetaFromDir(filepath.Join(blocksDir, e.Name()))
		require.NoError(t, err)
		blockSamples += meta.Stats.NumSamples
	}
	require.EqualValues(t, samples, blockSamples, "promtool wrote every generated sample")
	t.Logf("promtool made %d blocks holding %d samples", len(entries), blockSamples)

	// Prometheus gets a copy of the same blocks, before anything else could touch them.
	promDir := filepath.Join(work, "prometheus")
	require.NoError(t, os.CopyFS(promDir, os.DirFS(blocksDir)))
	promAPI := runPrometheus(t, "/usr/bin/prometheus",
		"--config.file="+writeFile(t, work, "prometheus.yml", "scrape_configs: []\n"),
		"--storage.tsdb.path="+promDir,
		"--storage.tsdb.retention.time=90d",
	)

	strata := startStrata(t, t.TempDir(),
		"-compactor.block-upload-enabled=true",
		"-compactor.compaction-interval=2s",
		"-compactor.cleanup-interval=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
		"-querier.bucket-index-ttl=1s",
	)
	stratatool := stratatoolBinary(t)
	args := []string{"--address", "http://" + strata.httpAddr, "--id", tenantID, "backfill", blocksDir}

	// First run, killed once its first block is complete.
	cmd := exec.Command(stratatool, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var firstRun []string
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		firstRun = append(firstRun, scanner.Text())
		if strings.HasSuffix(scanner.Text(), ": complete") {
			require.NoError(t, cmd.Process.Kill())
			break
		}
	}
	_ = cmd.Wait()
	require.NotEmpty(t, firstRun)
	require.True(t, strings.HasSuffix(firstRun[len(firstRun)-1], ": complete"), "first run: %s", strings.Join(firstRun, "\n"))

	// Second run: resumes, skipping what is complete.
	began := time.Now()
	out, err = exec.Command(stratatool, args...).CombinedOutput()
	uploadTime := time.Since(began)
	require.NoError(t, err, "stratatool backfill: %s", out)
	summary := lastLine(string(out))
	var uploaded, skipped int
	_, err = fmt.Sscanf(summary, "backfill: %d blocks uploaded, %d already there, 0 failed", &uploaded, &skipped)
	require.NoError(t, err, "summary: %s", summary)
	require.GreaterOrEqual(t, skipped, 1, "the block completed before the kill is skipped: %s", summary)
	require.Equal(t, len(entries), uploaded+skipped, summary)

	// Queryable and compacted: the store-gateway serves every sample in blocks the planner leaves alone.
	waitForCompactedUploads(t, strata, tenantID, blockSamples, 4*time.Minute)
	queryable := time.Since(began)
	t.Logf("backfill of %d samples: uploaded and validated in %s (%.0f samples/s), queryable and compacted after %s (%.0f samples/s)",
		blockSamples, uploadTime.Round(time.Millisecond), float64(blockSamples)/uploadTime.Seconds(),
		queryable.Round(time.Millisecond), float64(blockSamples)/queryable.Seconds())

	// Prometheus 2.42 closes range windows on the left and Prometheus 3 does not: evaluation 30s off the
	// samples' grid keeps both from seeing a sample on an edge. A 1d increase starts a day in: where its
	// window reaches before the first sample, the two versions extrapolate differently.
	rangeEnd := formatTime(end.Add(-30 * time.Second))
	for _, q := range []struct {
		query string
		from  time.Duration
	}{
		{"backfill_requests_total", 0},
		{"sum(rate(backfill_requests_total[1h]))", 0},
		{"sum by (code) (increase(backfill_requests_total[1d]))", 24 * time.Hour},
		{"count by (job) (backfill_temperature_celsius)", 0},
		{"max_over_time(backfill_temperature_celsius[6h])", 0},
	} {
		t.Run("query_range "+q.query, func(t *testing.T) {
			params := url.Values{"query": {q.query}, "start": {formatTime(start.Add(q.from + 30*time.Second))}, "end": {rangeEnd}, "step": {"3600"}}
			requireSameAsPrometheus(t, promAPI, strata.url("/prometheus"), tenantID, "/api/v1/query_range", params, normaliseMatrix, 1e-12)
		})
	}

	t.Run("corrupt and foreign blocks are refused", func(t *testing.T) {
		bad := t.TempDir()
		corrupt := copyBlockAs(t, filepath.Join(blocksDir, entries[0].Name()), bad, func(m *blockstore.Meta) {})
		f, err := os.OpenFile(filepath.Join(corrupt, "index"), os.O_RDWR, 0)
		require.NoError(t, err)
		st, err := f.Stat()
		require.NoError(t, err)
		_, err = f.WriteAt([]byte(strings.Repeat("\xff", 32)), st.Size()/2)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		foreign := copyBlockAs(t, filepath.Join(blocksDir, entries[1].Name()), bad, func(m *blockstore.Meta) {
			m.Strata.TenantID = "another-team"
		})

		out, err := exec.Command(stratatool, "--address", "http://"+strata.httpAddr, "--id", tenantID, "backfill", bad).CombinedOutput()
		require.Error(t, err, "%s", out)
		require.Contains(t, string(out), filepath.Base(corrupt)+" (")
		require.Regexp(t, filepath.Base(corrupt)+` \(\d/2\): failed: (index|series|block) .*`, string(out))
		require.Contains(t, string(out), filepath.Base(foreign)+" (")
		require.Contains(t, string(out), `block belongs to tenant "another-team" (its meta.json's strata section says so), not to "backfill"`)
		require.Contains(t, lastLine(string(out)), "0 blocks uploaded, 0 already there, 2 failed")
	})
}

// writeOpenMetricsHistory writes history from start to end (exclusive) as OpenMetrics text, a sample every
// backfillStep: request counters of 2 jobs × 3 instances × 2 codes and a temperature gauge of 3 sites, one of
// them only for the first half. It returns the number of samples.
func writeOpenMetricsHistory(t *testing.T, name string, start, end time.Time) int {
	t.Helper()
	f, err := os.Create(name)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	n := 0
	_, _ = fmt.Fprintln(w, "# HELP backfill_requests Requests served.\n# TYPE backfill_requests counter")
	for _, job := range []string{"api", "web"} {
		for inst := range 3 {
			for _, code := range []string{"200", "500"} {
				var total float64
				for ts := start; ts.Before(end); ts = ts.Add(backfillStep) {
					i := ts.Sub(start) / backfillStep
					total += float64((int(i)*7+inst*13+len(job))%17 + 1)
					if code == "500" {
						total -= float64((int(i)*7+inst*13+len(job))%17) * 0.9
					}
					_, _ = fmt.Fprintf(w, "backfill_requests_total{job=%q,instance=\"10.0.0.%d:8080\",code=%q} %g %d\n", job, inst+1, code, total, ts.Unix())
					n++
				}
			}
		}
	}
	_, _ = fmt.Fprintln(w, "# HELP backfill_temperature_celsius Temperature.\n# TYPE backfill_temperature_celsius gauge")
	for site := range 3 {
		siteEnd := end
		if site == 2 {
			siteEnd = start.Add(end.Sub(start) / 2)
		}
		for ts := start; ts.Before(siteEnd); ts = ts.Add(backfillStep) {
			hours := ts.Sub(start).Hours()
			v := 20 + 5*math.Sin(hours/24*2*math.Pi) + float64(site)
			_, _ = fmt.Fprintf(w, "backfill_temperature_celsius{job=\"sensors\",site=\"site-%d\"} %.3f %d\n", site, v, ts.Unix())
			n++
		}
	}
	_, _ = fmt.Fprintln(w, "# EOF")
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
	return n
}

// copyBlockAs copies the block in src under dir with a new ULID and meta.json edited by edit.
func copyBlockAs(t *testing.T, src, dir string, edit func(*blockstore.Meta)) string {
	t.Helper()
	meta, err := blockstore.ReadMetaFromDir(src)
	require.NoError(t, err)
	meta.ULID = ulid.Make()
	dst := filepath.Join(dir, meta.ULID.String())
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	edit(meta)
	require.NoError(t, meta.WriteToDir(dst))
	return dst
}

// waitForCompactedUploads waits until the store-gateway serves the tenant's blocks holding wantSamples,
// with nothing left for the compactor (default -compactor.block-ranges) to plan.
func waitForCompactedUploads(t *testing.T, p *strataProcess, tenantID string, wantSamples uint64, timeout time.Duration) {
	t.Helper()
	ranges := []int64{(2 * time.Hour).Milliseconds(), (12 * time.Hour).Milliseconds(), (24 * time.Hour).Milliseconds()}
	var lastSamples uint64
	var lastBlocks int
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		loaded, err := storeGatewayBlockInfos(p, tenantID)
		if err != nil {
			continue
		}
		entries := make([]*blockstore.BlockEntry, 0, len(loaded))
		var samples uint64
		for _, b := range loaded {
			entries = append(entries, &blockstore.BlockEntry{ID: ulid.MustParse(b.ID), MinTime: b.MinTime, MaxTime: b.MaxTime})
			samples += b.Samples
		}
		lastSamples, lastBlocks = samples, len(loaded)
		if samples == wantSamples && len(compactor.Plan(entries, ranges)) == 0 {
			t.Logf("store-gateway serves %d compacted blocks", len(loaded))
			return
		}
	}
	t.Fatalf("the store-gateway did not serve compacted blocks with %d samples within %s; last seen %d blocks with %d samples",
		wantSamples, timeout, lastBlocks, lastSamples)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
