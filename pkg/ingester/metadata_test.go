package ingester

import (
	"fmt"
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
	limits := defaultLimits(t)
	limits.MaxGlobalMetadataPerMetric = 2
	ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
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
	s := newMetadataStore(10 * time.Minute)
	s.now = clock.Now

	require.NoError(t, s.add(meta("up", prompb.MetricMetadata_GAUGE, "Up."), 10, 10))
	require.NoError(t, s.add(meta("requests_total", prompb.MetricMetadata_COUNTER, "Requests."), 10, 10))
	clock.now = clock.now.Add(6 * time.Minute)
	require.NoError(t, s.add(meta("up", prompb.MetricMetadata_GAUGE, "Up."), 10, 10)) // resent: kept for another period
	clock.now = clock.now.Add(6 * time.Minute)

	got := s.list("", 0, 0)
	require.Len(t, got, 1)
	require.Equal(t, "up", got[0].MetricFamilyName)

	clock.now = clock.now.Add(11 * time.Minute)
	require.Empty(t, s.list("", 0, 0))
}

func TestMetadataStore_ExpiredEntriesDoNotCountAgainstTheLimit(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := newMetadataStore(10 * time.Minute)
	s.now = clock.Now

	require.NoError(t, s.add(meta("up", prompb.MetricMetadata_GAUGE, "Old help."), 10, 1))
	err := s.add(meta("up", prompb.MetricMetadata_GAUGE, "Second help."), 10, 1) // over the limit of 1
	require.ErrorContains(t, err, "err-strata-max-global-metadata-per-metric")
	require.Equal(t, "Old help.", s.list("up", 0, 0)[0].Help)

	// The old help is no longer sent; once it expired, the new one takes its place even though nobody
	// listed the metadata in between.
	clock.now = clock.now.Add(11 * time.Minute)
	require.NoError(t, s.add(meta("up", prompb.MetricMetadata_GAUGE, "New help."), 10, 1))
	got := s.list("up", 0, 0)
	require.Len(t, got, 1)
	require.Equal(t, "New help.", got[0].Help)
}

func TestMetadataStore_IgnoresMetadataWithoutFamily(t *testing.T) {
	s := newMetadataStore(time.Minute)
	require.NoError(t, s.add(meta("", prompb.MetricMetadata_GAUGE, "Up."), 10, 10))
	require.Empty(t, s.list("", 0, 0))
}

// Issue 12: 100k metric families of metadata took 540 MB with no cap. A tenant keeps at most its share
// of max_global_metadata_per_user families; families no longer sent make room again.
func TestMetadataStore_FamiliesPerTenantAreBounded(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := newMetadataStore(10 * time.Minute)
	s.now = clock.Now
	for i := range 3 {
		require.NoError(t, s.add(meta(fmt.Sprintf("m%d", i), prompb.MetricMetadata_GAUGE, "Help."), 3, 10))
	}
	err := s.add(meta("m3", prompb.MetricMetadata_GAUGE, "Help."), 3, 10)
	require.ErrorContains(t, err, "err-strata-max-global-metadata-per-user")
	require.ErrorContains(t, err, "-ingester.max-global-metadata-per-user")
	require.NoError(t, s.add(meta("m0", prompb.MetricMetadata_GAUGE, "New help."), 3, 10), "known families still take entries")
	clock.now = clock.now.Add(11 * time.Minute)
	require.NoError(t, s.add(meta("m3", prompb.MetricMetadata_GAUGE, "Help."), 3, 10))
}
