package storegateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

var testLogger = slog.New(slog.DiscardHandler)

const (
	testBlockRange = int64(2 * time.Hour / time.Millisecond)
	testStep       = int64(time.Minute / time.Millisecond)
)

// sample is one float sample.
type sample struct {
	t int64
	v float64
}

// testSeries is a series with the samples pushed for it.
type testSeries struct {
	lset    labels.Labels
	samples []sample
}

// makeSeries returns series with one sample a minute in [from, to], values that tell series and time apart.
func makeSeries(from, to int64, lsets ...labels.Labels) []testSeries {
	out := make([]testSeries, len(lsets))
	for i, ls := range lsets {
		out[i].lset = ls
		for ts := from; ts <= to; ts += testStep {
			out[i].samples = append(out[i].samples, sample{t: ts, v: float64(i*1_000_000) + float64(ts)/1000})
		}
	}
	return out
}

// createBlocks appends the series to a TSDB set up like an ingester's (2h blocks) and compacts its head,
// which cuts every complete 2h range into a block. It returns the block directories.
func createBlocks(t testing.TB, series []testSeries) []string {
	t.Helper()
	dir := t.TempDir()
	opts := promtsdb.DefaultOptions()
	opts.MinBlockDuration = testBlockRange
	opts.MaxBlockDuration = testBlockRange
	db, err := promtsdb.Open(dir, testLogger, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.DisableCompactions() // only the explicit Compact below cuts blocks

	app := db.Appender(context.Background())
	for _, s := range series {
		for _, smp := range s.samples {
			_, err := app.Append(0, s.lset, smp.t, smp.v)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Compact(context.Background()))
	var dirs []string
	for _, b := range db.Blocks() {
		dirs = append(dirs, b.Dir())
	}
	require.NotEmpty(t, dirs)
	return dirs
}

// uploadBlocks copies block directories into the bucket under tenant/<ULID>/ and returns their IDs.
func uploadBlocks(t testing.TB, bkt objstore.Bucket, tenantID string, dirs []string) []ulid.ULID {
	t.Helper()
	var ids []ulid.ULID
	for _, dir := range dirs {
		id := ulid.MustParseStrict(filepath.Base(dir))
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return bkt.Upload(context.Background(), path.Join(tenantID, id.String(), filepath.ToSlash(rel)), f)
		})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// writeBucketIndex writes the tenant's bucket index from what is in the bucket, as the compactor does.
func writeBucketIndex(t testing.TB, bkt objstore.Bucket, tenantID string) *blockstore.Index {
	t.Helper()
	tb := bucket.NewTenantBucket(bkt, tenantID)
	idx, err := blockstore.NewUpdater(tb, testLogger).UpdateIndex(context.Background(), nil)
	require.NoError(t, err)
	require.NoError(t, blockstore.WriteIndex(context.Background(), tb, idx))
	return idx
}

func testConfig(t testing.TB) Config {
	return Config{
		SyncDir:                 t.TempDir(),
		SyncInterval:            time.Hour, // tests sync explicitly
		IndexCacheMaxSizeBytes:  64 << 20,
		ChunksCacheMaxSizeBytes: 64 << 20,
		ReplicationFactor:       1,
	}
}

// startStoreGateway creates and starts a store-gateway without a ring, stopped when the test ends.
func startStoreGateway(t testing.TB, cfg Config, bkt objstore.Bucket) *StoreGateway {
	t.Helper()
	sg, err := New(cfg, bkt, nil, "", nil, testLogger)
	require.NoError(t, err)
	require.NoError(t, sg.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sg.Stop(context.Background())) })
	return sg
}

// serveGRPC serves sg on 127.0.0.1 with the tenant interceptors and returns a client that sends the
// tenant from its context.
func serveGRPC(t testing.TB, sg *StoreGateway) storegatewaypb.StoreGatewayClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(tenant.UnaryServerInterceptor),
		grpc.StreamInterceptor(tenant.StreamServerInterceptor),
	)
	storegatewaypb.RegisterStoreGatewayServer(srv, sg)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor),
		grpc.WithStreamInterceptor(tenant.StreamClientInterceptor),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return storegatewaypb.NewStoreGatewayClient(conn)
}

// seriesResult is a decoded Series stream.
type seriesResult struct {
	series  []testSeries // samples limited to the requested range
	chunks  int
	queried []string
}

// callSeries runs a Series request for a tenant and decodes every chunk.
func callSeries(t testing.TB, c storegatewaypb.StoreGatewayClient, tenantID string, req *storegatewaypb.SeriesRequest) seriesResult {
	t.Helper()
	ctx := tenant.NewContext(context.Background(), tenantID)
	stream, err := c.Series(ctx, req)
	require.NoError(t, err)
	var (
		res   seriesResult
		b     labels.ScratchBuilder
		first = true
	)
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if first {
			require.Empty(t, resp.Series, "the first message lists the queried blocks only")
			res.queried, first = resp.QueriedBlockIds, false
			continue
		}
		require.Nil(t, resp.QueriedBlockIds, "queried blocks after the first message")
		for _, s := range resp.Series {
			ts := testSeries{lset: seriespb.ToLabels(&b, s.Labels)}
			for _, c := range s.Chunks {
				res.chunks++
				chk, err := chunkenc.FromData(chunkenc.Encoding(c.Encoding), c.Data)
				require.NoError(t, err)
				it := chk.Iterator(nil)
				for it.Next() == chunkenc.ValFloat {
					tt, v := it.At()
					require.GreaterOrEqual(t, tt, c.MinTimeMs)
					require.LessOrEqual(t, tt, c.MaxTimeMs)
					if tt >= req.MinTimeMs && tt <= req.MaxTimeMs {
						ts.samples = append(ts.samples, sample{t: tt, v: v})
					}
				}
				require.NoError(t, it.Err())
			}
			res.series = append(res.series, ts)
		}
	}
	require.False(t, first, "no message listing the queried blocks")
	return res
}

// expectedSeries is what a query over [mint, maxt] should return of the pushed series that match ms and
// whose samples are in blocks (samples at or after blocksEnd stay in the head, not in any block).
func expectedSeries(pushed []testSeries, ms []*labels.Matcher, mint, maxt, blocksEnd int64) []testSeries {
	var out []testSeries
	for _, s := range pushed {
		ok := true
		for _, m := range ms {
			ok = ok && m.Matches(s.lset.Get(m.Name))
		}
		if !ok {
			continue
		}
		var smp []sample
		for _, x := range s.samples {
			if x.t >= mint && x.t <= maxt && x.t < blocksEnd {
				smp = append(smp, x)
			}
		}
		if len(smp) > 0 {
			out = append(out, testSeries{lset: s.lset, samples: smp})
		}
	}
	// The store-gateway streams series in label order.
	slices.SortFunc(out, func(a, b testSeries) int { return labels.Compare(a.lset, b.lset) })
	return out
}

// countingBucket counts range reads.
type countingBucket struct {
	objstore.Bucket
	mu        sync.Mutex
	getRanges int
}

func (b *countingBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b.mu.Lock()
	b.getRanges++
	b.mu.Unlock()
	return b.Bucket.GetRange(ctx, name, off, length)
}

func (b *countingBucket) rangeReads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.getRanges
}

func idStrings(ids []ulid.ULID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func loadedIDs(sg *StoreGateway, tenantID string) []string {
	var out []string
	for _, tb := range sg.Tenants() {
		if tb.Tenant == tenantID {
			for _, b := range tb.Blocks {
				out = append(out, b.ID)
			}
		}
	}
	return out
}
