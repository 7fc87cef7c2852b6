package distributor

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// testNow is the distributor's clock in tests; sample timestamps are chosen relative to it.
var testNow = time.Unix(1_700_000_000, 0)

// fakeRing hands out, for every key, replicationFactor consecutive instances starting at key modulo the
// number of instances, tolerating the failure of a minority, as the real ring does for writes.
type fakeRing struct {
	instances         []ring.InstanceDesc
	replicationFactor int
}

func newFakeRing(n, replicationFactor int) *fakeRing {
	r := &fakeRing{replicationFactor: replicationFactor}
	for i := range n {
		id := fmt.Sprintf("ingester-%d", i)
		r.instances = append(r.instances, ring.InstanceDesc{ID: id, Addr: id + ":9095", State: ring.ACTIVE})
	}
	return r
}

func (r *fakeRing) Get(key uint32, _ ring.Operation, buf []ring.InstanceDesc) (ring.ReplicationSet, error) {
	buf = buf[:0]
	for i := range r.replicationFactor {
		buf = append(buf, r.instances[(int(key)+i)%len(r.instances)])
	}
	return ring.ReplicationSet{Instances: buf, MaxErrors: r.replicationFactor / 2}, nil
}

func (r *fakeRing) GetReplicationSetForOperation(ring.Operation) (ring.ReplicationSet, error) {
	return ring.ReplicationSet{Instances: slices.Clone(r.instances), MaxErrors: r.replicationFactor / 2}, nil
}

func (r *fakeRing) ReplicationFactor() int                   { return r.replicationFactor }
func (r *fakeRing) InstancesCount() int                      { return len(r.instances) }
func (r *fakeRing) HealthyInstancesCount(ring.Operation) int { return len(r.instances) }

// fakeIngester records the series pushed to it, per tenant, and answers with err when one is set.
type fakeIngester struct {
	mtx      sync.Mutex
	err      error
	block    bool                           // wait for the call's context to end instead of answering
	series   map[string]map[string][]string // tenant → series → "value@ts" samples
	metadata map[string][]string            // tenant → metric family names
	pushes   int
}

func newFakeIngester() *fakeIngester {
	return &fakeIngester{series: map[string]map[string][]string{}, metadata: map[string][]string{}}
}

func (f *fakeIngester) failWith(err error) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	f.err = err
}

func (f *fakeIngester) PushEncoded(ctx context.Context, in *ingesterpb.EncodedPushRequest) error {
	f.mtx.Lock()
	block, err := f.block, f.err
	f.mtx.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return err
	}
	req, err := decodeEncodedPush(in)
	if err != nil {
		return err
	}
	f.mtx.Lock()
	defer f.mtx.Unlock()
	f.pushes++
	if f.series[tenantID] == nil {
		f.series[tenantID] = map[string][]string{}
	}
	for _, ts := range req.Timeseries {
		key := seriesString(ts.Labels)
		for _, s := range ts.Samples {
			f.series[tenantID][key] = append(f.series[tenantID][key], fmt.Sprintf("%g@%d", s.Value, s.Timestamp))
		}
		for _, h := range ts.Histograms {
			f.series[tenantID][key] = append(f.series[tenantID][key], fmt.Sprintf("histogram@%d", h.Timestamp))
		}
	}
	for _, m := range req.Metadata {
		f.metadata[tenantID] = append(f.metadata[tenantID], m.MetricFamilyName)
	}
	return nil
}

