package ingester

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/validation"
)

// Defect 8 of issue 12: Ingester.Push on the gRPC port trusted its input. A client that bypassed the
// distributor stored series without a metric name, invalid UTF-8 and huge label sets, and one sample a
// year ahead made every later normal write of the tenant "out of bounds". The ingester now refuses what
// the distributor refuses, and the tenant's normal writes and reads are unaffected.
func TestPush_RefusesWhatTheDistributorWouldRefuse(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	now := time.Now().UnixMilli()
	manyLabels := []string{"__name__", "wide"}
	for n := range 500 {
		manyLabels = append(manyLabels, fmt.Sprintf("l%03d", n), strings.Repeat("v", 4096))
	}
	tests := []struct {
		name   string
		series prompb.TimeSeries
		reason string
	}{
		{"no metric name", floatSeries(lbls("job", "a"), sample{t: now, v: 1}), validation.ReasonMissingMetricName},
		{"invalid UTF-8", floatSeries(lbls("__name__", "up", "job", "a\xffb"), sample{t: now, v: 1}), validation.ReasonInvalidLabelValue},
		{"500 labels of 4 KB", floatSeries(manyLabels, sample{t: now, v: 1}), validation.ReasonMaxLabelNamesPerSeries},
		{"a year ahead", floatSeries(lbls("__name__", "up", "job", "future"), sample{t: now + 365*24*3600*1000, v: 1}), validation.ReasonTooFarInFuture},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ing.push(t, tenantA, []prompb.TimeSeries{tc.series})
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.ErrorContains(t, err, validation.ErrorID(tc.reason))
			require.Equal(t, 1.0, testutil.ToFloat64(ing.discarded.WithLabelValues(tc.reason, tenantA)))
		})
	}

	// The valid series of a request are stored beside a refused one.
	err := ing.push(t, tenantA, []prompb.TimeSeries{
		floatSeries(lbls("job", "nameless"), sample{t: now, v: 1}),
		floatSeries(lbls("__name__", "up", "job", "a"), sample{t: now, v: 1}),
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	// Later normal writes are in bounds, and reads see only the valid series.
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(lbls("__name__", "up", "job", "a"), sample{t: now + 1000, v: 2})}))
	got := ing.queryStream(t, tenantA, now-60_000, now+60_000)
	require.Equal(t, map[string][]sample{`{__name__="up", job="a"}`: {{t: now, v: 1}, {t: now + 1000, v: 2}}}, got)
}
