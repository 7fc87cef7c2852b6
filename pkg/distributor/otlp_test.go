package distributor

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// otlpEnv is a distributor's OTLP endpoint in front of fake ingesters.
type otlpEnv struct {
	*testEnv
	otlp *OTLPHandler
}

func newOTLPEnv(tb testing.TB, opts ...envOption) *otlpEnv {
	tb.Helper()
	env := newTestEnv(tb, append([]envOption{withDefaultLimits()}, opts...)...)
	h := NewOTLPHandler(env.d, env.reg)
	return &otlpEnv{testEnv: env, otlp: h}
}

type otlpBody struct {
	json, gzip bool
}

// export posts md to the OTLP endpoint as tenantID ("" sends no tenant).
func (e *otlpEnv) export(tb testing.TB, tenantID string, md pmetric.Metrics, how otlpBody) *httptest.ResponseRecorder {
	tb.Helper()
	req := pmetricotlp.NewExportRequestFromMetrics(md)
	var body []byte
	var err error
	ct := "application/x-protobuf"
	if how.json {
		body, err = req.MarshalJSON()
		ct = "application/json"
	} else {
		body, err = req.MarshalProto()
	}
	require.NoError(tb, err)
	r := newOTLPRequest(tenantID, body, ct)
	if how.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, err := zw.Write(body)
		require.NoError(tb, err)
		require.NoError(tb, zw.Close())
		r = newOTLPRequest(tenantID, b.Bytes(), ct)
		r.Header.Set("Content-Encoding", "gzip")
	}
	return e.serve(r)
}

func (e *otlpEnv) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	tenant.Middleware(true)(e.otlp).ServeHTTP(w, r)
	return w
}

func newOTLPRequest(tenantID string, body []byte, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/otlp/v1/metrics", bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	if tenantID != "" {
		r.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	return r
}

// testMetrics is one resource (a service with a region attribute) with a counter, a gauge, an
// explicit-bucket histogram and an exponential histogram, each with one point at testNow.
func testMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "shop")
	rm.Resource().Attributes().PutStr("service.instance.id", "pod-1")
	rm.Resource().Attributes().PutStr("cloud.region", "eu-west-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.NewTimestampFromTime(testNow)
	start := pcommon.NewTimestampFromTime(testNow.Add(-60e9))

	counter := ms.AppendEmpty()
	counter.SetName("http.requests")
	counter.SetUnit("1")
	sum := counter.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := sum.DataPoints().AppendEmpty()
	p.SetIntValue(42)
	p.SetTimestamp(ts)
	p.SetStartTimestamp(start)
	p.Attributes().PutStr("http.method", "GET")

	gauge := ms.AppendEmpty()
	gauge.SetName("queue.depth")
	gp := gauge.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetDoubleValue(3.5)
	gp.SetTimestamp(ts)

	hist := ms.AppendEmpty()
	hist.SetName("latency")
	hist.SetUnit("s")
	h := hist.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetStartTimestamp(start)
	hp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	hp.BucketCounts().FromRaw([]uint64{1, 2, 3})
	hp.SetCount(6)
	hp.SetSum(7.5)

	exp := ms.AppendEmpty()
	exp.SetName("size")
	eh := exp.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts)
	ep.SetStartTimestamp(start)
	ep.SetScale(2)
	ep.SetCount(3)
	ep.SetSum(10)
	ep.Positive().SetOffset(1)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 2})
	return md
}

func decodeExportResponse(tb testing.TB, w *httptest.ResponseRecorder, json bool) pmetricotlp.ExportResponse {
	tb.Helper()
	require.Equal(tb, http.StatusOK, w.Code, w.Body.String())
	resp := pmetricotlp.NewExportResponse()
	if json {
		require.Equal(tb, "application/json", w.Header().Get("Content-Type"))
		require.NoError(tb, resp.UnmarshalJSON(w.Body.Bytes()))
	} else {
		require.Equal(tb, "application/x-protobuf", w.Header().Get("Content-Type"))
		require.NoError(tb, resp.UnmarshalProto(w.Body.Bytes()))
	}
	return resp
}

// decodeStatus reads the google.rpc.Status of an OTLP error response.
func decodeStatus(tb testing.TB, w *httptest.ResponseRecorder, json bool) *rpcstatus.Status {
	tb.Helper()
	st := &rpcstatus.Status{}
	if json {
		require.NoError(tb, protojson.Unmarshal(w.Body.Bytes(), st), w.Body.String())
	} else {
		require.NoError(tb, proto.Unmarshal(w.Body.Bytes(), st), w.Body.String())
	}
	return st
}

