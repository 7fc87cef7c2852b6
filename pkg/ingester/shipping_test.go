package ingester

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"

	"github.com/strata-metrics/strata/pkg/storage/bucket/buckettest"
)

// shippedBlocks lists the blocks of a tenant that are complete (meta.json present) in the bucket.
func shippedBlocks(t *testing.T, bkt objstore.Bucket, tenantID string) []*blockstore.Meta {
	t.Helper()
	tb := bucket.NewTenantBucket(bkt, tenantID)
	var metas []*blockstore.Meta
	require.NoError(t, tb.Iter(context.Background(), "", func(name string) error {
		id, err := ulid.Parse(strings.TrimSuffix(name, "/"))
		if err != nil {
			return nil // markers, index
		}
		m, err := blockstore.DownloadMeta(context.Background(), tb, id)
		require.NoError(t, err)
		metas = append(metas, m)
		return nil
	}))
	return metas
}

func TestIngester_FlushShipsTheHeadAsABlock(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	cfg := testConfig(t.TempDir())
	cfg.InstanceID = "ingester-7"
	ing := startIngesterWithBucket(t, cfg, bkt)
	require.NoError(t, ing.push(t, "tenant-a", floatSeriesList(100)))

	require.NoError(t, ing.Flush(context.Background()))
	metas := shippedBlocks(t, bkt, "tenant-a")
	require.Len(t, metas, 1)
	require.Equal(t, "tenant-a", metas[0].Strata.TenantID)
	require.Equal(t, "ingester-7", metas[0].Strata.IngesterID)
	require.EqualValues(t, 100, metas[0].Stats.NumSamples)
	require.Zero(t, metas[0].Strata.Exemplars, "no exemplars, no exemplar file")
	require.Empty(t, shippedBlocks(t, bkt, "tenant-b"))

	// The flushed data is still served from the local block.
	require.Len(t, ing.queryStream(t, "tenant-a", baseTs, baseTs+time.Hour.Milliseconds()), 100)
	require.ErrorContains(t, ing.Flush(context.Background(), "nobody"), "no data")
}

func TestIngester_BucketOutageNeverFailsPushes(t *testing.T) {
	bkt := buckettest.NewErrorInjectedBucket(objstore.NewInMemBucket())
	ing := startIngesterWithBucket(t, testConfig(t.TempDir()), bkt)
	bkt.SetFailing(true)
	require.NoError(t, ing.push(t, "tenant-a", floatSeriesList(10)))
	require.Error(t, ing.Flush(context.Background()), "shipping fails while the bucket is down")
	require.NoError(t, ing.push(t, "tenant-a", []prompb.TimeSeries{floatSeries(lbls("__name__", "after_outage"), sample{t: baseTs + 2*time.Hour.Milliseconds(), v: 1})}))

	bkt.SetFailing(false)
	ing.shipAll(context.Background())
	metas := shippedBlocks(t, bkt, "tenant-a")
	require.Len(t, metas, 1, "the block cut during the outage is shipped once the bucket is back")
	require.EqualValues(t, 10, metas[0].Stats.NumSamples)
}

func TestIngester_DeletesLocalBlocksOnlyWhenShippedAndOld(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.RetentionPeriod = time.Hour
	bkt := buckettest.NewErrorInjectedBucket(objstore.NewInMemBucket())
	ing := startIngesterWithBucket(t, cfg, bkt)
	require.NoError(t, ing.push(t, "tenant-a", floatSeriesList(10)))
	require.NoError(t, ing.Flush(context.Background()))
	tdb := ing.tenantDB("tenant-a")
	blocks := tdb.db.Blocks()
	require.Len(t, blocks, 1)
	maxT := time.UnixMilli(blocks[0].Meta().MaxTime)

	ing.now = func() time.Time { return maxT.Add(30 * time.Minute) }
	require.Empty(t, ing.blocksToDelete(tdb)(blocks), "younger than the retention period")
	ing.now = func() time.Time { return maxT.Add(2 * time.Hour) }
	require.Contains(t, ing.blocksToDelete(tdb)(blocks), blocks[0].Meta().ULID)

	// A block that was never shipped is kept however old it is.
	bkt.SetFailing(true)
	require.NoError(t, ing.push(t, "tenant-b", floatSeriesList(10)))
	require.Error(t, ing.Flush(context.Background(), "tenant-b"))
	unshipped := ing.tenantDB("tenant-b").db.Blocks()
	require.Len(t, unshipped, 1)
	ing.now = func() time.Time { return time.UnixMilli(unshipped[0].Meta().MaxTime).Add(100 * time.Hour) }
	require.Empty(t, ing.blocksToDelete(ing.tenantDB("tenant-b"))(unshipped))
}

