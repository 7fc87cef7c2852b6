package blockstore

import (
	"context"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func newTestShipper(dir string, bkt *testBucket, metrics *ShipperMetrics, opts ...ShipperOption) *Shipper {
	opts = append([]ShipperOption{WithUploadBackoff(UploadBackoff{MaxRetries: 2})}, opts...)
	s := NewShipper(dir, bkt, "tenant-1", "ingester-1", testLogger, metrics, opts...)
	s.now = func() time.Time { return testNow }
	return s
}

func TestShipper_ShipsEveryBlockOnceWithMetaLast(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	// A block the TSDB is still writing, and a directory with a block name but no meta.json: neither ships.
	inProgress := ulid.MustNew(ulid.Now(), nil).String()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, inProgress+".tmp-for-creation"), 0o755))
	noMeta := ulid.MustNew(ulid.Now(), nil)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, noMeta.String()), 0o755))

	bkt := newTestBucket()
	reg := prometheus.NewRegistry()
	metrics := NewShipperMetrics(reg)
	s := newTestShipper(dir, bkt, metrics)

	n, err := s.Sync(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)

	perBlock := map[string][]string{}
	for _, name := range bkt.takeUploads() {
		b := blockOf(name)
		require.NotEmpty(t, b, "unexpected upload %s", name)
		perBlock[b] = append(perBlock[b], strings.TrimPrefix(name, b+"/"))
	}
	require.Len(t, perBlock, 2)
	for _, id := range ids {
		files := perBlock[id.String()]
		require.Equal(t, MetaFilename, files[len(files)-1], "meta.json must be uploaded last: %v", files)
		require.Contains(t, files, BlockIndexFilename)
		require.Contains(t, files, path.Join(ChunksDirname, "000001"))
		require.Contains(t, files, TombstonesFilename)
	}
	want := map[ulid.ULID]time.Time{ids[0]: testNow, ids[1]: testNow}
	require.Equal(t, want, s.Shipped())
	require.Equal(t, 2.0, testutil.ToFloat64(metrics.uploads))
	require.Equal(t, 0.0, testutil.ToFloat64(metrics.uploadFailures))
	require.Equal(t, float64(testNow.Unix()), testutil.ToFloat64(metrics.lastSuccessfulSync))

	n, err = s.Sync(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, bkt.takeUploads())

	// After a restart the record says the same, and nothing is uploaded again.
	restarted := newTestShipper(dir, bkt, NewShipperMetrics(nil))
	require.Equal(t, want, restarted.Shipped())
	n, err = restarted.Sync(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, bkt.takeUploads())
}

func TestShipper_UploadedBlockHasStrataMetaAndSameSamples(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	bkt := newTestBucket()
	_, err := newTestShipper(dir, bkt, nil).Sync(context.Background())
	require.NoError(t, err)

	for _, id := range ids {
		m, err := DownloadMeta(context.Background(), bkt, id)
		require.NoError(t, err)
		require.Equal(t, StrataMeta{TenantID: "tenant-1", IngesterID: "ingester-1", Source: SourceIngester}, m.Strata)
		local, err := ReadMetaFromDir(filepath.Join(dir, id.String()))
		require.NoError(t, err)
		require.Equal(t, local.BlockMeta, m.BlockMeta)

		downloaded := downloadBlock(t, bkt, id, t.TempDir())
		got := readBlockSamples(t, downloaded)
		require.Len(t, got, 3)
		require.Equal(t, readBlockSamples(t, filepath.Join(dir, id.String())), got)
	}
}

