package distributor

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// withHALimits makes every tenant accept HA samples, with at most maxClusters clusters.
func withHALimits(accept bool, maxClusters int) envOption {
	return func(s *envSettings) {
		s.limits.AcceptHASamples = accept
		s.limits.HAClusterLabel, s.limits.HAReplicaLabel = "cluster", "__replica__"
		s.limits.HAMaxClusters = maxClusters
	}
}

// newHAEnv is a test distributor with an HA tracker over an inmemory store.
func newHAEnv(t *testing.T, accept bool, maxClusters int) (*testEnv, *countingKV) {
	t.Helper()
	env := newTestEnv(t, withHALimits(accept, maxClusters))
	store := &countingKV{Client: inmemory.New(HAClustersCodec{})}
	env.d.UseHATracker(newTestTracker(t, store, &fakeClock{now: testNow}))
	return env, store
}

// haSeries is a series of cluster c1 sent by replica, one sample at ts.
func haSeries(replica string, ts int64, extra ...string) prompb.TimeSeries {
	return series(append(lbls("__name__", "up", "__replica__", replica, "cluster", "c1"), extra...), ts)
}

func TestPush_HAKeepsTheElectedReplicaWithoutItsLabel(t *testing.T) {
	env, _ := newHAEnv(t, true, 0)
	now := testNow.UnixMilli()
	resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		haSeries("r1", now, "job", "a"),
		haSeries("r1", now, "job", "b"),
		// Series without the replica label pass as they are.
		series(lbls("__name__", "up", "job", "c"), now),
	}})
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())

	resp = env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		haSeries("r2", now+1, "job", "a"),
		haSeries("r2", now+1, "job", "b"),
	}})
	require.Equal(t, http.StatusAccepted, resp.Code)
	require.Contains(t, resp.Body.String(), `replica "r1" is elected`)

	// What the ingester decoded from the bytes it received: the replica label is gone (the series were
	// encoded again, not forwarded as received), the cluster label stays, and r2's samples are not there.
	require.Equal(t, map[string][]string{
		`{__name__="up", cluster="c1", job="a"}`: {"1@" + strconv.FormatInt(now, 10)},
		`{__name__="up", cluster="c1", job="b"}`: {"1@" + strconv.FormatInt(now, 10)},
		`{__name__="up", job="c"}`:               {"1@" + strconv.FormatInt(now, 10)},
	}, env.ingesters[0].seriesOf(tenantA))
	require.Equal(t, 2.0, testutil.ToFloat64(env.d.haTracker.dedupedSamples.WithLabelValues(tenantA, "c1")))
	require.Zero(t, testutil.CollectAndCount(env.discardedSamples), "deduplicated samples are not discarded ones")
	require.Equal(t, 3.0, testutil.ToFloat64(env.d.receivedSamples.WithLabelValues(tenantA)))
	require.Equal(t, map[string]uint64{"204": 1, "202": 1}, pushDurationCounts(t, env))
}

func pushDurationCounts(t *testing.T, env *testEnv) map[string]uint64 {
	t.Helper()
	families, err := env.reg.Gather()
	require.NoError(t, err)
	counts := map[string]uint64{}
	for _, mf := range families {
		if mf.GetName() != "strata_distributor_push_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" {
					counts[l.GetValue()] = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return counts
}

// Requests that carry the cluster label or the replica label alone, and tenants that do not accept HA
// samples, are stored as they come.
func TestPush_HAOnlyAppliesWithBothLabelsAndTheTenantsLimit(t *testing.T) {
	now := testNow.UnixMilli()
	env, store := newHAEnv(t, true, 0)
	for _, ls := range [][]string{
		lbls("__name__", "up", "cluster", "c1", "job", "a"),
		lbls("__name__", "up", "__replica__", "r1", "job", "a"),
	} {
		resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(ls, now)}})
		require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	}
	require.Len(t, env.ingesters[0].seriesOf(tenantA), 2)
	require.Zero(t, store.writes.Load(), "nothing to elect")

	env, store = newHAEnv(t, false, 0)
	for _, replica := range []string{"r1", "r2"} {
		resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries(replica, now)}})
		require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	}
	require.Len(t, env.ingesters[0].seriesOf(tenantA), 2, "both replicas' series, labels kept")
	require.Zero(t, store.writes.Load())
}

func TestPush_HAMaxClustersRefusesNewClusters(t *testing.T) {
	env, _ := newHAEnv(t, true, 1)
	now := testNow.UnixMilli()
	require.Equal(t, http.StatusNoContent, env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries("r1", now)}}).Code)
	resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "__replica__", "r1", "cluster", "c2"), now, now+1),
	}})
	require.Equal(t, http.StatusBadRequest, resp.Code)
	require.Contains(t, resp.Body.String(), "err-strata-ha-max-clusters")
	require.Contains(t, resp.Body.String(), "-distributor.ha-tracker.max-clusters")
	require.Contains(t, resp.Body.String(), `"c2"`)
	require.Equal(t, 2.0, testutil.ToFloat64(env.discardedSamples.WithLabelValues(validation.ReasonHAMaxClusters, tenantA)))
	// Another tenant has its own clusters.
	require.Equal(t, http.StatusNoContent, env.push(t, "team-b", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "__replica__", "r1", "cluster", "c2"), now),
	}}).Code)
}

// Without the KV store no replica can be elected: the client is told to retry.
func TestPush_HAKVStoreDownIsRetryable(t *testing.T) {
	env, store := newHAEnv(t, true, 0)
	store.failing.Store(true)
	resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries("r1", testNow.UnixMilli())}})
	require.Equal(t, http.StatusServiceUnavailable, resp.Code)
	require.Equal(t, "1", resp.Header().Get("Retry-After"))
	require.Contains(t, resp.Body.String(), "kv store unreachable")
	require.Empty(t, env.ingesters[0].seriesOf(tenantA))
}

