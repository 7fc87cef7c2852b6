package distributor

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

const tenantA = "team-a"

// validSeries is pushed next to each invalid series to check that the rest of a request still gets through.
var validSeries = lbls("__name__", "up", "job", "api")

func TestPush_RejectsInvalidSeriesAndKeepsValidOnes(t *testing.T) {
	now := testNow.UnixMilli()
	tests := []struct {
		name       string
		series     prompb.TimeSeries
		reason     string
		discarded  float64
		bodyWants  string
		keptSample string // a sample of the invalid series that is valid and must still be pushed
	}{
		{
			name:      "missing metric name",
			series:    series(lbls("job", "api"), now, now+1),
			reason:    validation.ReasonMissingMetricName,
			discarded: 2,
			bodyWants: "series has no metric name",
		},
		{
			name:      "empty metric name",
			series:    series(lbls("__name__", "", "job", "api"), now),
			reason:    validation.ReasonMissingMetricName,
			discarded: 1,
			bodyWants: "series has no metric name",
		},
		{
			name:      "invalid metric name",
			series:    series(lbls("__name__", "1st-metric"), now),
			reason:    validation.ReasonInvalidMetricName,
			discarded: 1,
			bodyWants: `metric name "1st-metric" is invalid`,
		},
		{
			name:      "invalid label name",
			series:    series(lbls("__name__", "up", "bad-name", "x"), now, now+1, now+2),
			reason:    validation.ReasonInvalidLabelName,
			discarded: 3,
			bodyWants: `label name "bad-name" is invalid`,
		},
		{
			name:      "empty label value",
			series:    series(lbls("__name__", "up", "job", ""), now),
			reason:    validation.ReasonLabelValueEmpty,
			discarded: 1,
			bodyWants: `label "job" has an empty value`,
		},
		{
			name:      "duplicate label name",
			series:    series(lbls("__name__", "up", "job", "a", "job", "b"), now),
			reason:    validation.ReasonDuplicateLabelNames,
			discarded: 1,
			bodyWants: `label name "job" appears more than once`,
		},
		{
			name:      "labels not sorted",
			series:    series(lbls("__name__", "up", "job", "a", "instance", "b"), now),
			reason:    validation.ReasonLabelsNotSorted,
			discarded: 1,
			bodyWants: "labels are not sorted",
		},
		{
			name:      "label name too long",
			series:    series(lbls("__name__", "up", strings.Repeat("n", 21), "x"), now),
			reason:    validation.ReasonLabelNameTooLong,
			discarded: 1,
			bodyWants: "is 21 bytes long, limit is 20 (-validation.max-length-label-name)",
		},
		{
			name:      "label value too long",
			series:    series(lbls("__name__", "up", "job", strings.Repeat("v", 31)), now),
			reason:    validation.ReasonLabelValueTooLong,
			discarded: 1,
			bodyWants: "is 31 bytes long, limit is 30 (-validation.max-length-label-value)",
		},
		{
			name:      "metric name too long",
			series:    series(lbls("__name__", strings.Repeat("m", 31)), now),
			reason:    validation.ReasonLabelValueTooLong,
			discarded: 1,
			bodyWants: "(-validation.max-length-label-value)",
		},
		{
			name:      "label value not UTF-8",
			series:    series(lbls("__name__", "up", "job", "\xff\xfe"), now),
			reason:    validation.ReasonInvalidLabelValue,
			discarded: 1,
			bodyWants: "is not valid UTF-8",
		},
		{
			name:      "too many labels",
			series:    series(lbls("__name__", "up", "a", "1", "b", "2", "c", "3", "d", "4"), now, now+1),
			reason:    validation.ReasonMaxLabelNamesPerSeries,
			discarded: 2,
			bodyWants: "series has 5 labels, limit is 4 (-validation.max-label-names-per-series)",
		},
		{
			name:      "every sample too far in the future",
			series:    series(lbls("__name__", "up", "job", "future"), now+int64(11*time.Minute/time.Millisecond), now+int64(time.Hour/time.Millisecond)),
			reason:    validation.ReasonTooFarInFuture,
			discarded: 2,
			bodyWants: "ahead of this server's clock, limit is 10m (-validation.create-grace-period)",
		},
		{
			name:       "one sample too far in the future",
			series:     series(lbls("__name__", "up", "job", "future"), now, now+int64(time.Hour/time.Millisecond)),
			reason:     validation.ReasonTooFarInFuture,
			discarded:  1,
			bodyWants:  "1h0m0s ahead of this server's clock",
			keptSample: "1@" + itoa(now),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			invalidKey := seriesString(tt.series.Labels)
			resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				tt.series,
				series(validSeries, now),
			}})

			require.Equal(t, http.StatusBadRequest, resp.Code, resp.Body.String())
			require.Contains(t, resp.Body.String(), tt.bodyWants)
			require.Equal(t, tt.discarded, testutil.ToFloat64(env.discardedSamples.WithLabelValues(tt.reason, tenantA)))
			require.Equal(t, 1, testutil.CollectAndCount(env.discardedSamples), "only the expected reason is counted")

			pushed := env.ingesters[0].seriesOf(tenantA)
			require.Equal(t, []string{"1@" + itoa(now)}, pushed[seriesString(series(validSeries).Labels)])
			if tt.keptSample == "" {
				require.NotContains(t, pushed, invalidKey)
				require.Len(t, pushed, 1)
			} else {
				require.Equal(t, []string{tt.keptSample}, pushed[invalidKey])
			}
		})
	}
}