func TestOTLP_TranslatesEveryMetricTypeAsPrometheusDoes(t *testing.T) {
	for name, how := range map[string]otlpBody{
		"protobuf":      {},
		"json":          {json: true},
		"protobuf gzip": {gzip: true},
		"json gzip":     {json: true, gzip: true},
	} {
		t.Run(name, func(t *testing.T) {
			env := newOTLPEnv(t)
			w := env.export(t, tenantA, testMetrics(), how)
			resp := decodeExportResponse(t, w, how.json)
			require.Equal(t, int64(0), resp.PartialSuccess().RejectedDataPoints())
			require.Empty(t, resp.PartialSuccess().ErrorMessage())

			at := strconv.FormatInt(testNow.UnixMilli(), 10)
			job := `instance="pod-1", job="shop"`
			require.Equal(t, map[string][]string{
				`{__name__="http_requests", http_method="GET", ` + job + `}`: {"42@" + at},
				`{__name__="queue_depth", ` + job + `}`:                      {"3.5@" + at},
				`{__name__="latency_bucket", ` + job + `, le="0.1"}`:         {"1@" + at},
				`{__name__="latency_bucket", ` + job + `, le="1"}`:           {"3@" + at},
				`{__name__="latency_bucket", ` + job + `, le="+Inf"}`:        {"6@" + at},
				`{__name__="latency_count", ` + job + `}`:                    {"6@" + at},
				`{__name__="latency_sum", ` + job + `}`:                      {"7.5@" + at},
				`{__name__="size", ` + job + `}`:                             {"histogram@" + at},
				// Resource attributes other than the identifying ones go to target_info.
				`{__name__="target_info", cloud_region="eu-west-1", ` + job + `}`: {"1@" + at},
			}, env.ingesters[0].seriesOf(tenantA))
			require.ElementsMatch(t, []string{"http_requests", "queue_depth", "latency", "size", "target_info"}, env.ingesters[0].metadata[tenantA])
			require.Equal(t, 1.0, testutil.ToFloat64(env.otlp.requests.WithLabelValues(tenantA)))
			require.Equal(t, 4.0, testutil.ToFloat64(env.otlp.points.WithLabelValues(tenantA)))
		})
	}
}

func TestOTLP_TenantOptionsChangeTheTranslation(t *testing.T) {
	env := newOTLPEnv(t, withLimits(func(l *validation.Limits) {
		l.OTelMetricSuffixesEnabled = true
		l.PromoteOTelResourceAttributes = validation.CSVList{"cloud.region"}
		l.OTelKeepIdentifyingResourceAttributes = true
	}))
	decodeExportResponse(t, env.export(t, tenantA, testMetrics(), otlpBody{}), false)
	series := env.ingesters[0].seriesOf(tenantA)
	job := `cloud_region="eu-west-1", instance="pod-1", job="shop"`
	require.Contains(t, series, `{__name__="http_requests_total", cloud_region="eu-west-1", http_method="GET", instance="pod-1", job="shop"}`)
	require.Contains(t, series, `{__name__="latency_seconds_count", `+job+`}`)
	require.Contains(t, series, `{__name__="queue_depth", `+job+`}`)
	require.Contains(t, series, `{__name__="target_info", `+job+`, service_instance_id="pod-1", service_name="shop"}`)
}

func TestOTLP_RejectsDeltaTemporalityNamingTheMetric(t *testing.T) {
	env := newOTLPEnv(t)
	md := testMetrics()
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	w := env.export(t, tenantA, md, otlpBody{json: true})
	require.Equal(t, http.StatusBadRequest, w.Code)
	st := decodeStatus(t, w, true)
	require.Equal(t, int32(codes.InvalidArgument), st.Code)
	require.Contains(t, st.Message, `metric "http.requests" has delta temporality`)
	require.Empty(t, env.ingesters[0].seriesOf(tenantA), "nothing of a request with a delta metric is written")
}

