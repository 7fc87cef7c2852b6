package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// TestDeletion_SeriesAndTenant runs one strata (-target=all, filesystem bucket) holding two tenants with
// the same series, half in blocks and half in the ingester's head. A series deletion in one tenant hides
// the deleted samples from every read API at once, neighbours and the other tenant untouched, and the
// compactor then rewrites the blocks without them. A tenant deletion empties the other tenant.
func TestDeletion_SeriesAndTenant(t *testing.T) {
	dir := t.TempDir()
	bucketDir := filepath.Join(dir, "bucket")
	runtimeFile := writeFile(t, dir, "runtime.yaml", "overrides:\n  del-a:\n    series_deletion_enabled: true\n    max_global_exemplars_per_user: 1000\n")
	p := startStrata(t, filepath.Join(dir, "data"),
		"-runtime-config.file="+runtimeFile,
		"-blocks-storage.filesystem.dir="+bucketDir,
		"-querier.query-store-after=0s",
		"-querier.bucket-index-ttl=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
		"-blocks-storage.tsdb.ship-interval=1s",
		"-compactor.compaction-interval=2s",
		"-compactor.cleanup-interval=1s",
	)
	prom := p.url("/prometheus")
	base := time.Now().Add(-100 * time.Minute).Truncate(time.Minute)
	at := func(minute int) time.Time { return base.Add(time.Duration(minute) * time.Minute) }
	// Minutes 0-59 go to blocks, 60-89 stay in the head.
	pushMinutes := func(tenantID string, from, to int) {
		req := &prompb.WriteRequest{}
		for _, lset := range [][]prompb.Label{
			{{Name: "__name__", Value: "doomed"}, {Name: "job", Value: "x"}, {Name: "secret", Value: "leak"}},
			{{Name: "__name__", Value: "neighbour"}, {Name: "job", Value: "x"}},
		} {
			ts := prompb.TimeSeries{Labels: lset}
			for m := from; m < to; m++ {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at(m).UnixMilli(), Value: float64(m)})
				// The head's samples carry exemplars (kept by del-a only).
				if m >= 60 {
					ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: itoa(m)}}, Value: float64(m), Timestamp: at(m).UnixMilli()})
				}
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		code, body := push(t, p.url("/api/v1/push"), tenantID, req)
		require.Equal(t, http.StatusNoContent, code, body)
	}
	for _, tenantID := range []string{"del-a", "del-b"} {
		pushMinutes(tenantID, 0, 60)
	}
	flush(t, p)
	for _, tenantID := range []string{"del-a", "del-b"} {
		pushMinutes(tenantID, 60, 90)
	}
	require.Eventually(t, func() bool {
		return storeGatewayBlocks(t, p, "del-a") > 0 && storeGatewayBlocks(t, p, "del-b") > 0
	}, 30*time.Second, 100*time.Millisecond)

	// The values of each series at each minute: last_over_time over 1m sees a minute's own sample only
	// (range selectors are left-open), not an older one within the lookback delta.
	rangeMinutes := func(tenantID string) map[string][]int {
		t.Helper()
		out := map[string][]int{}
		for _, name := range []string{"doomed", "neighbour"} {
			var matrix []matrixSeries
			mustGetAPI(t, prom, "/api/v1/query_range", tenantID, url.Values{
				"query": {"last_over_time(" + name + "[1m])"}, "start": {formatTime(at(0))}, "end": {formatTime(at(89))}, "step": {"60"},
			}, &queryResult{Result: &matrix})
			for _, s := range matrix {
				for _, v := range s.Values {
					out[name] = append(out[name], int(v.float(t)))
				}
			}
		}
		return out
	}
	minutes := func(from, to int) []int {
		var out []int
		for m := from; m < to; m++ {
			out = append(out, m)
		}
		return out
	}
	all := map[string][]int{"doomed": minutes(0, 90), "neighbour": minutes(0, 90)}
	// Asked before the deletion, so the query-frontend's results cache holds the answer.
	require.Equal(t, all, rangeMinutes("del-a"))

	// Deleted: doomed from minute 30 to 75, in blocks and head.
	deleteSeries := func(tenantID string) (int, string) {
		form := url.Values{"match[]": {`doomed{job="x"}`}, "start": {formatTime(at(30))}, "end": {formatTime(at(75))}}
		req, err := http.NewRequest(http.MethodPost, prom+"/api/v1/admin/tsdb/delete_series", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Scope-OrgID", tenantID)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, _ := deleteSeries("del-b")
	require.Equal(t, http.StatusForbidden, code, "series deletion is off for del-b")
	code, body := deleteSeries("del-a")
	require.Equal(t, http.StatusNoContent, code, body)

	// At once, from every API.
	kept := append(minutes(0, 30), minutes(76, 90)...)
	want := map[string][]int{"doomed": kept, "neighbour": minutes(0, 90)}
	require.Equal(t, want, rangeMinutes("del-a"), "query_range, through the frontend's cache")
	var vector []vectorSample
	mustGetAPI(t, prom, "/api/v1/query", "del-a", url.Values{"query": {"doomed"}, "time": {formatTime(at(50))}}, &queryResult{Result: &vector})
	require.Empty(t, vector, "instant query inside the deleted range")
	inDeleted := url.Values{"start": {formatTime(at(35))}, "end": {formatTime(at(70))}}
	var series []map[string]string
	mustGetAPI(t, prom, "/api/v1/series", "del-a", withMatch(inDeleted, `{job="x"}`), &series)
	require.Equal(t, []map[string]string{{"__name__": "neighbour", "job": "x"}}, series)
	var names, values []string
	mustGetAPI(t, prom, "/api/v1/labels", "del-a", inDeleted, &names)
	require.Equal(t, []string{"__name__", "job"}, names, "the secret label only the deleted samples carried")
	mustGetAPI(t, prom, "/api/v1/label/secret/values", "del-a", inDeleted, &values)
	require.Empty(t, values)
	mustGetAPI(t, prom, "/api/v1/label/secret/values", "del-a", url.Values{}, &values)
	require.Equal(t, []string{"leak"}, values, "the samples outside the deleted range remain")
	var exemplars []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Value string `json:"value"`
		} `json:"exemplars"`
	}
	mustGetAPI(t, prom, "/api/v1/query_exemplars", "del-a", url.Values{"query": {`{job="x"}`}, "start": {formatTime(at(0))}, "end": {formatTime(at(89))}}, &exemplars)
	exemplarValues := map[string][]string{}
	for _, e := range exemplars {
		for _, x := range e.Exemplars {
			exemplarValues[e.SeriesLabels["__name__"]] = append(exemplarValues[e.SeriesLabels["__name__"]], x.Value)
		}
	}
	require.Len(t, exemplarValues["neighbour"], 30, "query_exemplars: the neighbour keeps its exemplars")
	require.Equal(t, []string{"76", "77", "78", "79", "80", "81", "82", "83", "84", "85", "86", "87", "88", "89"}, exemplarValues["doomed"],
		"query_exemplars: exemplars of deleted samples are gone")
	require.Equal(t, all, rangeMinutes("del-b"), "the other tenant is untouched")

	// The compactor rewrites the blocks; the ingester ships the rest of its head without the deleted
	// samples once it applied the deletion. Then no block in the bucket holds them.
	pollUntil(t, 60*time.Second, "no live block holds deleted samples", func() (bool, string) {
		flush(t, p)
		got := bucketSamples(t, filepath.Join(bucketDir, "del-a"))
		ok := equalInts(got[`{__name__="doomed", job="x", secret="leak"}`], kept) &&
			equalInts(got[`{__name__="neighbour", job="x"}`], minutes(0, 90))
		return ok, fmt.Sprint(got)
	})
	require.Equal(t, want, rangeMinutes("del-a"), "still absent after the rewrite")
	b := bucketSamples(t, filepath.Join(bucketDir, "del-b"))
	require.Equal(t, minutes(0, 90), b[`{__name__="doomed", job="x", secret="leak"}`], "the other tenant's blocks keep every sample")

	// Tenant deletion of del-b.
	resp, err := http.Get(p.url("/compactor/delete_tenant"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	resp, err = http.Post(p.url("/compactor/delete_tenant"), "", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, err := http.NewRequest(http.MethodPost, p.url("/compactor/delete_tenant"), nil)
	require.NoError(t, err)
	req.Header.Set("X-Scope-OrgID", "del-b")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	pollUntil(t, 30*time.Second, "del-b's blocks deleted", func() (bool, string) {
		req, err := http.NewRequest(http.MethodGet, p.url("/compactor/delete_tenant_status"), nil)
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", "del-b")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var st struct {
			TenantID      string `json:"tenant_id"`
			BlocksDeleted bool   `json:"blocks_deleted"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		require.Equal(t, "del-b", st.TenantID)
		return st.BlocksDeleted, fmt.Sprint(st)
	})
	// Every answer on the way is a success: blocks going away is no query error.
	pollUntil(t, 30*time.Second, "del-b answers empty", func() (bool, string) {
		got := rangeMinutes("del-b")
		return len(got) == 0, fmt.Sprint(got)
	})
	entries, err := os.ReadDir(filepath.Join(dir, "data", "tsdb"))
	require.NoError(t, err)
	for _, e := range entries {
		require.NotEqual(t, "del-b", e.Name(), "the ingester removed the deleted tenant's TSDB")
	}
	require.Equal(t, want, rangeMinutes("del-a"), "the other tenant is untouched")
}

func flush(t *testing.T, p *strataProcess) {
	t.Helper()
	resp, err := http.Post(p.url("/ingester/flush?wait=true"), "", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

func withMatch(v url.Values, match string) url.Values {
	out := url.Values{"match[]": {match}}
	for k, vs := range v {
		out[k] = vs
	}
	return out
}

func equalInts(a, b []int) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// bucketSamples reads the live blocks (complete, not marked for deletion) of a tenant's directory in a
// filesystem bucket and returns each series' sample values, sorted by time and de-duplicated.
func bucketSamples(t *testing.T, tenantDir string) map[string][]int {
	t.Helper()
	entries, err := os.ReadDir(tenantDir)
	require.NoError(t, err)
	byTime := map[string]map[int64]int{}
	for _, e := range entries {
		if _, err := ulid.ParseStrict(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		src := filepath.Join(tenantDir, e.Name())
		if _, err := os.Stat(filepath.Join(src, "deletion-mark.json")); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(src, "meta.json")); err != nil {
			continue
		}
		// A copy: the compactor may delete the block while it is read.
		dst := filepath.Join(t.TempDir(), e.Name())
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			continue
		}
		blk, err := promtsdb.OpenBlock(nil, dst, nil, nil)
		require.NoError(t, err)
		q, err := promtsdb.NewBlockQuerier(blk, blk.MinTime(), blk.MaxTime())
		require.NoError(t, err)
		set := q.Select(t.Context(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		for set.Next() {
			s := set.At()
			it := s.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				if byTime[s.Labels().String()] == nil {
					byTime[s.Labels().String()] = map[int64]int{}
				}
				byTime[s.Labels().String()][ts] = int(v)
			}
			require.NoError(t, it.Err())
		}
		require.NoError(t, set.Err())
		require.NoError(t, q.Close())
		require.NoError(t, blk.Close())
	}
	out := map[string][]int{}
	for series, samples := range byTime {
		ts := make([]int64, 0, len(samples))
		for k := range samples {
			ts = append(ts, k)
		}
		slices.Sort(ts)
		for _, k := range ts {
			out[series] = append(out[series], samples[k])
		}
	}
	return out
}