func TestPush_ReportsAtMostTenRejections(t *testing.T) {
	env := newTestEnv(t)
	req := &prompb.WriteRequest{}
	for i := range 15 {
		req.Timeseries = append(req.Timeseries, series(lbls("job", "api", "n", itoa(int64(i))), testNow.UnixMilli()))
	}
	resp := env.push(t, tenantA, req)
	require.Equal(t, http.StatusBadRequest, resp.Code)
	require.Contains(t, resp.Body.String(), "15 rejected")
	require.Contains(t, resp.Body.String(), "(and 5 more)")
	require.Equal(t, 10, strings.Count(resp.Body.String(), "series has no metric name"))
	require.Equal(t, 15.0, testutil.ToFloat64(env.discardedSamples.WithLabelValues(validation.ReasonMissingMetricName, tenantA)))
}

func TestPush_RejectsInvalidMetadataAndKeepsTheRest(t *testing.T) {
	env := newTestEnv(t)
	resp := env.push(t, tenantA, &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{series(validSeries, testNow.UnixMilli())},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, Help: "no family"},
			{MetricFamilyName: "up", Type: prompb.MetricMetadata_GAUGE, Help: strings.Repeat("h", 101)},
			{MetricFamilyName: "requests_total", Type: prompb.MetricMetadata_COUNTER, Help: "Requests."},
		},
	})
	require.Equal(t, http.StatusBadRequest, resp.Code)
	require.Contains(t, resp.Body.String(), "metric metadata has no metric family name")
	require.Contains(t, resp.Body.String(), "(-validation.max-metadata-length)")
	require.Equal(t, 1.0, testutil.ToFloat64(env.discardedMetadata.WithLabelValues(validation.ReasonMetadataMissingMetricName, tenantA)))
	require.Equal(t, 1.0, testutil.ToFloat64(env.discardedMetadata.WithLabelValues(validation.ReasonMetricMetadataTooLong, tenantA)))
	require.Zero(t, testutil.CollectAndCount(env.discardedSamples))

	ing := env.ingesters[0]
	ing.mtx.Lock()
	defer ing.mtx.Unlock()
	require.Equal(t, []string{"requests_total"}, ing.metadata[tenantA])
	require.Len(t, ing.series[tenantA], 1)
}

func TestPush_AcceptsValidRequest(t *testing.T) {
	env := newTestEnv(t)
	now := testNow.UnixMilli()
	resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(validSeries, now-1000, now),
		// Up to the grace period in the future is fine.
		series(lbls("__name__", "up", "job", "db"), now+int64(10*time.Minute/time.Millisecond)),
	}})
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	require.Empty(t, resp.Body.String())
	require.Len(t, env.ingesters[0].seriesOf(tenantA), 2)
	require.Zero(t, testutil.CollectAndCount(env.discardedSamples))
	require.Equal(t, 3.0, testutil.ToFloat64(env.d.receivedSamples.WithLabelValues(tenantA)))
}

func TestPush_EmptyRequestSucceedsWithoutCallingIngesters(t *testing.T) {
	env := newTestEnv(t)
	resp := env.push(t, tenantA, &prompb.WriteRequest{})
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	require.Zero(t, env.ingesters[0].pushes)
}

