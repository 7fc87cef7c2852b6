package distributor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/validation"
)

func newPushRequestV2(tb testing.TB, tenantID string, body []byte) *http.Request {
	r := newPushRequest(tb, tenantID, body)
	r.Header.Set("Content-Type", contentTypeV2)
	r.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	return r
}

// mixedRequest has float series with exemplars and a native histogram series, all valid at testNow.
func mixedRequest() *prompb.WriteRequest {
	now := testNow.UnixMilli()
	h := &histogram.Histogram{Count: 4, Sum: 10, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{2, 0}}
	req := &prompb.WriteRequest{}
	for i := range 6 {
		ts := series(lbls("__name__", "http_requests_total", "job", "api", "pod", fmt.Sprint(i)), now-1000, now)
		ts.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprint(i)}}, Value: 1, Timestamp: now}}
		req.Timeseries = append(req.Timeseries, ts)
	}
	hs := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "latency_seconds"}, {Name: "job", Value: "api"}},
		Histograms: []prompb.Histogram{prompb.FromIntHistogram(now-1000, h), prompb.FromFloatHistogram(now, h.ToFloat(nil))}}
	req.Timeseries = append(req.Timeseries, hs)
	return req
}

func requireWritten(t *testing.T, h http.Header, samples, histograms, exemplars int) {
	t.Helper()
	require.Equal(t, fmt.Sprint(samples), h.Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, fmt.Sprint(histograms), h.Get("X-Prometheus-Remote-Write-Histograms-Written"))
	require.Equal(t, fmt.Sprint(exemplars), h.Get("X-Prometheus-Remote-Write-Exemplars-Written"))
}

func TestServeHTTP_RemoteWrite2StoresWhat1Stores(t *testing.T) {
	// One replica each, so that every push has ended when the request is answered.
	v1 := newTestEnv(t, withReplication(3, 1))
	v2 := newTestEnv(t, withReplication(3, 1))

	resp := v1.do(newPushRequest(t, tenantA, encodeRequest(t, mixedRequest())))
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	require.Empty(t, resp.Header().Get("X-Prometheus-Remote-Write-Samples-Written"), "1.0 has no such headers")

	resp = v2.do(newPushRequestV2(t, tenantA, encodeRequestV2(t, mixedRequest(), true)))
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	requireWritten(t, resp.Header(), 12, 2, 6)

	for i := range v1.ingesters {
		require.Equal(t, v1.ingesters[i].seriesOf(tenantA), v2.ingesters[i].seriesOf(tenantA), "ingester %d", i)
		require.NotEmpty(t, v2.ingesters[i].seriesOf(tenantA))
	}
	// Each series' metadata becomes one 1.0 entry per metric family, sent to that family's ingesters.
	var families []string
	for _, ing := range v2.ingesters {
		families = append(families, ing.metadata[tenantA]...)
	}
	require.ElementsMatch(t, []string{"http_requests_total", "latency_seconds"}, families)
}

func TestServeHTTP_RemoteWrite2PassesUnchangedSeriesOnAsTheyArrived(t *testing.T) {
	env := newTestEnv(t, withReplication(1, 1))
	var got *ingesterPushSpy
	env.d.clients, got = spyClients(env)
	resp := env.do(newPushRequestV2(t, tenantA, encodeRequestV2(t, mixedRequest(), false)))
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	require.Equal(t, 1, got.pushes)
	require.Zero(t, got.v1Bytes, "no series was encoded again")
	require.Positive(t, got.v2Bytes)
}