// decodeEncodedPush reads what an ingester would from in, through gRPC's encoding: its 1.0 series and
// metadata, then its 2.0 series as 1.0 series.
func decodeEncodedPush(in *ingesterpb.EncodedPushRequest) (*prompb.WriteRequest, error) {
	data, err := ingesterpb.PushCodec.Marshal(in)
	if err != nil {
		return nil, err
	}
	defer data.Free()
	var pr ingesterpb.PushRequest
	if err := ingesterpb.PushCodec.Unmarshal(data, &pr); err != nil {
		return nil, err
	}
	req := &prompb.WriteRequest{}
	if err := req.Unmarshal(pr.WriteRequest); err != nil {
		return nil, err
	}
	if len(pr.WriteRequestV2) == 0 {
		return req, nil
	}
	var v2 writev2.Request
	if err := v2.Unmarshal(pr.WriteRequestV2); err != nil {
		return nil, err
	}
	for _, ts := range v2.Timeseries {
		out := prompb.TimeSeries{}
		for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
			out.Labels = append(out.Labels, prompb.Label{Name: v2.Symbols[ts.LabelsRefs[i]], Value: v2.Symbols[ts.LabelsRefs[i+1]]})
		}
		for _, smp := range ts.Samples {
			out.Samples = append(out.Samples, prompb.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
		for _, h := range ts.Histograms {
			out.Histograms = append(out.Histograms, prompb.Histogram{Timestamp: h.Timestamp})
		}
		req.Timeseries = append(req.Timeseries, out)
	}
	return req, nil
}

// seriesOf returns a copy of what the tenant pushed to this ingester.
func (f *fakeIngester) seriesOf(tenantID string) map[string][]string {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	out := map[string][]string{}
	for k, v := range f.series[tenantID] {
		out[k] = slices.Clone(v)
	}
	return out
}

// fakeClients maps ring addresses to fake ingesters.
type fakeClients map[string]*fakeIngester

func (c fakeClients) PusherFor(addr string) (client.Pusher, error) {
	ing, ok := c[addr]
	if !ok {
		return nil, fmt.Errorf("no ingester at %s", addr)
	}
	return ing, nil
}

// testLimits are small so that each limit is easy to break in a test.
func testLimits() validation.Limits {
	return validation.Limits{
		MaxLabelNamesPerSeries: 4,
		MaxLabelNameLength:     20,
		MaxLabelValueLength:    30,
		CreationGracePeriod:    model.Duration(10 * time.Minute),
		MaxMetadataLength:      100,
	}
}

// testEnv is a distributor in front of fake ingesters, reached over HTTP like a remote-write client would.
type testEnv struct {
	d                 *Distributor
	handler           http.Handler
	ring              *fakeRing
	ingesters         []*fakeIngester
	reg               *prometheus.Registry
	discardedSamples  *prometheus.CounterVec
	discardedMetadata *prometheus.CounterVec
}

// envSettings is what newTestEnv builds the distributor from.
type envSettings struct {
	cfg    Config
	limits validation.Limits
	ring   *fakeRing
}

type envOption func(*envSettings)

func withReplication(ingesters, replicationFactor int) envOption {
	return func(s *envSettings) {
		s.ring = newFakeRing(ingesters, replicationFactor)
		s.cfg.ReplicationFactor = replicationFactor
	}
}

func withMaxRecvMsgSize(n int) envOption { return func(s *envSettings) { s.cfg.MaxRecvMsgSize = n } }

func withRemoteTimeout(d time.Duration) envOption {
	return func(s *envSettings) { s.cfg.RemoteTimeout = d }
}

// withDefaultLimits uses the limits' flag defaults, as a production distributor does.
func withDefaultLimits() envOption {
	return func(s *envSettings) {
		s.limits.RegisterFlags(flag.NewFlagSet("limits", flag.PanicOnError))
	}
}

func newTestEnv(tb testing.TB, opts ...envOption) *testEnv {
	tb.Helper()
	s := envSettings{
		cfg:    Config{ReplicationFactor: 1, MaxRecvMsgSize: 1 << 20, RemoteTimeout: 10 * time.Second},
		limits: testLimits(),
		ring:   newFakeRing(1, 1),
	}
	for _, o := range opts {
		o(&s)
	}
	cfg, r := s.cfg, s.ring
	clients := fakeClients{}
	env := &testEnv{ring: r, reg: prometheus.NewRegistry()}
	for _, inst := range r.instances {
		ing := newFakeIngester()
		clients[inst.Addr] = ing
		env.ingesters = append(env.ingesters, ing)
	}
	env.discardedSamples = validation.NewDiscardedSamples(env.reg)
	env.discardedMetadata = validation.NewDiscardedMetadata(env.reg)
	d, err := New(cfg, validation.NewOverrides(s.limits, nil), nil, r, clients, env.discardedSamples, env.discardedMetadata, env.reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(tb, err)
	d.now = func() time.Time { return testNow }
	env.d = d
	env.handler = tenant.Middleware(true)(d)
	return env
}

// push sends req snappy-compressed as tenantID and returns the response.
func (e *testEnv) push(tb testing.TB, tenantID string, req *prompb.WriteRequest) *httptest.ResponseRecorder {
	tb.Helper()
	return e.do(newPushRequest(tb, tenantID, encodeRequest(tb, req)))
}

func (e *testEnv) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// encodeRequest marshals and snappy-compresses req as a remote-write 1.0 client does.
func encodeRequest(tb testing.TB, req *prompb.WriteRequest) []byte {
	tb.Helper()
	raw, err := req.Marshal()
	require.NoError(tb, err)
	return snappy.Encode(nil, raw)
}

// contentTypeV2 is the Content-Type of a remote write 2.0 request.
const contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

// encodeRequestV2 encodes req's series as a snappy-compressed remote write 2.0 request; withMetadata gives
// each series a counter type and a help text, as Prometheus does.
func encodeRequestV2(tb testing.TB, req *prompb.WriteRequest, withMetadata bool) []byte {
	tb.Helper()
	raw, err := toRequestV2(req, withMetadata).Marshal()
	require.NoError(tb, err)
	return snappy.Encode(nil, raw)
}

// toRequestV2 is req as a 2.0 request: the same series, samples, histograms and exemplars.
func toRequestV2(req *prompb.WriteRequest, withMetadata bool) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := &writev2.Request{}
	symbolize := func(ls []prompb.Label) []uint32 {
		var refs []uint32
		for _, l := range ls {
			refs = append(refs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		return refs
	}
	for _, ts := range req.Timeseries {
		s := writev2.TimeSeries{LabelsRefs: symbolize(ts.Labels)}
		for _, smp := range ts.Samples {
			s.Samples = append(s.Samples, writev2.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
		for _, h := range ts.Histograms {
			raw, err := h.Marshal()
			if err != nil {
				panic(err)
			}
			var h2 writev2.Histogram
			if err := h2.Unmarshal(raw); err != nil { // 1.0 and 2.0 histograms share fields 1 to 16
				panic(err)
			}
			s.Histograms = append(s.Histograms, h2)
		}
		for _, e := range ts.Exemplars {
			s.Exemplars = append(s.Exemplars, writev2.Exemplar{LabelsRefs: symbolize(e.Labels), Value: e.Value, Timestamp: e.Timestamp})
		}
		if withMetadata {
			s.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests served.")}
		}
		out.Timeseries = append(out.Timeseries, s)
	}
	out.Symbols = st.Symbols()
	return out
}

// newPushRequest builds a remote-write 1.0 POST with body; an empty tenantID leaves X-Scope-OrgID unset.
func newPushRequest(tb testing.TB, tenantID string, body []byte) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/push", bytes.NewReader(body))
	r.Header.Set("Content-Encoding", "snappy")
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if tenantID != "" {
		r.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	return r
}

// series builds a time series from alternating label names and values, with one sample per timestamp.
func series(ls []string, timestamps ...int64) prompb.TimeSeries {
	ts := prompb.TimeSeries{}
	for i := 0; i+1 < len(ls); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: ls[i], Value: ls[i+1]})
	}
	for i, t := range timestamps {
		ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(i + 1), Timestamp: t})
	}
	return ts
}

func lbls(nameValues ...string) []string { return nameValues }

// seriesString renders labels the way the fake ingester keys series: {a="1", b="2"}.
func seriesString(ls []prompb.Label) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", l.Name, l.Value))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// ingesterRejection is the error of an ingester that refused samples and histograms of a push as bad
// input, with the counts it details.
func ingesterRejection(t testing.TB, samples, histograms int, msg string) error {
	t.Helper()
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(&ingesterpb.PushRejected{Samples: int64(samples), Histograms: int64(histograms)})
	require.NoError(t, err)
	return st.Err()
}
