package ingester

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// withExemplars adds exemplars carrying trace_id=<trace> at the given timestamps, valued ts/1000.
func withExemplars(ts prompb.TimeSeries, trace string, timestamps ...int64) prompb.TimeSeries {
	for _, t := range timestamps {
		ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{
			Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprintf("%s-%d", trace, t)}}, Value: float64(t) / 1000, Timestamp: t,
		})
	}
	return ts
}

// renderExemplars renders an answer as series → "trace_id value@ts" lines, failing on a series sent twice
// unless it continues the previous message's last series.
func renderExemplars(t *testing.T, msgs []*ingesterpb.ExemplarQueryResponse) (map[string][]string, []string) {
	t.Helper()
	out := map[string][]string{}
	var order []string
	for _, msg := range msgs {
		for _, s := range msg.Series {
			key := renderLabels(s.Labels)
			if len(order) == 0 || order[len(order)-1] != key {
				require.NotContains(t, out, key, "a series is sent in one run of messages")
				order = append(order, key)
			}
			for _, e := range s.Exemplars {
				out[key] = append(out[key], fmt.Sprintf("%s %g@%d", renderLabels(e.Labels), e.Value, e.TimestampMs))
			}
		}
	}
	return out, order
}

func matcherSets(sets ...[]*seriespb.LabelMatcher) []*seriespb.LabelMatchers {
	out := make([]*seriespb.LabelMatchers, 0, len(sets))
	for _, s := range sets {
		out = append(out, &seriespb.LabelMatchers{Matchers: s})
	}
	return out
}

var allMetrics = []*seriespb.LabelMatcher{{Type: seriespb.MatchType_REGEX_MATCH, Name: "__name__", Value: ".+"}}