func TestServeHTTP_RemoteWrite2PartialWrite(t *testing.T) {
	env := newTestEnv(t, withReplication(1, 1))
	now := testNow.UnixMilli()
	st := writev2.NewSymbolTable()
	ref := func(ls ...string) []uint32 {
		var refs []uint32
		for _, s := range ls {
			refs = append(refs, st.Symbolize(s))
		}
		return refs
	}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{LabelsRefs: ref("__name__", "good"), Samples: []writev2.Sample{{Value: 1, Timestamp: now}}},
		{LabelsRefs: []uint32{1, 4000}, Samples: []writev2.Sample{{Value: 1, Timestamp: now}, {Value: 2, Timestamp: now + 1}}},
		// One sample too far in the future: the series is encoded again without it.
		{LabelsRefs: ref("__name__", "future"), Samples: []writev2.Sample{{Value: 1, Timestamp: now}, {Value: 2, Timestamp: now + 3_600_000}}},
		{LabelsRefs: ref("__name__", "bad-name"), Samples: []writev2.Sample{{Value: 1, Timestamp: now}}},
	}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)

	resp := env.do(newPushRequestV2(t, tenantA, snappy.Encode(nil, raw)))
	require.Equal(t, http.StatusBadRequest, resp.Code)
	require.Contains(t, resp.Body.String(), "3 rejected")
	require.Contains(t, resp.Body.String(), "reference outside the symbols table")
	require.Contains(t, resp.Body.String(), validation.ErrorID(validation.ReasonInvalidSeries))
	requireWritten(t, resp.Header(), 2, 0, 0)
	require.Equal(t, map[string][]string{
		`{__name__="good"}`:   {fmt.Sprintf("1@%d", now)},
		`{__name__="future"}`: {fmt.Sprintf("1@%d", now)},
	}, env.ingesters[0].seriesOf(tenantA))
	require.Equal(t, 2.0, testutil.ToFloat64(env.discardedSamples.WithLabelValues(validation.ReasonInvalidSeries, tenantA)))
	require.Equal(t, 1.0, testutil.ToFloat64(env.discardedSamples.WithLabelValues(validation.ReasonTooFarInFuture, tenantA)))
}

func TestServeHTTP_RemoteWrite2ReportsNothingWrittenWhenIngestersFail(t *testing.T) {
	env := newTestEnv(t, withReplication(1, 1))
	env.ingesters[0].failWith(errors.New("disk on fire"))
	resp := env.do(newPushRequestV2(t, tenantA, encodeRequestV2(t, mixedRequest(), true)))
	require.Equal(t, http.StatusInternalServerError, resp.Code)
	requireWritten(t, resp.Header(), 0, 0, 0)
}

func TestServeHTTP_RemoteWrite2WrittenLeavesOutWhatIngestersRefused(t *testing.T) {
	// Ingesters refuse some samples as bad input (out of order, duplicates) and say how many: the headers
	// count what was written, not what was sent.
	env := newTestEnv(t, withReplication(1, 1))
	env.ingesters[0].failWith(ingesterRejection(t, 3, 1, "4 samples rejected: out of order sample"))
	resp := env.do(newPushRequestV2(t, tenantA, encodeRequestV2(t, mixedRequest(), true)))
	require.Equal(t, http.StatusBadRequest, resp.Code)
	requireWritten(t, resp.Header(), 12-3, 2-1, 6)
}

func TestServeHTTP_RemoteWrite2HostileBodies(t *testing.T) {
	// A symbols table of one huge string, and a series referring to symbols far beyond it: refused or
	// left out with a reason, never a crash, and nothing stored.
	env := newTestEnv(t, withReplication(1, 1), withMaxRecvMsgSize(1<<20))
	huge := &writev2.Request{Symbols: []string{"", string(make([]byte, 2<<20))}}
	raw, err := huge.Marshal()
	require.NoError(t, err)
	resp := env.do(newPushRequestV2(t, tenantA, snappy.Encode(nil, raw)))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.Code, resp.Body.String())

	refs := make([]uint32, 0, 20000)
	for i := range 20000 {
		refs = append(refs, uint32(1<<31+i))
	}
	far := &writev2.Request{Symbols: []string{"", "__name__", "x"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: refs, Samples: []writev2.Sample{{Value: 1, Timestamp: testNow.UnixMilli()}}}}}
	raw, err = far.Marshal()
	require.NoError(t, err)
	resp = env.do(newPushRequestV2(t, tenantA, snappy.Encode(nil, raw)))
	require.Equal(t, http.StatusBadRequest, resp.Code)
	require.Contains(t, resp.Body.String(), "reference outside the symbols table")
	require.Empty(t, env.ingesters[0].seriesOf(tenantA))

	// No tenant: 401 before anything is decoded into the tenant's name.
	resp = env.do(newPushRequestV2(t, "", encodeRequestV2(t, mixedRequest(), true)))
	require.Equal(t, http.StatusUnauthorized, resp.Code)
}