func TestServeHTTP_RecordsPushDurationByResponseStatus(t *testing.T) {
	env := newTestEnv(t)
	require.Equal(t, http.StatusNoContent, env.push(t, tenantA, &prompb.WriteRequest{}).Code)
	require.Equal(t, http.StatusBadRequest, env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("job", "x"), testNow.UnixMilli()),
	}}).Code)

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
	require.Equal(t, map[string]uint64{"204": 1, "400": 1}, counts)
}

func TestServeHTTP_RejectsBadRequests(t *testing.T) {
	valid := func(tb testing.TB) []byte {
		return encodeRequest(tb, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(validSeries, testNow.UnixMilli())}})
	}
	const maxSize = 4096
	tests := []struct {
		name      string
		request   func(tb testing.TB) *http.Request
		status    int
		bodyWants string
	}{
		{
			name:      "missing tenant",
			request:   func(tb testing.TB) *http.Request { return newPushRequest(tb, "", valid(tb)) },
			status:    http.StatusUnauthorized,
			bodyWants: "X-Scope-OrgID",
		},
		{
			name:    "invalid tenant",
			request: func(tb testing.TB) *http.Request { return newPushRequest(tb, "..", valid(tb)) },
			status:  http.StatusBadRequest,
		},
		{
			name: "GET",
			request: func(tb testing.TB) *http.Request {
				r := newPushRequest(tb, tenantA, nil)
				r.Method = http.MethodGet
				return r
			},
			status:    http.StatusMethodNotAllowed,
			bodyWants: "remote write requires POST",
		},
		{
			name: "body not snappy",
			request: func(tb testing.TB) *http.Request {
				return newPushRequest(tb, tenantA, []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
			},
			status:    http.StatusBadRequest,
			bodyWants: "body is not valid snappy",
		},
		{
			name: "snappy body truncated",
			request: func(tb testing.TB) *http.Request {
				body := valid(tb)
				return newPushRequest(tb, tenantA, body[:len(body)-3])
			},
			status:    http.StatusBadRequest,
			bodyWants: "body is not valid snappy",
		},
		{
			name: "snappy but not a WriteRequest",
			request: func(tb testing.TB) *http.Request {
				return newPushRequest(tb, tenantA, snappy.Encode(nil, []byte("\x0a\xff\xff\xff\xff\x0fhello")))
			},
			status:    http.StatusBadRequest,
			bodyWants: "body is not a remote write 1.0 WriteRequest",
		},
		{
			name: "empty body",
			request: func(tb testing.TB) *http.Request {
				return newPushRequest(tb, tenantA, nil)
			},
			status:    http.StatusBadRequest,
			bodyWants: "body is not valid snappy",
		},
		{
			name: "gzip content encoding",
			request: func(tb testing.TB) *http.Request {
				r := newPushRequest(tb, tenantA, valid(tb))
				r.Header.Set("Content-Encoding", "gzip")
				return r
			},
			status:    http.StatusUnsupportedMediaType,
			bodyWants: `unsupported Content-Encoding "gzip"`,
		},
		{
			name: "unknown remote write message",
			request: func(tb testing.TB) *http.Request {
				r := newPushRequest(tb, tenantA, valid(tb))
				r.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v3.Request")
				return r
			},
			status:    http.StatusUnsupportedMediaType,
			bodyWants: `unsupported remote write message "io.prometheus.write.v3.Request"`,
		},
		{
			name: "not protobuf",
			request: func(tb testing.TB) *http.Request {
				r := newPushRequest(tb, tenantA, valid(tb))
				r.Header.Set("Content-Type", "application/json")
				return r
			},
			status:    http.StatusUnsupportedMediaType,
			bodyWants: `unsupported Content-Type "application/json"`,
		},
		{
			name: "malformed content type",
			request: func(tb testing.TB) *http.Request {
				r := newPushRequest(tb, tenantA, valid(tb))
				r.Header.Set("Content-Type", "application/x-protobuf;proto")
				return r
			},
			status:    http.StatusUnsupportedMediaType,
			bodyWants: "unsupported Content-Type",
		},
		{
			name: "remote write 2.0 that is not protobuf",
			request: func(tb testing.TB) *http.Request {
				r := newPushRequest(tb, tenantA, snappy.Encode(nil, []byte{0xff, 0xff, 0xff}))
				r.Header.Set("Content-Type", contentTypeV2)
				return r
			},
			status:    http.StatusBadRequest,
			bodyWants: "body is not a remote write 2.0 Request",
		},
		{
			name: "compressed body over the limit",
			request: func(tb testing.TB) *http.Request {
				return newPushRequest(tb, tenantA, make([]byte, maxSize+1))
			},
			status:    http.StatusRequestEntityTooLarge,
			bodyWants: "request body is 4097 bytes, limit is 4096 (-distributor.max-recv-msg-size)",
		},
		{
			name: "chunked compressed body over the limit",
			request: func(tb testing.TB) *http.Request {
				r := newPushRequest(tb, tenantA, make([]byte, maxSize+1))
				r.ContentLength = -1 // unknown length: the limit is enforced while reading
				return r
			},
			status:    http.StatusRequestEntityTooLarge,
			bodyWants: "request body is larger than the limit of 4096 bytes (-distributor.max-recv-msg-size)",
		},
		{
			name: "decompressed body over the limit",
			request: func(tb testing.TB) *http.Request {
				body := snappy.Encode(nil, make([]byte, maxSize+1)) // zeros compress to a few bytes
				require.Less(tb, len(body), maxSize)
				return newPushRequest(tb, tenantA, body)
			},
			status:    http.StatusRequestEntityTooLarge,
			bodyWants: "decompressed body would be 4097 bytes, limit is 4096",
		},
		{
			name: "snappy bomb header",
			request: func(tb testing.TB) *http.Request {
				return newPushRequest(tb, tenantA, snappyBomb(1<<30))
			},
			status:    http.StatusRequestEntityTooLarge,
			bodyWants: "decompressed body would be 1073741824 bytes",
		},
		{
			name: "snappy header announcing more than snappy allows",
			request: func(tb testing.TB) *http.Request {
				return newPushRequest(tb, tenantA, snappyBomb(1<<40))
			},
			status:    http.StatusRequestEntityTooLarge,
			bodyWants: "limit is 4096 (-distributor.max-recv-msg-size)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, withMaxRecvMsgSize(maxSize))
			resp := env.do(tt.request(t))
			require.Equal(t, tt.status, resp.Code, resp.Body.String())
			require.Contains(t, resp.Body.String(), tt.bodyWants)
			require.Zero(t, env.ingesters[0].pushes, "nothing reaches the ingesters")
		})
	}
}