func TestOTLP_NativeDeltaIngestionStoresDeltasAsTheyAre(t *testing.T) {
	env := newOTLPEnv(t, withLimits(func(l *validation.Limits) { l.OTelNativeDeltaIngestion = true }))
	md := testMetrics()
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(2).Histogram().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	resp := decodeExportResponse(t, env.export(t, tenantA, md, otlpBody{}), false)
	require.Equal(t, int64(0), resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage())
	series := env.ingesters[0].seriesOf(tenantA)
	job := `instance="pod-1", job="shop"`
	require.Equal(t, []string{"42@" + fmt.Sprint(testNow.UnixMilli())}, series[`{__name__="http_requests", http_method="GET", `+job+`}`])
	require.Contains(t, series, `{__name__="latency_count", `+job+`}`)
}

func TestOTLP_HistogramsToNHCBAndScopeMetadata(t *testing.T) {
	md := testMetrics()
	scope := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope()
	scope.SetName("shop.checkout")
	scope.SetVersion("1.2.0")
	job := `instance="pod-1", job="shop"`

	plain := newOTLPEnv(t)
	decodeExportResponse(t, plain.export(t, tenantA, md, otlpBody{}), false)
	series := plain.ingesters[0].seriesOf(tenantA)
	require.Contains(t, series, `{__name__="latency_bucket", `+job+`, le="0.1"}`)
	require.NotContains(t, series, `{__name__="latency", `+job+`}`)

	env := newOTLPEnv(t, withLimits(func(l *validation.Limits) {
		l.OTelConvertHistogramsToNHCB = true
		l.OTelPromoteScopeMetadata = true
	}))
	decodeExportResponse(t, env.export(t, tenantA, md, otlpBody{}), false)
	series = env.ingesters[0].seriesOf(tenantA)
	scoped := `, otel_scope_name="shop.checkout", otel_scope_version="1.2.0"`
	require.Contains(t, series, `{__name__="latency", `+job+scoped+`}`, "one native histogram series with custom buckets")
	require.NotContains(t, series, `{__name__="latency_bucket", `+job+scoped+`, le="0.1"}`)
	require.Contains(t, series, `{__name__="queue_depth", `+job+scoped+`}`)
}

func TestOTLP_ReportsPartialSuccessWhenValidationRejectsSomePoints(t *testing.T) {
	env := newOTLPEnv(t, withLimits(func(l *validation.Limits) { l.MaxLabelNamesPerSeries = 4 }))
	md := testMetrics()
	// 5 labels with job and instance: over the limit of 4.
	attrs := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(1).Gauge().DataPoints().At(0).Attributes()
	attrs.PutStr("queue", "a")
	attrs.PutStr("shard", "1")
	resp := decodeExportResponse(t, env.export(t, tenantA, md, otlpBody{}), false)
	require.Equal(t, int64(1), resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage())
	require.Contains(t, resp.PartialSuccess().ErrorMessage(), "series has 5 labels, limit is 4")
	series := env.ingesters[0].seriesOf(tenantA)
	require.Contains(t, series, `{__name__="http_requests", http_method="GET", instance="pod-1", job="shop"}`)
	require.Len(t, series, 8, "every series but the gauge's is written")
	require.Equal(t, 1.0, testutil.ToFloat64(env.discardedSamples.WithLabelValues(validation.ReasonMaxLabelNamesPerSeries, tenantA)))
}

func TestOTLP_RejectsWithBadRequestWhenEveryPointIsRejected(t *testing.T) {
	env := newOTLPEnv(t, withLimits(func(l *validation.Limits) { l.MaxLabelNamesPerSeries = 1 }))
	w := env.export(t, tenantA, testMetrics(), otlpBody{})
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, decodeStatus(t, w, false).Message, "limit is 1")
}

func TestOTLP_EmptyExportSucceeds(t *testing.T) {
	env := newOTLPEnv(t)
	resp := decodeExportResponse(t, env.export(t, tenantA, pmetric.NewMetrics(), otlpBody{}), false)
	require.Equal(t, int64(0), resp.PartialSuccess().RejectedDataPoints())
}

