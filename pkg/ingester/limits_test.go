package ingester

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/validation"
)

func nSeries(metric string, n int, ts int64) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, n)
	for k := range out {
		out[k] = floatSeries(lbls("__name__", metric, "n", fmt.Sprint(k)), sample{t: ts, v: 1})
	}
	return out
}

func TestSeriesLimits_RefuseNewSeriesOnlyAndOnlyForThatTenant(t *testing.T) {
	limits := defaultLimits(t)
	limits.MaxGlobalSeriesPerUser = 4
	limits.MaxGlobalSeriesPerMetric = 3
	ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
	now := time.Now().UnixMilli()

	// Five series of one metric: three fit the per-metric limit.
	err := ing.push(t, tenantA, nSeries("a", 5, now))
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "err-strata-max-global-series-per-metric")
	require.ErrorContains(t, err, "-ingester.max-global-series-per-metric")
	require.Equal(t, 2.0, testutil.ToFloat64(ing.discarded.WithLabelValues(validation.ReasonMaxGlobalSeriesPerMetric, tenantA)))
	// Another metric: one more series fits the tenant's limit of four.
	err = ing.push(t, tenantA, nSeries("b", 2, now))
	require.ErrorContains(t, err, "err-strata-max-global-series-per-user")
	require.Equal(t, 1.0, testutil.ToFloat64(ing.discarded.WithLabelValues(validation.ReasonMaxGlobalSeriesPerUser, tenantA)))
	require.Len(t, ing.queryStream(t, tenantA, now-1000, now+1000), 4)

	// Existing series keep being written; other tenants have their own limit.
	require.NoError(t, ing.push(t, tenantA, append(nSeries("a", 3, now+1000), nSeries("b", 1, now+1000)...)))
	require.NoError(t, ing.push(t, tenantB, nSeries("a", 3, now)))

	// Raised live, the limit lets new series in.
	limits.MaxGlobalSeriesPerUser = 10
	limits.MaxGlobalSeriesPerMetric = 10
	ing.limits = validation.NewOverrides(limits, nil)
	require.NoError(t, ing.push(t, tenantA, nSeries("a", 5, now+2000)))
}

func TestSeriesLimits_ARestartKeepsEverySeriesItAcknowledged(t *testing.T) {
	dir := t.TempDir()
	limits := defaultLimits(t)
	ing := startIngesterWith(t, testConfig(dir), nil, limits)
	now := time.Now().UnixMilli()
	require.NoError(t, ing.push(t, tenantA, nSeries("a", 10, now)))
	require.NoError(t, ing.Stop(context.Background()))

	// Restarted with a limit below what the WAL holds: the replay brings back all ten; new series wait.
	limits.MaxGlobalSeriesPerUser = 5
	ing = startIngesterWith(t, testConfig(dir), nil, limits)
	require.Len(t, ing.queryStream(t, tenantA, now-1000, now+1000), 10)
	require.ErrorContains(t, ing.push(t, tenantA, nSeries("new", 1, now)), "err-strata-max-global-series-per-user")
	require.NoError(t, ing.push(t, tenantA, nSeries("a", 10, now+1000)))
}

func TestLocalLimit_SharesTheGlobalLimitOutOverTheRing(t *testing.T) {
	require.Equal(t, 150_000, validation.LocalLimit(150_000, 3, 3), "each of 3 ingesters holds every series")
	require.Equal(t, 45_000, validation.LocalLimit(150_000, 3, 10))
	require.Equal(t, 15_000, validation.LocalLimit(150_000, 1, 10))
	require.Equal(t, 0, validation.LocalLimit(0, 3, 10), "no limit stays no limit")
	require.Equal(t, 1, validation.LocalLimit(1, 1, 10), "never below one series")
	require.Equal(t, 100, validation.LocalLimit(100, 3, 0), "no ring: the whole limit")
}

func TestInstanceLimits_MaxTenantsAndSeriesAnswerUnavailable(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.InstanceLimits.MaxTenants = 2
	cfg.InstanceLimits.MaxSeries = 5
	ing := startIngester(t, cfg)
	now := time.Now().UnixMilli()
	require.NoError(t, ing.push(t, "t1", nSeries("a", 2, now)))
	require.NoError(t, ing.push(t, "t2", nSeries("a", 2, now)))
	err := ing.push(t, "t3", nSeries("a", 1, now))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "err-strata-ingester-max-tenants")

	err = ing.push(t, "t1", nSeries("b", 2, now))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "err-strata-ingester-max-series")
	require.Len(t, ing.queryStream(t, "t1", now-1000, now+1000), 2, "the refused request is rolled back whole, to be retried")
	require.NoError(t, ing.push(t, "t1", nSeries("b", 1, now)), "one more series fits")
}