// Exemplars pushed with the samples come back by QueryExemplars over gRPC, in series order, within the
// range and for the matcher sets asked, and only to their own tenant.
func TestQueryExemplars_AnswersPushedExemplarsOfTheTenant(t *testing.T) {
	limits := defaultLimits(t)
	limits.MaxGlobalExemplarsPerUser = 1000
	ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
	client := serveGRPC(t, ing.Ingester)
	now := time.Now().UnixMilli()

	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{
		withExemplars(floatSeries(lbls("__name__", "requests_total", "job", "api"), sample{t: now, v: 1}), "a", now-2000, now-1000, now),
		withExemplars(floatSeries(lbls("__name__", "latency_bucket", "le", "0.5"), sample{t: now, v: 2}), "b", now),
		floatSeries(lbls("__name__", "up"), sample{t: now, v: 1}),
	}))
	require.NoError(t, ing.push(t, tenantB, []prompb.TimeSeries{
		withExemplars(floatSeries(lbls("__name__", "requests_total", "job", "api"), sample{t: now, v: 1}), "other", now),
	}))

	query := func(tenantID string, start, end int64, sets ...[]*seriespb.LabelMatcher) (map[string][]string, []string, error) {
		msgs, err := recvAll(client.QueryExemplars(tenantCtx(tenantID), &ingesterpb.ExemplarQueryRequest{StartMs: start, EndMs: end, MatcherSets: matcherSets(sets...)}))
		if err != nil {
			return nil, nil, err
		}
		got, order := renderExemplars(t, msgs)
		return got, order, nil
	}

	got, order, err := query(tenantA, now-3600_000, now+3600_000, allMetrics)
	require.NoError(t, err)
	require.Equal(t, []string{`{__name__="latency_bucket", le="0.5"}`, `{__name__="requests_total", job="api"}`}, order, "label order; up has no exemplars")
	require.Equal(t, []string{
		fmt.Sprintf(`{trace_id="a-%d"} %g@%d`, now-2000, float64(now-2000)/1000, now-2000),
		fmt.Sprintf(`{trace_id="a-%d"} %g@%d`, now-1000, float64(now-1000)/1000, now-1000),
		fmt.Sprintf(`{trace_id="a-%d"} %g@%d`, now, float64(now)/1000, now),
	}, got[`{__name__="requests_total", job="api"}`], "oldest first")

	// The range cuts exemplars, not series; matcher sets are a union.
	got, _, err = query(tenantA, now-1500, now-500, allMetrics)
	require.NoError(t, err)
	require.Equal(t, map[string][]string{`{__name__="requests_total", job="api"}`: {fmt.Sprintf(`{trace_id="a-%d"} %g@%d`, now-1000, float64(now-1000)/1000, now-1000)}}, got)
	got, order, err = query(tenantA, now, now, []*seriespb.LabelMatcher{equal("job", "api")}, []*seriespb.LabelMatcher{equal("le", "0.5")}, []*seriespb.LabelMatcher{equal("job", "none")})
	require.NoError(t, err)
	require.Len(t, order, 2)
	require.Len(t, got[`{__name__="latency_bucket", le="0.5"}`], 1)

	// Tenants are isolated; a tenant with no data here answers nothing.
	got, _, err = query(tenantB, now-3600_000, now+3600_000, allMetrics)
	require.NoError(t, err)
	require.Equal(t, map[string][]string{`{__name__="requests_total", job="api"}`: {fmt.Sprintf(`{trace_id="other-%d"} %g@%d`, now, float64(now)/1000, now)}}, got)
	got, _, err = query("nobody", now-3600_000, now+3600_000, allMetrics)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestQueryExemplars_RefusesBadRequests(t *testing.T) {
	limits := defaultLimits(t)
	limits.MaxGlobalExemplarsPerUser = 1000
	ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
	client := serveGRPC(t, ing.Ingester)
	now := time.Now().UnixMilli()
	var series []prompb.TimeSeries
	for k := range 5 {
		series = append(series, withExemplars(floatSeries(lbls("__name__", "m", "k", fmt.Sprint(k)), sample{t: now, v: 1}), "t", now))
	}
	require.NoError(t, ing.push(t, tenantA, series))

	for _, tc := range []struct {
		name string
		ctx  func() (*ingesterpb.ExemplarQueryRequest, string)
		code codes.Code
		has  string
	}{
		{name: "no tenant", code: codes.Unauthenticated, ctx: func() (*ingesterpb.ExemplarQueryRequest, string) {
			return &ingesterpb.ExemplarQueryRequest{MatcherSets: matcherSets(allMetrics)}, ""
		}},
		{name: "bad regexp", code: codes.InvalidArgument, has: "invalid matcher", ctx: func() (*ingesterpb.ExemplarQueryRequest, string) {
			return &ingesterpb.ExemplarQueryRequest{MatcherSets: matcherSets([]*seriespb.LabelMatcher{{Type: seriespb.MatchType_REGEX_MATCH, Name: "a", Value: "("}})}, tenantA
		}},
		{name: "empty matcher set", code: codes.InvalidArgument, has: "no matchers", ctx: func() (*ingesterpb.ExemplarQueryRequest, string) {
			return &ingesterpb.ExemplarQueryRequest{MatcherSets: matcherSets(nil)}, tenantA
		}},
		{name: "too many matcher sets", code: codes.InvalidArgument, has: "101 matcher sets", ctx: func() (*ingesterpb.ExemplarQueryRequest, string) {
			sets := make([][]*seriespb.LabelMatcher, seriespb.MaxExemplarMatcherSets+1)
			for k := range sets {
				sets[k] = allMetrics
			}
			return &ingesterpb.ExemplarQueryRequest{MatcherSets: matcherSets(sets...)}, tenantA
		}},
		{name: "over the series limit", code: codes.ResourceExhausted, has: "max_fetched_series_per_query", ctx: func() (*ingesterpb.ExemplarQueryRequest, string) {
			return &ingesterpb.ExemplarQueryRequest{StartMs: everything, EndMs: forever, MatcherSets: matcherSets(allMetrics), Limits: &seriespb.FetchLimits{MaxSeries: 4}}, tenantA
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, tenantID := tc.ctx()
			ctx := t.Context()
			if tenantID != "" {
				ctx = tenantCtx(tenantID)
			}
			_, err := recvAll(client.QueryExemplars(ctx, req))
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			require.ErrorContains(t, err, tc.has)
			if tc.code == codes.ResourceExhausted {
				_, ok := seriespb.LimitErrorOf(err)
				require.True(t, ok, "the querier must recognise the tenant's limit")
			}
		})
	}
	// At the limit, the answer is whole.
	msgs, err := recvAll(client.QueryExemplars(tenantCtx(tenantA), &ingesterpb.ExemplarQueryRequest{StartMs: everything, EndMs: forever, MatcherSets: matcherSets(allMetrics), Limits: &seriespb.FetchLimits{MaxSeries: 5}}))
	require.NoError(t, err)
	_, order := renderExemplars(t, msgs)
	require.Len(t, order, 5)
}

// A series whose exemplars outgrow one message continues in the next: no message nears gRPC's 4 MiB
// limit however the tenant's buffer is spread.
func TestQueryExemplars_SplitsLargeSeriesAcrossMessages(t *testing.T) {
	limits := defaultLimits(t)
	limits.MaxGlobalExemplarsPerUser = 25_000
	ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
	client := serveGRPC(t, ing.Ingester)
	now := time.Now().UnixMilli()
	const n = 20_000
	trace := strings.Repeat("x", 80) // 20,000 exemplars of about 110 bytes: about 2.2 MB
	timestamps := make([]int64, n)
	for k := range timestamps {
		timestamps[k] = now - n + int64(k)
	}
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{
		withExemplars(floatSeries(lbls("__name__", "big"), sample{t: now, v: 1}), trace, timestamps...),
		withExemplars(floatSeries(lbls("__name__", "small"), sample{t: now, v: 1}), "s", now),
	}))
	msgs, err := recvAll(client.QueryExemplars(tenantCtx(tenantA), &ingesterpb.ExemplarQueryRequest{StartMs: everything, EndMs: forever, MatcherSets: matcherSets(allMetrics)}))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(msgs), 3)
	got, order := renderExemplars(t, msgs)
	require.Equal(t, []string{`{__name__="big"}`, `{__name__="small"}`}, order)
	require.Equal(t, n, len(got[`{__name__="big"}`]))
	require.Len(t, got[`{__name__="small"}`], 1)
}