func TestIngester_ClosesIdleTenantsAfterShippingThem(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CloseIdleTSDBTimeout = time.Minute
	bkt := objstore.NewInMemBucket()
	ing := startIngesterWithBucket(t, cfg, bkt)
	now := time.Now()
	ing.now = func() time.Time { return now }
	require.NoError(t, ing.push(t, "idle", floatSeriesList(5)))
	require.NoError(t, ing.push(t, "busy", floatSeriesList(5)))

	now = now.Add(2 * time.Minute)
	require.NoError(t, ing.push(t, "busy", []prompb.TimeSeries{floatSeries(lbls("__name__", "still_here"), sample{t: baseTs + 5*time.Hour.Milliseconds(), v: 1})}))
	ing.closeIdleTenants(context.Background())

	require.Nil(t, ing.tenantDB("idle"), "the idle tenant's TSDB is closed")
	require.NotNil(t, ing.tenantDB("busy"))
	_, err := os.Stat(filepath.Join(cfg.TSDBDir, "idle"))
	require.True(t, os.IsNotExist(err), "its local files are gone")
	require.Len(t, shippedBlocks(t, bkt, "idle"), 1, "after it was shipped")

	// A new write reopens the tenant.
	require.NoError(t, ing.push(t, "idle", floatSeriesList(1)))
	require.NotNil(t, ing.tenantDB("idle"))
}

// floatSeriesList is n one-sample series of one metric, at baseTs.
func floatSeriesList(n int) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, n)
	for i := range out {
		out[i] = floatSeries(lbls("__name__", "shipped_metric", "i", strconv.Itoa(i)), sample{t: baseTs, v: float64(i)})
	}
	return out
}

// A shipped block carries the exemplars of its range that the tenant's buffer holds, in its exemplar
// file, counted in meta.json; each tenant's only its own.
func TestIngester_ShipsBlocksWithTheirExemplars(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	limits := defaultLimits(t)
	limits.MaxGlobalExemplarsPerUser = 1000
	ing := startIngesterWith(t, testConfig(t.TempDir()), bkt, limits)
	require.NoError(t, ing.push(t, "tenant-a", []prompb.TimeSeries{
		withExemplars(floatSeries(lbls("__name__", "requests_total", "job", "api"), sample{t: baseTs, v: 1}, sample{t: baseTs + 1000, v: 2}), "a", baseTs, baseTs+1000),
		withExemplars(floatSeries(lbls("__name__", "latency_bucket", "le", "0.5"), sample{t: baseTs, v: 2}), "b", baseTs),
		floatSeries(lbls("__name__", "up"), sample{t: baseTs, v: 1}),
	}))
	require.NoError(t, ing.push(t, "tenant-b", []prompb.TimeSeries{
		withExemplars(floatSeries(lbls("__name__", "requests_total", "job", "api"), sample{t: baseTs, v: 1}), "other", baseTs),
	}))
	require.NoError(t, ing.Flush(context.Background()))

	read := func(tenantID string) (*blockstore.Meta, []string) {
		metas := shippedBlocks(t, bkt, tenantID)
		require.Len(t, metas, 1)
		tb := bucket.NewTenantBucket(bkt, tenantID)
		rc, err := tb.Get(context.Background(), metas[0].ULID.String()+"/"+blockstore.ExemplarsFilename)
		require.NoError(t, err)
		defer rc.Close()
		r, err := blockstore.NewExemplarReader(rc)
		require.NoError(t, err)
		var got []string
		for {
			lset, es, err := r.Next()
			if err != nil {
				require.ErrorIs(t, err, io.EOF)
				return metas[0], got
			}
			for _, e := range es {
				got = append(got, fmt.Sprintf("%s %s %g@%d", lset, e.Labels, e.Value, e.Ts))
			}
		}
	}
	meta, got := read("tenant-a")
	require.EqualValues(t, 3, meta.Strata.Exemplars)
	require.Equal(t, []string{
		fmt.Sprintf(`{__name__="latency_bucket", le="0.5"} {trace_id="b-%d"} %g@%d`, baseTs, float64(baseTs)/1000, baseTs),
		fmt.Sprintf(`{__name__="requests_total", job="api"} {trace_id="a-%d"} %g@%d`, baseTs, float64(baseTs)/1000, baseTs),
		fmt.Sprintf(`{__name__="requests_total", job="api"} {trace_id="a-%d"} %g@%d`, baseTs+1000, float64(baseTs+1000)/1000, baseTs+1000),
	}, got)
	meta, got = read("tenant-b")
	require.EqualValues(t, 1, meta.Strata.Exemplars)
	require.Equal(t, []string{fmt.Sprintf(`{__name__="requests_total", job="api"} {trace_id="other-%d"} %g@%d`, baseTs, float64(baseTs)/1000, baseTs)}, got)
}
