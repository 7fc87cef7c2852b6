package querier

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// startRealIngesters starts n ingesters, each served over gRPC on 127.0.0.1 with the tenant interceptors,
// each holding every series of series (replicas), and returns a queryable over them.
func startRealIngesters(t *testing.T, n int, series []prompb.TimeSeries) *IngesterQueryable {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	require.NoError(t, err)
	clients := mapClients{}
	set := ring.ReplicationSet{MaxErrors: 0}
	for i := range n {
		reg := prometheus.NewRegistry()
		ing, err := ingester.New(ingester.Config{TSDBDir: t.TempDir(), BlockRangesPeriod: 2 * time.Hour, MetadataRetainPeriod: time.Minute},
			validation.NewOverrides(validation.DefaultLimits(), nil), nil, nil, nil, validation.NewDiscardedSamples(reg), reg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NoError(t, ing.Start(context.Background()))
		t.Cleanup(func() { _ = ing.Stop(context.Background()) })
		_, err = ing.Push(tenant.NewContext(context.Background(), "team-a"), &ingesterpb.PushRequest{WriteRequest: raw})
		require.NoError(t, err)

		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer(grpc.UnaryInterceptor(tenant.UnaryServerInterceptor), grpc.StreamInterceptor(tenant.StreamServerInterceptor))
		ingesterpb.RegisterIngesterServer(srv, ing)
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor), grpc.WithStreamInterceptor(tenant.StreamClientInterceptor))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		clients[lis.Addr().String()] = ingesterpb.NewIngesterClient(conn)
		set.Instances = append(set.Instances, ring.InstanceDesc{ID: fmt.Sprintf("ingester-%d", i), Addr: lis.Addr().String(), State: ring.ACTIVE})
	}
	return NewIngesterQueryable(fakeRing{set: set}, clients)
}

type mapClients map[string]ingesterpb.IngesterClient

func (m mapClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) { return m[addr], nil }

// The querier passes the shard selector through to the ingesters untouched, and its answer (merged
// across replicas, counted against the fetch limits) is the shard's series only: a PromQL query with the
// selector reads exactly the series whose hash falls in the shard.
func TestQuery_ShardSelectorReadsTheShardsSeriesOnly(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var series []prompb.TimeSeries
	var lsets []labels.Labels
	for i := range 60 {
		ls := labels.FromStrings("__name__", "up", "instance", fmt.Sprintf("host-%02d", i))
		lsets = append(lsets, ls)
		series = append(series, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: ls.Get("instance")}},
			Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: float64(i)}},
		})
	}
	const n = 4
	inShard := func(i uint64) []string {
		var out []string
		for _, ls := range lsets {
			if labels.StableHash(ls)%n == i-1 {
				out = append(out, ls.Get("instance"))
			}
		}
		return out
	}
	largestShard := 0
	for i := uint64(1); i <= n; i++ {
		largestShard = max(largestShard, len(inShard(i)))
	}
	// A series limit that every shard is under and the whole query is over.
	limits := validation.DefaultLimits()
	limits.MaxFetchedSeriesPerQuery = largestShard
	queryable := NewFetchLimitedQueryable(startRealIngesters(t, 2, series), validation.NewOverrides(limits, nil), 0)
	engine := NewEngine(Config{MaxSamples: 1e6, Timeout: time.Minute, MaxConcurrent: 2, LookbackDelta: 5 * time.Minute, DefaultEvaluationInterval: time.Minute}, nil, slog.New(slog.DiscardHandler))
	ctx := tenant.NewContext(context.Background(), "team-a")

	instant := func(q string) (promql.Vector, error) {
		qry, err := engine.NewInstantQuery(ctx, queryable, nil, q, now)
		require.NoError(t, err)
		defer qry.Close()
		res := qry.Exec(ctx)
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Vector()
	}
	_, err := instant(`up`)
	require.ErrorContains(t, err, "max_fetched_series_per_query", "unsharded, the query is over the limit")

	var union []string
	for i := uint64(1); i <= n; i++ {
		vec, err := instant(fmt.Sprintf(`up{%s="%d_of_%d"}`, querysharding.Label, i, n))
		require.NoError(t, err)
		var got []string
		for _, s := range vec {
			require.Equal(t, "up", s.Metric.Get("__name__"))
			require.False(t, s.Metric.Has(querysharding.Label), "no series carries the shard label")
			got = append(got, s.Metric.Get("instance"))
		}
		slices.Sort(got)
		require.Equal(t, inShard(i), got, "shard %d of %d, each series once across the replicas", i, n)
		union = append(union, got...)
	}
	require.Len(t, union, len(lsets))

	t.Run("label values and series of a shard", func(t *testing.T) {
		q, err := queryable.Querier(now.Add(-time.Hour).UnixMilli(), now.UnixMilli())
		require.NoError(t, err)
		defer q.Close()
		shard := querysharding.Shard{Index: 2, Count: n}.Matcher()
		values, _, err := q.LabelValues(ctx, "instance", nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"), shard)
		require.NoError(t, err)
		require.Equal(t, inShard(2), values)

		set := q.Select(ctx, true, &storage.SelectHints{Start: now.Add(-time.Hour).UnixMilli(), End: now.UnixMilli(), Func: "series"}, shard)
		var got []string
		for set.Next() {
			got = append(got, set.At().Labels().Get("instance"))
		}
		require.NoError(t, set.Err())
		require.Equal(t, inShard(2), got)
	})
}
