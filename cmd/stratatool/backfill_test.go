package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/strata-metrics/strata/pkg/compactor"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

type limitsFor map[string]*validation.Limits

func (m limitsFor) ByTenant(t string) *validation.Limits       { return m[t] }
func (m limitsFor) AllByTenant() map[string]*validation.Limits { return m }

// writeTestBlock writes a 2h block starting at minT, of one series per name, into dir.
func writeTestBlock(t *testing.T, dir string, minT int64, names ...string) string {
	t.Helper()
	w, err := promtsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, 2*time.Hour.Milliseconds())
	require.NoError(t, err)
	app := w.Appender(context.Background())
	for _, name := range names {
		for ts := minT; ts < minT+2*time.Hour.Milliseconds(); ts += 15_000 {
			_, err := app.Append(0, labels.FromStrings("__name__", name), ts, float64(ts))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return filepath.Join(dir, id.String())
}

func TestBackfill_UploadsADataDirectoryAndResumes(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	lim := validation.DefaultLimits()
	lim.CompactorBlockUploadEnabled = true
	c, err := compactor.New(compactor.Config{
		BlockRanges: compactor.DurationList{2 * time.Hour}, CompactionInterval: time.Hour, CleanupInterval: time.Hour,
		DataDir: t.TempDir(),
	}, validation.NewOverrides(validation.DefaultLimits(), limitsFor{"team-a": &lim}), bkt, nil, "c", prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	srv := httptest.NewServer(tenant.Middleware(true)(c.BlockUploadHandler()))
	t.Cleanup(srv.Close)

	// A Prometheus data directory: blocks beside the WAL and the head's chunks.
	data := t.TempDir()
	day := 24 * time.Hour.Milliseconds()
	base := time.Now().UnixMilli()/day*day - 2*day
	b1 := writeTestBlock(t, data, base, "up")
	b2 := writeTestBlock(t, data, base+2*time.Hour.Milliseconds(), "up")
	for _, d := range []string{"wal", "chunks_head"} {
		require.NoError(t, os.MkdirAll(filepath.Join(data, d), 0o755))
	}
	bad := writeTestBlock(t, t.TempDir(), base+4*time.Hour.Milliseconds(), "bad-name")

	backfill := func(dirs ...string) (int, string) {
		var out, errOut bytes.Buffer
		status := run(append([]string{"--address", srv.URL, "--id", "team-a", "backfill"}, dirs...), &out, &errOut)
		return status, out.String() + errOut.String()
	}
	status, out := backfill(data, bad)
	require.Equal(t, 1, status, out)
	require.Contains(t, out, filepath.Base(b1)+" (1/3): uploaded")
	require.Contains(t, out, filepath.Base(b2)+" (2/3): complete")
	require.Contains(t, out, filepath.Base(bad)+` (3/3): failed: invalid series: metric name "bad-name" is invalid`)
	require.Contains(t, out, "backfill: 2 blocks uploaded, 0 already there, 1 failed")

	tb := bucket.NewTenantBucket(bkt, "team-a")
	for _, dir := range []string{b1, b2} {
		_, err := blockstore.DownloadMeta(context.Background(), tb, ulid.MustParse(filepath.Base(dir)))
		require.NoError(t, err)
	}

	// Run again: the uploaded blocks are skipped.
	status, out = backfill(data)
	require.Equal(t, 0, status, out)
	require.Contains(t, out, "backfill: 0 blocks uploaded, 2 already there, 0 failed")

	// Another tenant's block is refused before anything is sent.
	m, err := blockstore.ReadMetaFromDir(bad)
	require.NoError(t, err)
	m.Strata.TenantID = "team-b"
	require.NoError(t, m.WriteToDir(bad))
	status, out = backfill(bad)
	require.Equal(t, 1, status, out)
	require.Contains(t, out, `belongs to tenant "team-b"`)
	require.True(t, strings.Contains(out, "400 Bad Request"), out)
}