func TestOTLP_PassesOnRetryableFailuresWithRetryAfter(t *testing.T) {
	t.Run("ingestion rate", func(t *testing.T) {
		env := newOTLPEnv(t, withLimits(func(l *validation.Limits) { l.IngestionRate, l.IngestionBurstSize = 1, 1 }))
		w := env.export(t, tenantA, testMetrics(), otlpBody{})
		require.Equal(t, http.StatusTooManyRequests, w.Code)
		require.Equal(t, "1", w.Header().Get("Retry-After"))
		st := decodeStatus(t, w, false)
		require.Equal(t, int32(codes.ResourceExhausted), st.Code)
		require.Contains(t, st.Message, "ingestion_rate")
	})
	t.Run("ingesters fail", func(t *testing.T) {
		env := newOTLPEnv(t)
		env.ingesters[0].failWith(status.Error(codes.Unavailable, "ingester down"))
		w := env.export(t, tenantA, testMetrics(), otlpBody{})
		require.GreaterOrEqual(t, w.Code, 500)
		require.Contains(t, decodeStatus(t, w, false).Message, "ingester down")
	})
	t.Run("too many requests in flight", func(t *testing.T) {
		env := newOTLPEnv(t)
		env.d.instance.limits.MaxInflightPushRequests = 1
		require.NoError(t, env.d.instance.admit())
		defer env.d.instance.release()
		w := env.export(t, tenantA, testMetrics(), otlpBody{})
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		require.Equal(t, "1", w.Header().Get("Retry-After"))
	})
}

func TestOTLP_RejectsBadRequests(t *testing.T) {
	valid, err := pmetricotlp.NewExportRequestFromMetrics(testMetrics()).MarshalProto()
	require.NoError(t, err)
	gzipped := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return out.Bytes()
	}
	for name, tc := range map[string]struct {
		req      func() *http.Request
		code     int
		contains string
		json     bool // the error is in JSON
		plain    bool // the tenant middleware answers in plain text
	}{
		"GET": {
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/otlp/v1/metrics", nil)
				r.Header.Set(tenant.OrgIDHeader, tenantA)
				return r
			},
			code: http.StatusMethodNotAllowed, contains: "POST",
		},
		"no tenant": {
			req:  func() *http.Request { return newOTLPRequest("", valid, "application/x-protobuf") },
			code: http.StatusUnauthorized, contains: "X-Scope-OrgID", plain: true,
		},
		"text body": {
			req:  func() *http.Request { return newOTLPRequest(tenantA, []byte("up 1"), "text/plain") },
			code: http.StatusUnsupportedMediaType, contains: "application/x-protobuf or application/json",
		},
		"no content type": {
			req:  func() *http.Request { return newOTLPRequest(tenantA, valid, "") },
			code: http.StatusUnsupportedMediaType,
		},
		"snappy": {
			req: func() *http.Request {
				r := newOTLPRequest(tenantA, valid, "application/x-protobuf")
				r.Header.Set("Content-Encoding", "snappy")
				return r
			},
			code: http.StatusUnsupportedMediaType, contains: `"snappy"`,
		},
		"garbage protobuf": {
			req: func() *http.Request {
				return newOTLPRequest(tenantA, []byte{0xff, 0xff, 0xff, 0xff}, "application/x-protobuf")
			},
			code: http.StatusBadRequest, contains: "not an OTLP ExportMetricsServiceRequest",
		},
		"garbage json": {
			req: func() *http.Request {
				return newOTLPRequest(tenantA, []byte(`{"resourceMetrics": 5`), "application/json")
			},
			code: http.StatusBadRequest, contains: "not an OTLP ExportMetricsServiceRequest", json: true,
		},
		"not gzip": {
			req: func() *http.Request {
				r := newOTLPRequest(tenantA, valid, "application/x-protobuf")
				r.Header.Set("Content-Encoding", "gzip")
				return r
			},
			code: http.StatusBadRequest, contains: "not valid gzip",
		},
		"truncated gzip": {
			req: func() *http.Request {
				z := gzipped(valid)
				r := newOTLPRequest(tenantA, z[:len(z)-10], "application/x-protobuf")
				r.Header.Set("Content-Encoding", "gzip")
				return r
			},
			code: http.StatusBadRequest, contains: "not valid gzip",
		},
		"announced length over the limit": {
			req: func() *http.Request {
				r := newOTLPRequest(tenantA, valid, "application/x-protobuf")
				r.ContentLength = 1 << 30
				return r
			},
			code: http.StatusRequestEntityTooLarge, contains: "-distributor.max-recv-msg-size",
		},
		"body over the limit": {
			req: func() *http.Request {
				r := newOTLPRequest(tenantA, bytes.Repeat([]byte{0}, 2<<20), "application/x-protobuf")
				r.ContentLength = -1 // chunked: the length is not announced
				return r
			},
			code: http.StatusRequestEntityTooLarge, contains: "-distributor.max-recv-msg-size",
		},
		"decompressed body over the limit": {
			req: func() *http.Request {
				r := newOTLPRequest(tenantA, gzipped(make([]byte, 2<<20)), "application/x-protobuf")
				r.Header.Set("Content-Encoding", "gzip")
				return r
			},
			code: http.StatusRequestEntityTooLarge, contains: "decompressed body is larger than the limit",
		},
	} {
		t.Run(name, func(t *testing.T) {
			env := newOTLPEnv(t) // -distributor.max-recv-msg-size is 1 MiB
			w := env.serve(tc.req())
			require.Equal(t, tc.code, w.Code, w.Body.String())
			if tc.plain {
				require.Contains(t, w.Body.String(), tc.contains)
			} else {
				require.Contains(t, decodeStatus(t, w, tc.json).Message, tc.contains)
			}
			require.Empty(t, env.ingesters[0].seriesOf(tenantA))
		})
	}
}