func TestInstanceLimits_IngestionRateAndInflightPushes(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.InstanceLimits.MaxIngestionRate = 10
	ing := startIngester(t, cfg)
	err := ing.push(t, tenantA, nSeries("a", 100, time.Now().UnixMilli()))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "err-strata-ingester-max-ingestion-rate")

	il := newInstanceLimiter(InstanceLimits{MaxInflightPushRequests: 1})
	require.NoError(t, il.startPush())
	require.ErrorContains(t, il.startPush(), "err-strata-ingester-max-inflight-push-requests")
	il.endPush()
	require.NoError(t, il.startPush())
	il.endPush()
}

func TestInstanceLimits_MaxTenantsFollowsTheOpenFilesLimit(t *testing.T) {
	l := InstanceLimits{}
	derived := l.effectiveMaxTenants()
	require.Positive(t, derived, "descriptors are limited here, so tenants are")
	l.MaxTenants = -1
	require.Zero(t, l.effectiveMaxTenants())
	l.MaxTenants = 7
	require.Equal(t, 7, l.effectiveMaxTenants())
}

// Defect 7 of issue 12: after a flood of tenants exhausted the descriptors, the restart failed on one
// tenant's TSDB and nobody could write or read. A tenant that cannot open no longer blocks the others.
func TestStart_ATenantThatCannotOpenDoesNotBlockTheOthers(t *testing.T) {
	dir := t.TempDir()
	ing := startIngester(t, testConfig(dir))
	now := time.Now().UnixMilli()
	require.NoError(t, ing.push(t, tenantA, nSeries("a", 1, now)))
	require.NoError(t, ing.push(t, tenantB, nSeries("b", 1, now)))
	require.NoError(t, ing.Stop(context.Background()))

	// tenantB's WAL directory replaced by a file: its TSDB cannot open.
	wal := filepath.Join(dir, tenantB, "wal")
	require.NoError(t, os.RemoveAll(wal))
	require.NoError(t, os.WriteFile(wal, []byte("not a directory"), 0o600))

	ing = startIngester(t, testConfig(dir))
	require.Equal(t, 1.0, testutil.ToFloat64(ing.metrics.tsdbOpenFailures))
	require.Len(t, ing.queryStream(t, tenantA, now-1000, now+1000), 1)
	require.NoError(t, ing.push(t, tenantA, nSeries("a", 1, now+1000)))
	require.NoError(t, ing.push(t, "new-tenant", nSeries("c", 1, now)))

	// tenantB fails with a 5xx (its data is on disk, not lost), on writes and on reads, and opens again
	// once repaired.
	err := ing.push(t, tenantB, nSeries("b", 1, now+1000))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	stream := &fakeQueryStream{ctx: tenantCtx(tenantB)}
	err = ing.QueryStream(&ingesterpb.QueryRequest{StartMs: now - 1000, EndMs: now + 1000, Matchers: []*seriespb.LabelMatcher{equal("__name__", "b")}}, stream)
	require.Error(t, err)
	require.NoError(t, os.Remove(wal))
	require.NoError(t, ing.push(t, tenantB, nSeries("b", 1, now+1000)))
}

// The out-of-order window and the exemplar buffer are per-tenant limits too: raised in the runtime
// configuration, they take effect on the tenant's open TSDB without a restart.
func TestTSDBLimits_ChangeLiveOnTheOpenTSDB(t *testing.T) {
	limits := defaultLimits(t)
	ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
	now := time.Now().UnixMilli()
	require.NoError(t, ing.push(t, tenantA, nSeries("a", 1, now)))
	late := nSeries("a", 1, now-10*60_000)
	err := ing.push(t, tenantA, late)
	require.ErrorContains(t, err, "err-strata-sample-out-of-order")

	series := nSeries("a", 1, now+1000)
	series[0].Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: now + 1000}}
	require.NoError(t, ing.push(t, tenantA, series))
	require.Empty(t, exemplarsOf(t, ing, tenantA, now))

	limits.OutOfOrderTimeWindow = model.Duration(time.Hour)
	limits.MaxGlobalExemplarsPerUser = 100
	ing.limits = validation.NewOverrides(limits, nil)
	require.NoError(t, ing.push(t, tenantA, late), "within the raised window")
	series[0].Samples[0].Timestamp, series[0].Exemplars[0].Timestamp = now+2000, now+2000
	require.NoError(t, ing.push(t, tenantA, series))
	require.Len(t, exemplarsOf(t, ing, tenantA, now), 1)
	require.Equal(t, []sample{{t: now - 10*60_000, v: 1}, {t: now, v: 1}, {t: now + 1000, v: 1}, {t: now + 2000, v: 1}},
		ing.queryStream(t, tenantA, now-3600_000, now+3600_000)[`{__name__="a", n="0"}`])
}

// exemplarsOf returns the tenant's exemplars around now.
func exemplarsOf(t *testing.T, ing *testIngester, tenantID string, now int64) []exemplar.Exemplar {
	t.Helper()
	q, err := ing.tenantDB(tenantID).db.ExemplarQuerier(context.Background())
	require.NoError(t, err)
	res, err := q.Select(now-3600_000, now+3600_000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")})
	require.NoError(t, err)
	var out []exemplar.Exemplar
	for _, r := range res {
		out = append(out, r.Exemplars...)
	}
	return out
}