func TestServeHTTP_AcceptsSnappyWithoutContentEncodingHeader(t *testing.T) {
	env := newTestEnv(t)
	r := newPushRequest(t, tenantA, encodeRequest(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(validSeries, testNow.UnixMilli())}}))
	r.Header.Del("Content-Encoding")
	resp := env.do(r)
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	require.Len(t, env.ingesters[0].seriesOf(tenantA), 1)
}

func TestPush_ReplicatesEachSeriesToEveryReplica(t *testing.T) {
	env := newTestEnv(t, withReplication(3, 3))
	req := &prompb.WriteRequest{}
	for i := range 20 {
		req.Timeseries = append(req.Timeseries, series(lbls("__name__", "up", "n", itoa(int64(i))), testNow.UnixMilli()))
	}
	resp := env.push(t, tenantA, req)
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())

	// DoBatch returns at quorum, so the third replica's write may land just after the response.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, ing := range env.ingesters {
			assert.Len(c, ing.seriesOf(tenantA), 20)
		}
	}, 5*time.Second, time.Millisecond)
}

func TestPush_SpreadsSeriesOverIngesters(t *testing.T) {
	env := newTestEnv(t, withReplication(3, 1))
	req := &prompb.WriteRequest{}
	for i := range 300 {
		req.Timeseries = append(req.Timeseries, series(lbls("__name__", "up", "n", itoa(int64(i))), testNow.UnixMilli()))
	}
	resp := env.push(t, tenantA, req)
	require.Equal(t, http.StatusNoContent, resp.Code, resp.Body.String())
	total := 0
	for _, ing := range env.ingesters {
		n := len(ing.seriesOf(tenantA))
		require.NotZero(t, n, "every ingester owns some series")
		total += n
	}
	require.Equal(t, 300, total, "each series goes to exactly one ingester")
}