func TestOTLP_RefusesGzipBombWithoutInflatingIt(t *testing.T) {
	env := newOTLPEnv(t) // 1 MiB limit
	// Gzip readers read concatenated members as one stream: 128 members of 4 MiB of zeros are 512 MiB
	// decompressed, in about 0.5 MiB.
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, 4<<20))
	require.NoError(t, zw.Close())
	body := bytes.Repeat(member.Bytes(), 128)
	require.Less(t, len(body), 1<<20)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newOTLPRequest(tenantA, body, "application/x-protobuf")
	r.Header.Set("Content-Encoding", "gzip")
	w := env.serve(r)
	runtime.ReadMemStats(&after)
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "refusing the bomb allocated far more than the limit")
}

func TestOTLP_RefusesExportsThatTranslateBeyondTheLimit(t *testing.T) {
	env := newOTLPEnv(t, withMaxRecvMsgSize(64<<10))
	// One histogram point with 2000 buckets and long attributes: about 20 KiB of OTLP, but 2000 series
	// each carrying every attribute once translated, over 16 times the limit.
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("wide")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := h.DataPoints().AppendEmpty()
	p.SetTimestamp(pcommon.NewTimestampFromTime(testNow))
	for i := range 2000 {
		p.ExplicitBounds().Append(float64(i))
		p.BucketCounts().Append(1)
	}
	p.BucketCounts().Append(1)
	for _, k := range []string{"a", "b", "c", "d"} {
		p.Attributes().PutStr(k, strings.Repeat(k, 200))
	}
	w := env.export(t, tenantA, md, otlpBody{gzip: true})
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code, w.Body.String())
	require.Contains(t, decodeStatus(t, w, false).Message, "translates to more than")
	require.Empty(t, env.ingesters[0].seriesOf(tenantA))
}

func TestOTLP_ReadsTheTenantFromTheContext(t *testing.T) {
	env := newOTLPEnv(t)
	body, err := pmetricotlp.NewExportRequestFromMetrics(testMetrics()).MarshalProto()
	require.NoError(t, err)
	r := httptest.NewRequestWithContext(tenant.NewContext(context.Background(), "team-b"), http.MethodPost, "/otlp/v1/metrics", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-protobuf")
	w := httptest.NewRecorder()
	env.otlp.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
	require.NotEmpty(t, env.ingesters[0].seriesOf("team-b"))
	_, _ = io.Copy(io.Discard, w.Body)
}

func TestOTLP_RefusesBodiesThatDecodeFarBeyondTheirSize(t *testing.T) {
	const points = 200_000 // empty data points: 2 bytes each in protobuf, 3 in JSON
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("x")
	m.SetEmptyGauge().DataPoints().EnsureCapacity(points)
	for range points {
		m.Gauge().DataPoints().AppendEmpty()
	}
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			env := newOTLPEnv(t) // 1 MiB limit: 16 MiB once decoded, where these take about 30 MiB
			req := pmetricotlp.NewExportRequestFromMetrics(md)
			body, err := req.MarshalProto()
			ct := "application/x-protobuf"
			if json {
				body, err = req.MarshalJSON()
				ct = "application/json"
			}
			require.NoError(t, err)
			require.Less(t, len(body), 1<<20)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			w := env.serve(newOTLPRequest(tenantA, body, ct))
			runtime.ReadMemStats(&after)
			require.Equal(t, http.StatusRequestEntityTooLarge, w.Code, w.Body.String())
			require.Contains(t, decodeStatus(t, w, json).Message, "once decoded")
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "the body was decoded before it was refused")
		})
	}
}