// ingesterPushSpy counts how pushes reached an ingester: bytes of their 1.0 and 2.0 parts.
type ingesterPushSpy struct {
	*fakeIngester
	pushes           int
	v1Bytes, v2Bytes int
}

func (s *ingesterPushSpy) PushEncoded(ctx context.Context, in *ingesterpb.EncodedPushRequest) error {
	s.pushes++
	s.v1Bytes += in.Len()
	for _, p := range in.PartsV2() {
		s.v2Bytes += len(p)
	}
	return s.fakeIngester.PushEncoded(ctx, in)
}

func spyClients(env *testEnv) (IngesterClients, *ingesterPushSpy) {
	spy := &ingesterPushSpy{fakeIngester: env.ingesters[0]}
	return spyClient{spy}, spy
}

type spyClient struct{ spy *ingesterPushSpy }

func (c spyClient) PusherFor(string) (client.Pusher, error) { return c.spy, nil }

// Prometheus sends exemplars in series of their own, without samples: they reach the ingesters in either
// protocol.
func TestServeHTTP_ForwardsSeriesThatCarryOnlyExemplars(t *testing.T) {
	now := testNow.UnixMilli()
	onlyExemplars := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:    []prompb.Label{{Name: "__name__", Value: "requests_total"}},
		Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: now}},
	}}}
	for name, request := range map[string]*http.Request{
		"1.0": newPushRequest(t, tenantA, encodeRequest(t, onlyExemplars)),
		"2.0": newPushRequestV2(t, tenantA, encodeRequestV2(t, onlyExemplars, false)),
	} {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			resp := env.do(request)
			require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
			require.Equal(t, 1, env.ingesters[0].pushes)
			if name == "2.0" {
				requireWritten(t, resp.Header(), 0, 0, 1)
			}
		})
	}
}

// A 2.0 series that loses samples too far in the future stays a 2.0 series: the kept samples' start
// timestamps reach the ingester, and its labels stay as they were (a __replica__ label is kept when the
// tenant does not deduplicate HA pairs).
func TestServeHTTP_RemoteWrite2SeriesWithFutureSamplesStays2(t *testing.T) {
	env := newTestEnv(t, withReplication(1, 1))
	spy := &lastPushSpy{fakeIngester: env.ingesters[0]}
	env.d.clients = lastPushClients{spy}
	now := testNow.UnixMilli()
	future := now + 3_600_000
	h := &histogram.Histogram{Count: 4, Sum: 10, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{2, 0}}
	st := writev2.NewSymbolTable()
	lset := labels.FromStrings("__name__", "up_total", "__replica__", "r1", "job", "a")
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(lset, nil),
		Samples:    []writev2.Sample{{Value: 3, Timestamp: now, StartTimestamp: now - 5000}, {Value: 4, Timestamp: future, StartTimestamp: now - 5000}},
	}, {
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "latency_seconds"), nil),
		Histograms: []writev2.Histogram{writev2.FromIntHistogram(future, h), writev2.FromIntHistogram(now, h)},
	}}}
	req.Timeseries[1].Histograms[1].StartTimestamp = now - 7000
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)

	resp := env.do(newPushRequestV2(t, tenantA, snappy.Encode(nil, raw)))
	require.Equal(t, http.StatusBadRequest, resp.Code, resp.Body.String())
	requireWritten(t, resp.Header(), 1, 1, 0)
	require.Zero(t, spy.v1Bytes, "no series was encoded as a 1.0 series")
	require.Len(t, spy.v2.Timeseries, 2)
	b := labels.NewScratchBuilder(0)
	got, err := spy.v2.Timeseries[0].ToLabels(&b, spy.v2.Symbols)
	require.NoError(t, err)
	require.Equal(t, lset, got)
	require.Equal(t, []writev2.Sample{{Value: 3, Timestamp: now, StartTimestamp: now - 5000}}, spy.v2.Timeseries[0].Samples)
	require.Len(t, spy.v2.Timeseries[1].Histograms, 1)
	require.Equal(t, now, spy.v2.Timeseries[1].Histograms[0].Timestamp)
	require.Equal(t, now-7000, spy.v2.Timeseries[1].Histograms[0].StartTimestamp)
}