func TestPush_QuorumOfReplicas(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "ingester is shutting down")
	tests := []struct {
		name      string
		failures  []error // per ingester; nil succeeds
		status    int
		bodyWants string
	}{
		{name: "all replicas succeed", failures: []error{nil, nil, nil}, status: http.StatusNoContent},
		{name: "one replica unavailable", failures: []error{unavailable, nil, nil}, status: http.StatusNoContent},
		{
			name:      "two replicas unavailable",
			failures:  []error{unavailable, unavailable, nil},
			status:    http.StatusInternalServerError,
			bodyWants: "ingester is shutting down",
		},
		{
			name:      "every replica unavailable",
			failures:  []error{unavailable, unavailable, unavailable},
			status:    http.StatusInternalServerError,
			bodyWants: "quorum not reached",
		},
		{
			name: "every replica rejects the samples",
			failures: []error{
				status.Error(codes.InvalidArgument, "1 samples rejected: out of order sample"),
				status.Error(codes.InvalidArgument, "1 samples rejected: out of order sample"),
				status.Error(codes.InvalidArgument, "1 samples rejected: out of order sample"),
			},
			status:    http.StatusBadRequest,
			bodyWants: "1 samples rejected: out of order sample\n",
		},
		{
			name: "two replicas reject, one is unavailable",
			failures: []error{
				unavailable,
				status.Error(codes.InvalidArgument, "out of bounds"),
				status.Error(codes.InvalidArgument, "out of bounds"),
			},
			status:    http.StatusBadRequest,
			bodyWants: "out of bounds",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, withReplication(3, 3))
			for i, err := range tt.failures {
				env.ingesters[i].failWith(err)
			}
			resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(validSeries, testNow.UnixMilli())}})
			require.Equal(t, tt.status, resp.Code, resp.Body.String())
			require.Contains(t, resp.Body.String(), tt.bodyWants)
			if tt.status == http.StatusBadRequest {
				// The ingester's message is passed through, without the gRPC wrapping.
				require.NotContains(t, resp.Body.String(), "rpc error")
				require.NotContains(t, resp.Body.String(), "push to ingester")
			}
		})
	}
}

func TestPush_SlowIngesterTimesOut(t *testing.T) {
	env := newTestEnv(t, withRemoteTimeout(20*time.Millisecond))
	env.ingesters[0].block = true
	resp := env.push(t, tenantA, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(validSeries, testNow.UnixMilli())}})
	require.Equal(t, http.StatusInternalServerError, resp.Code)
	require.Contains(t, resp.Body.String(), "context deadline exceeded")
}

func TestPush_SendsTheTenantToIngesters(t *testing.T) {
	env := newTestEnv(t)
	req := func() *prompb.WriteRequest {
		return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(validSeries, testNow.UnixMilli())}}
	}
	require.Equal(t, http.StatusNoContent, env.push(t, "team-a", req()).Code)
	require.Equal(t, http.StatusNoContent, env.push(t, "team-b", req()).Code)
	require.Len(t, env.ingesters[0].seriesOf("team-a"), 1)
	require.Len(t, env.ingesters[0].seriesOf("team-b"), 1)
	require.Empty(t, env.ingesters[0].seriesOf("team-c"))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPushMethod_ValidatesAndWritesUnderTheContextsTenantWithinItsLimits(t *testing.T) {
	env := newTestEnv(t, withLimits(func(l *validation.Limits) { l.RequestRate, l.RequestBurstSize = 1, 2 }))
	ctx := tenant.NewContext(context.Background(), "rules-tenant")
	now := testNow.UnixMilli()

	err := env.d.Push(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "job:up:sum", "job", "db"), now),
		series(lbls("job", "no-name"), now),
	}})
	require.Equal(t, http.StatusBadRequest, statusOf(err), "the invalid series is refused as a remote write's would be: %v", err)
	require.Len(t, env.ingesters[0].seriesOf("rules-tenant"), 1, "the valid one is written under the tenant")

	require.NoError(t, env.d.Push(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(validSeries, now)}}))
	err = env.d.Push(ctx, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(validSeries, now)}})
	require.Equal(t, http.StatusTooManyRequests, statusOf(err), "the tenant's request rate holds: %v", err)

	require.Equal(t, http.StatusUnauthorized, statusOf(env.d.Push(context.Background(), &prompb.WriteRequest{})))
}
