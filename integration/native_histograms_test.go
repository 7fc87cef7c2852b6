package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"
)

// nativeHistogramSample is one sample of the test's series: an integer or a float histogram.
type nativeHistogramSample struct {
	t  int64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// nativeHistogramSeries makes the test's series, a sample every 30s for each k in [from, to): an integer
// counter histogram with a counter reset at k=40, a float one, a float one with custom buckets (NHCB) and
// an integer gauge histogram.
func nativeHistogramSeries(base time.Time, from, to int) map[string][]nativeHistogramSample {
	out := map[string][]nativeHistogramSample{}
	for k := from; k < to; k++ {
		t := base.Add(time.Duration(k) * 30 * time.Second).UnixMilli()
		v := int64(k)
		if k >= 40 {
			v = int64(k - 40) // a counter reset
		}
		out["int"] = append(out["int"], nativeHistogramSample{t: t, h: tsdbutil.GenerateTestHistogram(v)})
		out["float"] = append(out["float"], nativeHistogramSample{t: t, fh: tsdbutil.GenerateTestFloatHistogram(int64(k))})
		out["custom"] = append(out["custom"], nativeHistogramSample{t: t, fh: tsdbutil.GenerateTestCustomBucketsFloatHistogram(int64(k))})
		out["gauge"] = append(out["gauge"], nativeHistogramSample{t: t, h: tsdbutil.GenerateTestGaugeHistogram(int64(k % 7))})
	}
	return out
}

func nativeHistogramLabels(kind string) labels.Labels {
	return labels.FromStrings("__name__", "nh_test", "kind", kind)
}

// pushNativeHistograms sends the series to Strata with remote write 1.0 and appends them to ref.
func pushNativeHistograms(t *testing.T, p *strataProcess, ref *tsdb.DB, series map[string][]nativeHistogramSample) {
	t.Helper()
	req := &prompb.WriteRequest{}
	app := ref.Appender(context.Background())
	for kind, samples := range series {
		lset := nativeHistogramLabels(kind)
		ts := prompb.TimeSeries{Labels: prompb.FromLabels(lset, nil)}
		for _, s := range samples {
			if s.h != nil {
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(s.t, s.h))
			} else {
				ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(s.t, s.fh))
			}
			_, err := app.AppendHistogram(0, lset, s.t, s.h, s.fh)
			require.NoError(t, err)
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	require.NoError(t, app.Commit())
	code, body := push(t, p.url("/api/v1/push"), "histograms", req)
	require.Equal(t, http.StatusNoContent, code, body)
}

// Native histograms pushed to an ingester, shipped as a block and read back through a store-gateway,
// with newer ones still in the ingester's head, answer histogram_quantile, histogram_count,
// histogram_sum, rate and increase over a range that spans both exactly as Prometheus' engine answers
// over its own TSDB holding the same samples; so do the raw samples.
func TestNativeHistograms_SameAnswersAcrossBlockAndHead(t *testing.T) {
	p := startStrata(t, t.TempDir(),
		"-blocks-storage.filesystem.dir="+t.TempDir(),
		// Blocks are read for every range; ingesters only for the last 40 minutes, so the block's older
		// samples come from the store-gateway alone.
		"-querier.query-store-after=0s",
		"-querier.query-ingesters-within=40m",
		"-compactor.compaction-interval=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
	)
	ref, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ref.Close() })

	// 90 minutes of samples: the first 60 shipped as a block, the last 30 in the head.
	now := time.Now().Truncate(time.Minute)
	base := now.Add(-90 * time.Minute)
	pushNativeHistograms(t, p, ref, nativeHistogramSeries(base, 0, 120))
	resp, err := http.Post(p.url("/ingester/flush?wait=true"), "", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Eventually(t, func() bool { return storeGatewayBlocks(t, p, "histograms") == 1 }, 30*time.Second, 100*time.Millisecond)
	pushNativeHistograms(t, p, ref, nativeHistogramSeries(base, 120, 180))

	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		EnableAtModifier: true, EnableNegativeOffset: true,
	})
	start, end, step := base.Add(5*time.Minute), now, time.Minute
	for _, query := range []string{
		`histogram_quantile(0.9, rate(nh_test{kind!="gauge"}[5m]))`,
		`histogram_quantile(0.5, sum by (kind) (rate(nh_test{kind!="gauge"}[5m])))`,
		`histogram_count(rate(nh_test{kind!="gauge"}[5m]))`,
		`histogram_sum(rate(nh_test{kind!="gauge"}[5m]))`,
		`rate(nh_test{kind!="gauge"}[5m])`,
		`increase(nh_test{kind!="gauge"}[1h])`,
		`histogram_quantile(0.5, nh_test{kind="gauge"})`,
		`histogram_count(nh_test)`,
		`histogram_sum(nh_test)`,
	} {
		t.Run(query, func(t *testing.T) {
			q, err := engine.NewRangeQuery(context.Background(), ref, nil, query, start, end, step)
			require.NoError(t, err)
			res := q.Exec(context.Background())
			require.NoError(t, res.Err)
			want, err := json.Marshal(res.Value)
			require.NoError(t, err)
			q.Close()

			var got queryResult
			var result json.RawMessage
			got.Result = &result
			mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_range", "histograms", url.Values{
				"query": {query}, "start": {formatTime(start)}, "end": {formatTime(end)}, "step": {step.String()},
			}, &got)
			require.Equal(t, "matrix", got.ResultType)
			requireSameSeries(t, want, result)
		})
	}

	// The raw samples of the whole range, block and head, are those pushed.
	q, err := engine.NewInstantQuery(context.Background(), ref, nil, "nh_test[91m]", now)
	require.NoError(t, err)
	res := q.Exec(context.Background())
	require.NoError(t, res.Err)
	want, err := json.Marshal(res.Value)
	require.NoError(t, err)
	q.Close()
	var got queryResult
	var result json.RawMessage
	got.Result = &result
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query", "histograms", url.Values{"query": {"nh_test[91m]"}, "time": {formatTime(now)}}, &got)
	requireSameSeries(t, want, result)
	var matrix []struct {
		Histograms []json.RawMessage `json:"histograms"`
	}
	require.NoError(t, json.Unmarshal(result, &matrix))
	require.Len(t, matrix, 4)
	for _, s := range matrix {
		require.Len(t, s.Histograms, 180)
	}
}

// requireSameSeries compares two JSON matrices series by series, in label order.
func requireSameSeries(t *testing.T, want, got []byte) {
	t.Helper()
	sorted := func(raw []byte) []string {
		var series []map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &series))
		out := make([]string, 0, len(series))
		for _, s := range series {
			out = append(out, fmt.Sprintf("%s %s %s", s["metric"], s["values"], s["histograms"]))
		}
		slices.Sort(out)
		return out
	}
	w, g := sorted(want), sorted(got)
	require.Equal(t, len(w), len(g), "series")
	for i := range w {
		require.Equal(t, w[i], g[i])
	}
}
