package ingester

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

func meta(family string, typ prompb.MetricMetadata_MetricType, help string) prompb.MetricMetadata {
	return prompb.MetricMetadata{MetricFamilyName: family, Type: typ, Help: help}
}

func TestMetricsMetadata_RetainsDeduplicatesAndLimits(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxMetadataPerMetric = 2
	ing := startIngester(t, cfg)
	// Sent twice, as Prometheus resends metadata periodically, plus a help text that changed and one more
	// variant beyond the per-metric limit.
	for range 2 {
		require.NoError(t, ing.push(t, tenantA, nil,
			meta("up", prompb.MetricMetadata_GAUGE, "Whether the target is up."),
			meta("requests_total", prompb.MetricMetadata_COUNTER, "Requests."),
			meta("latency_seconds", prompb.MetricMetadata_HISTOGRAM, "Latency."),
		))
	}
	// Metadata without a family name is refused, as the distributor refuses it; the rest is kept.
	err := ing.push(t, tenantA, nil,
		meta("requests_total", prompb.MetricMetadata_COUNTER, "Requests served."),
		meta("requests_total", prompb.MetricMetadata_COUNTER, "Requests received."),
		meta("", prompb.MetricMetadata_COUNTER, "no family"),
	)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.ErrorContains(t, err, "err-strata-metadata-missing-metric-name")

	all := []*ingesterpb.MetricMetadata{
		{MetricFamilyName: "latency_seconds", Type: "histogram", Help: "Latency."},
		{MetricFamilyName: "requests_total", Type: "counter", Help: "Requests served."}, // ' ' sorts before '.'
		{MetricFamilyName: "requests_total", Type: "counter", Help: "Requests."},
		{MetricFamilyName: "up", Type: "gauge", Help: "Whether the target is up."},
	}
	tests := []struct {
		name string
		req  *ingesterpb.MetricsMetadataRequest
		want []*ingesterpb.MetricMetadata
	}{
		{name: "everything", req: &ingesterpb.MetricsMetadataRequest{}, want: all},
		{name: "one metric", req: &ingesterpb.MetricsMetadataRequest{Metric: "requests_total"}, want: all[1:3]},
		{name: "unknown metric", req: &ingesterpb.MetricsMetadataRequest{Metric: "nope"}, want: nil},
		{name: "limit counts metrics", req: &ingesterpb.MetricsMetadataRequest{Limit: 2}, want: all[:3]},
		{name: "limit per metric", req: &ingesterpb.MetricsMetadataRequest{LimitPerMetric: 1}, want: []*ingesterpb.MetricMetadata{all[0], all[1], all[3]}},
		{name: "both limits", req: &ingesterpb.MetricsMetadataRequest{Limit: 2, LimitPerMetric: 1}, want: all[:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := ing.MetricsMetadata(tenantCtx(tenantA), tt.req)
			require.NoError(t, err)
			require.Len(t, resp.Metadata, len(tt.want))
			for i := range tt.want {
				require.Equal(t, tt.want[i].MetricFamilyName, resp.Metadata[i].MetricFamilyName)
				require.Equal(t, tt.want[i].Type, resp.Metadata[i].Type)
				require.Equal(t, tt.want[i].Help, resp.Metadata[i].Help)
				require.Equal(t, tt.want[i].Unit, resp.Metadata[i].Unit)
			}
		})
	}
}

// fakeClock is a settable clock for the metadata store.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestMetadataStore_ForgetsMetadataNotResentWithinTheRetainPeriod(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := newMetadataStore(10, 10*time.Minute)
	s.now = clock.Now

	s.add(meta("up", prompb.MetricMetadata_GAUGE, "Up."))
	s.add(meta("requests_total", prompb.MetricMetadata_COUNTER, "Requests."))
	clock.now = clock.now.Add(6 * time.Minute)
	s.add(meta("up", prompb.MetricMetadata_GAUGE, "Up.")) // resent: kept for another period
	clock.now = clock.now.Add(6 * time.Minute)

	got := s.list("", 0, 0)
	require.Len(t, got, 1)
	require.Equal(t, "up", got[0].MetricFamilyName)

	clock.now = clock.now.Add(11 * time.Minute)
	require.Empty(t, s.list("", 0, 0))
}

func TestMetadataStore_ExpiredEntriesDoNotCountAgainstTheLimit(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := newMetadataStore(1, 10*time.Minute)
	s.now = clock.Now

	s.add(meta("up", prompb.MetricMetadata_GAUGE, "Old help."))
	s.add(meta("up", prompb.MetricMetadata_GAUGE, "Second help.")) // over the limit of 1: dropped
	require.Equal(t, "Old help.", s.list("up", 0, 0)[0].Help)

	// The old help is no longer sent; once it expired, the new one takes its place even though nobody
	// listed the metadata in between.
	clock.now = clock.now.Add(11 * time.Minute)
	s.add(meta("up", prompb.MetricMetadata_GAUGE, "New help."))
	got := s.list("up", 0, 0)
	require.Len(t, got, 1)
	require.Equal(t, "New help.", got[0].Help)
}

func TestMetadataStore_IgnoresMetadataWithoutFamily(t *testing.T) {
	s := newMetadataStore(10, time.Minute)
	s.add(meta("", prompb.MetricMetadata_GAUGE, "Up."))
	require.Empty(t, s.list("", 0, 0))
}