func TestShipper_RetriesFailedUploadWithinSync(t *testing.T) {
	dir, _ := createTSDBBlocks(t)
	bkt := newTestBucket()
	failures := 2
	bkt.setFailUpload(func(string) error {
		if failures > 0 {
			failures--
			return errors.New("bucket unavailable")
		}
		return nil
	})
	metrics := NewShipperMetrics(nil)
	s := newTestShipper(dir, bkt, metrics)

	n, err := s.Sync(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Len(t, s.Shipped(), 2)
	require.Equal(t, 2.0, testutil.ToFloat64(metrics.uploadFailures))
}

func TestShipper_FailedUploadIsNotRecordedAndNextSyncRetries(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	bkt := newTestBucket()
	bkt.setFailUpload(func(name string) error {
		if path.Base(name) == BlockIndexFilename {
			return errors.New("bucket unavailable")
		}
		return nil
	})
	metrics := NewShipperMetrics(nil)
	s := newTestShipper(dir, bkt, metrics)

	n, err := s.Sync(context.Background())
	require.ErrorContains(t, err, "bucket unavailable")
	require.ErrorContains(t, err, ids[0].String())
	require.ErrorContains(t, err, ids[1].String())
	require.Zero(t, n)
	require.Empty(t, s.Shipped())
	// Two blocks, each tried once and retried twice.
	require.Equal(t, 6.0, testutil.ToFloat64(metrics.uploadFailures))
	require.Zero(t, testutil.ToFloat64(metrics.lastSuccessfulSync))
	for _, id := range ids {
		_, err := DownloadMeta(context.Background(), bkt, id)
		require.ErrorIs(t, err, ErrMetaNotFound, "a block whose upload failed must stay partial")
	}
	restarted := newTestShipper(dir, bkt, nil)
	require.Empty(t, restarted.Shipped(), "a failed block must not be recorded on disk")

	bkt.setFailUpload(nil)
	n, err = s.Sync(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Len(t, s.Shipped(), 2)
}

func TestShipper_RecordsBlockAlreadyCompleteInBucketWithoutUploading(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	bkt := newTestBucket()
	// As if an earlier Sync uploaded the block and crashed before recording it.
	m, err := ReadMetaFromDir(filepath.Join(dir, ids[0].String()))
	require.NoError(t, err)
	require.NoError(t, UploadMeta(context.Background(), bkt, m))
	bkt.takeUploads()

	s := newTestShipper(dir, bkt, nil)
	n, err := s.Sync(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	for _, name := range bkt.takeUploads() {
		require.Equal(t, ids[1].String(), blockOf(name), "block %s must not be uploaded again", ids[0])
	}
	require.Len(t, s.Shipped(), 2)
}

func TestShipper_ReuploadsBlockWithCorruptMetaInBucket(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	bkt := newTestBucket()
	require.NoError(t, bkt.Upload(context.Background(), MetaPath(ids[0]), strings.NewReader("{not json")))

	n, err := newTestShipper(dir, bkt, nil).Sync(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	m, err := DownloadMeta(context.Background(), bkt, ids[0])
	require.NoError(t, err)
	require.Equal(t, "tenant-1", m.Strata.TenantID)
}

func TestShipper_StopsWhenContextIsCancelled(t *testing.T) {
	dir, _ := createTSDBBlocks(t)
	bkt := newTestBucket()
	ctx, cancel := context.WithCancel(context.Background())
	bkt.setFailUpload(func(string) error {
		cancel()
		return context.Canceled
	})
	// A backoff that would block for hours if Sync ignored ctx.
	s := newTestShipper(dir, bkt, nil, WithUploadBackoff(UploadBackoff{MinBackoff: time.Hour, MaxBackoff: time.Hour, MaxRetries: 10}))

	n, err := s.Sync(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, n)
	require.Empty(t, s.Shipped())

	// An already cancelled context uploads nothing.
	bkt.setFailUpload(nil)
	n, err = s.Sync(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, n)
	require.Empty(t, bkt.takeUploads())
}

func TestShipper_StopsWaitingForRetryWhenContextIsCancelled(t *testing.T) {
	dir, _ := createTSDBBlocks(t)
	bkt := newTestBucket()
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan struct{}, 1)
	bkt.setFailUpload(func(string) error {
		select {
		case failed <- struct{}{}:
		default:
		}
		return errors.New("bucket unavailable")
	})
	s := newTestShipper(dir, bkt, nil, WithUploadBackoff(UploadBackoff{MinBackoff: time.Hour, MaxBackoff: time.Hour, MaxRetries: 10}))

	done := make(chan error, 1)
	go func() {
		_, err := s.Sync(ctx)
		done <- err
	}()
	<-failed // Sync now waits an hour before retrying, unless it honours ctx.
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Empty(t, s.Shipped())
}

func TestShipper_ForgetsBlocksDeletedLocally(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	bkt := newTestBucket()
	s := newTestShipper(dir, bkt, nil)
	_, err := s.Sync(context.Background())
	require.NoError(t, err)

	// What an ingester does once a shipped block is older than it keeps blocks locally.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, ids[0].String())))
	_, err = s.Sync(context.Background())
	require.NoError(t, err)
	want := map[ulid.ULID]time.Time{ids[1]: testNow}
	require.Equal(t, want, s.Shipped())
	require.Equal(t, want, newTestShipper(dir, bkt, nil).Shipped())
}

func TestShipper_UnreadableRecordIsRebuiltFromBucket(t *testing.T) {
	dir, _ := createTSDBBlocks(t)
	bkt := newTestBucket()
	_, err := newTestShipper(dir, bkt, nil).Sync(context.Background())
	require.NoError(t, err)
	bkt.takeUploads()

	for _, content := range []string{"{corrupt", `{"version":7,"shipped":{}}`} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, ShipperStateFilename), []byte(content), 0o644))
		s := newTestShipper(dir, bkt, nil)
		require.Empty(t, s.Shipped())
		n, err := s.Sync(context.Background())
		require.NoError(t, err)
		require.Zero(t, n)
		require.Len(t, s.Shipped(), 2)
		require.Empty(t, bkt.takeUploads())
	}
}

func TestShipper_ReportsBlockWithCorruptLocalMeta(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ids[0].String(), MetaFilename), []byte("{corrupt"), 0o644))
	bkt := newTestBucket()
	s := newTestShipper(dir, bkt, nil)

	n, err := s.Sync(context.Background())
	require.ErrorIs(t, err, ErrMetaCorrupted)
	require.ErrorContains(t, err, ids[0].String())
	require.Equal(t, 1, n, "the other block still ships")
	require.Equal(t, []ulid.ULID{ids[1]}, slices.Collect(maps.Keys(s.Shipped())))
}