// Label values validation refuses are not tracked: the series are refused as any other.
func TestPush_HAIgnoresValuesValidationRefuses(t *testing.T) {
	env, store := newHAEnv(t, true, 0)
	for replica, reason := range map[string]string{
		strings.Repeat("r", 31): "err-strata-label-value-too-long", // over testLimits' 30
		"r\xff":                 "err-strata-invalid-label-value",
	} {
		resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries(replica, testNow.UnixMilli())}})
		require.Equal(t, http.StatusBadRequest, resp.Code)
		require.Contains(t, resp.Body.String(), reason)
	}
	resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "__replica__", "r1", "cluster", "c\xff"), testNow.UnixMilli()),
	}})
	require.Equal(t, http.StatusBadRequest, resp.Code)
	require.Contains(t, resp.Body.String(), "err-strata-invalid-label-value")
	require.Zero(t, store.writes.Load())
	env.d.haTracker.mu.RLock()
	defer env.d.haTracker.mu.RUnlock()
	require.Empty(t, env.d.haTracker.tenants)
}

func TestPush_HAWithoutTenantIs401BeforeAnyElection(t *testing.T) {
	env, store := newHAEnv(t, true, 0)
	resp := env.push(t, "", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries("r1", testNow.UnixMilli())}})
	require.Equal(t, http.StatusUnauthorized, resp.Code)
	require.Zero(t, store.writes.Load())
}

// The ruler's Push goes through the same HA check.
func TestPushMethod_HADropsTheReplicaThatIsNotElected(t *testing.T) {
	env, _ := newHAEnv(t, true, 0)
	ctx := tenant.NewContext(context.Background(), tenantA)
	require.NoError(t, env.d.Push(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries("r1", testNow.UnixMilli())}}))
	err := env.d.Push(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries("r2", testNow.UnixMilli())}})
	require.Equal(t, http.StatusAccepted, statusOf(err))
	require.Len(t, env.ingesters[0].seriesOf(tenantA), 1)
}

// lastPushSpy keeps the last request pushed to it, as the 2.0 request it holds.
type lastPushSpy struct {
	*fakeIngester
	v1Bytes int
	v2      writev2.Request
}

func (s *lastPushSpy) PushEncoded(ctx context.Context, in *ingesterpb.EncodedPushRequest) error {
	s.v1Bytes = in.Len()
	var raw []byte
	for _, p := range in.PartsV2() {
		raw = append(raw, p...)
	}
	s.v2 = writev2.Request{}
	if err := s.v2.Unmarshal(raw); err != nil {
		return err
	}
	return s.fakeIngester.PushEncoded(ctx, in)
}

type lastPushClients struct{ spy *lastPushSpy }

func (c lastPushClients) PusherFor(string) (client.Pusher, error) { return c.spy, nil }

// A 2.0 series of the elected replica loses its replica label but stays a 2.0 series: its start
// timestamps and metadata reach the ingester.
func TestPush_HAKeepsRemoteWrite2SeriesIn2(t *testing.T) {
	env, _ := newHAEnv(t, true, 0)
	spy := &lastPushSpy{fakeIngester: env.ingesters[0]}
	env.d.clients = lastPushClients{spy}
	now := testNow.UnixMilli()
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up_total", "__replica__", "r1", "cluster", "c1", "job", "a"), nil),
		Samples:    []writev2.Sample{{Value: 3, Timestamp: now, StartTimestamp: now - 5000}},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", "x"), nil), Value: 1, Timestamp: now}},
	}}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)

	resp := env.do(newPushRequestV2(t, tenantA, snappy.Encode(nil, raw)))
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	require.Zero(t, spy.v1Bytes, "the series was not encoded as a 1.0 series")
	require.Len(t, spy.v2.Timeseries, 1)
	b := labels.NewScratchBuilder(0)
	got, err := spy.v2.Timeseries[0].ToLabels(&b, spy.v2.Symbols)
	require.NoError(t, err)
	require.Equal(t, labels.FromStrings("__name__", "up_total", "cluster", "c1", "job", "a"), got)
	require.Equal(t, []writev2.Sample{{Value: 3, Timestamp: now, StartTimestamp: now - 5000}}, spy.v2.Timeseries[0].Samples)
	require.Len(t, spy.v2.Timeseries[0].Exemplars, 1)
	require.Equal(t, map[string][]string{`{__name__="up_total", cluster="c1", job="a"}`: {"3@" + strconv.FormatInt(now, 10)}}, env.ingesters[0].seriesOf(tenantA))
}

// A 2.0 push of a replica that is not the elected one is answered 202 with its samples counted as written:
// with zeros, Prometheus would take the batch for failed.
func TestPush_HANonElectedRemoteWrite2CountsItsSamplesAsWritten(t *testing.T) {
	env, _ := newHAEnv(t, true, 0)
	now := testNow.UnixMilli()
	resp := env.do(newPushRequestV2(t, tenantA, encodeRequestV2(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries("r1", now)}}, false)))
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	requireWritten(t, resp.Header(), 1, 0, 0)

	other := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{haSeries("r2", now, "job", "a"), haSeries("r2", now, "job", "b")}}
	resp = env.do(newPushRequestV2(t, tenantA, encodeRequestV2(t, other, false)))
	require.Equal(t, http.StatusAccepted, resp.Code)
	requireWritten(t, resp.Header(), 2, 0, 0)
}