func TestOTLP_AcceptsARealExportAsLargeAsTheLimit(t *testing.T) {
	body, err := pmetricotlp.NewExportRequestFromMetrics(benchmarkOTLPMetrics(1000)).MarshalProto()
	require.NoError(t, err)
	env := newOTLPEnv(t, withMaxRecvMsgSize(len(body)),
		withLimits(func(l *validation.Limits) { l.IngestionRate, l.IngestionBurstSize = 1e9, 1e9 }))
	w := env.serve(newOTLPRequest(tenantA, body, "application/x-protobuf"))
	require.Equal(t, http.StatusOK, w.Code, decodeStatus(t, w, false).GetMessage())
	require.Len(t, env.ingesters[0].seriesOf(tenantA), 1000)
	require.Less(t, decodedSize(body, false), 16*len(body))
}

func TestOTLP_HoldsTheDecodedSizeInTheInflightBytes(t *testing.T) {
	env := newOTLPEnv(t)
	body, err := pmetricotlp.NewExportRequestFromMetrics(testMetrics()).MarshalProto()
	require.NoError(t, err)
	// The body fits beside what is already held, what it decodes to does not.
	env.d.instance.limits.MaxInflightPushRequestsBytes = 2*len(body) + 1
	require.NoError(t, env.d.instance.holdBytes(1))
	defer env.d.instance.releaseBytes(1)
	w := env.serve(newOTLPRequest(tenantA, body, "application/x-protobuf"))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, decodeStatus(t, w, false).Message, "max-inflight-push-requests-bytes")
	require.Equal(t, int64(1), env.d.instance.inflightBytes.Load(), "the request released what it held")
}

func TestOTLP_IngesterRejectionsArePartialSuccess(t *testing.T) {
	env := newOTLPEnv(t)
	env.ingesters[0].failWith(ingesterRejection(t, 2, 0, "2 samples rejected: out of order sample"))
	resp := decodeExportResponse(t, env.export(t, tenantA, testMetrics(), otlpBody{}), false)
	require.Equal(t, int64(2), resp.PartialSuccess().RejectedDataPoints())
	require.Contains(t, resp.PartialSuccess().ErrorMessage(), "out of order sample")
}

// FuzzOTLP sends arbitrary bodies, as protobuf and as JSON: every one is answered with a status a client
// can act on, never a panic or a 500.
func FuzzOTLP(f *testing.F) {
	for _, md := range []pmetric.Metrics{testMetrics(), benchmarkOTLPMetrics(100)} {
		req := pmetricotlp.NewExportRequestFromMetrics(md)
		pb, _ := req.MarshalProto()
		js, _ := req.MarshalJSON()
		f.Add(pb, false)
		f.Add(js, true)
	}
	f.Add([]byte{0x0a, 0x00}, false)
	f.Add([]byte(`{"resourceMetrics":[{}]}`), true)
	env := newOTLPEnv(f)
	f.Fuzz(func(t *testing.T, body []byte, json bool) {
		ct := "application/x-protobuf"
		if json {
			ct = "application/json"
		}
		w := env.serve(newOTLPRequest(tenantA, body, ct))
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

func TestOTLP_BoundsTargetInfoOfPointsFarApart(t *testing.T) {
	env := newOTLPEnv(t)
	md := testMetrics()
	// A point whose timestamp was left unset (1970) beside current ones.
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(1).Gauge().DataPoints().AppendEmpty().SetDoubleValue(1)
	resp := decodeExportResponse(t, env.export(t, tenantA, md, otlpBody{}), false)
	require.Contains(t, resp.PartialSuccess().ErrorMessage(), "target_info of")
	var targetInfo []string
	for s, samples := range env.ingesters[0].seriesOf(tenantA) {
		if strings.Contains(s, "target_info") {
			targetInfo = samples
		}
	}
	require.Len(t, targetInfo, maxTargetInfoSamples, "from 1970 on, every 2.5 minutes, up to the bound")
}

func TestOTLP_TranslatesSummariesAndCountsTheirPointsOnce(t *testing.T) {
	env := newOTLPEnv(t)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "shop")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("rpc.latency")
	p := m.SetEmptySummary().DataPoints().AppendEmpty()
	p.SetTimestamp(pcommon.NewTimestampFromTime(testNow))
	p.SetCount(4)
	p.SetSum(2)
	for _, q := range []float64{0.5, 0.99} {
		qv := p.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		qv.SetValue(q)
	}
	resp := decodeExportResponse(t, env.export(t, tenantA, md, otlpBody{}), false)
	// One point, four series: nothing counts as rejected.
	require.Equal(t, int64(0), resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage())
	require.Equal(t, map[string][]string{
		`{__name__="rpc_latency_sum", job="shop"}`:              {"2@" + strconv.FormatInt(testNow.UnixMilli(), 10)},
		`{__name__="rpc_latency_count", job="shop"}`:            {"4@" + strconv.FormatInt(testNow.UnixMilli(), 10)},
		`{__name__="rpc_latency", job="shop", quantile="0.5"}`:  {"0.5@" + strconv.FormatInt(testNow.UnixMilli(), 10)},
		`{__name__="rpc_latency", job="shop", quantile="0.99"}`: {"0.99@" + strconv.FormatInt(testNow.UnixMilli(), 10)},
	}, env.ingesters[0].seriesOf(tenantA))
}

func TestOTLP_MetadataRejectedByIngestersIsAWarning(t *testing.T) {
	env := newOTLPEnv(t)
	env.ingesters[0].failWith(status.Error(codes.InvalidArgument, "metadata rejected: too many metric families"))
	resp := decodeExportResponse(t, env.export(t, tenantA, testMetrics(), otlpBody{}), false)
	require.Equal(t, int64(0), resp.PartialSuccess().RejectedDataPoints())
	require.Contains(t, resp.PartialSuccess().ErrorMessage(), "too many metric families")
}

func TestOTLPOutcome_SamplesDroppedOnPurposeAreAWarning(t *testing.T) {
	// The distributor answers 202 for the samples of an HA replica that is not the elected one.
	resp, err := otlpOutcome(&otlpRequest{dataPoints: 4, translated: 4}, 9, writeStats{samples: 9}, httpError(http.StatusAccepted, "replica b is not the elected replica a of cluster c"))
	require.NoError(t, err)
	require.Equal(t, int64(0), resp.PartialSuccess().RejectedDataPoints())
	require.Contains(t, resp.PartialSuccess().ErrorMessage(), "not the elected replica")
}

// With otel_created_timestamp_zero_ingestion_enabled, the points' start times reach the ingesters as
// remote write 2.0 start timestamps (which they write as zero samples), for cumulative types only; the
// series, values and metadata are those of the translation without it.
func TestOTLP_CreatedTimestampZeroIngestionSendsStartTimes(t *testing.T) {
	md := testMetrics()
	// A gauge's start time says nothing of its value: it is not passed on.
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(1).Gauge().DataPoints().At(0).SetStartTimestamp(pcommon.NewTimestampFromTime(testNow.Add(-30e9)))

	plain := newOTLPEnv(t)
	decodeExportResponse(t, plain.export(t, tenantA, md, otlpBody{}), false)

	env := newOTLPEnv(t, withLimits(func(l *validation.Limits) { l.OTelCreatedTimestampZeroIngestionEnabled = true }))
	spy := &lastPushSpy{fakeIngester: env.ingesters[0]}
	env.d.clients = lastPushClients{spy}
	resp := decodeExportResponse(t, env.export(t, tenantA, md, otlpBody{}), false)
	require.Equal(t, int64(0), resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage())
	require.Equal(t, plain.ingesters[0].seriesOf(tenantA), env.ingesters[0].seriesOf(tenantA))
	require.ElementsMatch(t, plain.ingesters[0].metadata[tenantA], env.ingesters[0].metadata[tenantA])

	start := testNow.Add(-60e9).UnixMilli()
	starts := map[string]int64{}
	b := labels.NewScratchBuilder(0)
	for _, ts := range spy.v2.Timeseries {
		ls, err := ts.ToLabels(&b, spy.v2.Symbols)
		require.NoError(t, err)
		for _, s := range ts.Samples {
			starts[ls.Get("__name__")+ls.Get("le")] = s.StartTimestamp
		}
		for _, h := range ts.Histograms {
			starts[ls.Get("__name__")] = h.StartTimestamp
		}
	}
	require.Equal(t, map[string]int64{
		"http_requests": start, "latency_bucket0.1": start, "latency_bucket1": start, "latency_bucket+Inf": start,
		"latency_count": start, "latency_sum": start, "size": start,
		"queue_depth": 0, "target_info": 0,
	}, starts)
}
