package main

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func testBlocksConfig(dir string, series int, start, end time.Time) blocksConfig {
	var cfg blocksConfig
	cfg.RegisterFlags(newTestFlagSet())
	cfg.Dir, cfg.Series, cfg.StartMs, cfg.EndMs = dir, series, start.UnixMilli(), end.UnixMilli()
	return cfg
}

// readBlocks opens every block under dir with the TSDB and returns its samples by series, oldest block
// first, and the blocks' metas.
func readBlocks(t *testing.T, dir string) (map[string][]prompb.Sample, []promtsdb.BlockMeta) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var blocks []*promtsdb.Block
	for _, e := range entries {
		b, err := promtsdb.OpenBlock(discardLogger, filepath.Join(dir, e.Name()), nil, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, b.Close()) })
		blocks = append(blocks, b)
	}
	slices.SortFunc(blocks, func(a, b *promtsdb.Block) int { return cmp.Compare(a.MinTime(), b.MinTime()) })
	out := map[string][]prompb.Sample{}
	var metas []promtsdb.BlockMeta
	for _, b := range blocks {
		metas = append(metas, b.Meta())
		q, err := promtsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
		require.NoError(t, err)
		set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		for set.Next() {
			s := set.At()
			it := s.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				out[s.Labels().String()] = append(out[s.Labels().String()], prompb.Sample{Timestamp: ts, Value: v})
			}
			require.NoError(t, it.Err())
		}
		require.NoError(t, set.Err())
		require.NoError(t, q.Close())
	}
	return out, metas
}

func TestBlocks_OpenWithTheTSDBAndHoldEverySeriesAndSample(t *testing.T) {
	// Neither end on a block boundary: the first and last blocks are partial.
	start := time.Date(2026, 3, 1, 5, 17, 7, 500e6, time.UTC)
	end := start.Add(5*time.Hour + 10*time.Minute)
	const series = 200 // two whole targets and part of a third
	rounds := int(end.Sub(start) / (15 * time.Second))
	for _, tenant := range []string{"", "anonymous"} {
		t.Run("strata tenant "+tenant, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testBlocksConfig(dir, series, start, end)
			cfg.StrataTenant = tenant
			require.NoError(t, cfg.Validate())
			s, err := runBlocks(context.Background(), cfg, discardLogger)
			require.NoError(t, err)
			require.Equal(t, rounds, s.Rounds)
			require.Equal(t, int64(series*rounds), s.Samples)
			require.Len(t, s.Blocks, 4, "05:17-06:00, 06-08, 08-10, 10-10:27")

			samples, metas := readBlocks(t, dir)
			require.Len(t, samples, series)
			want := map[string]bool{}
			for _, ls := range seriesLabelSets(newTenantSeries("x", series, 1, nil)) {
				want[ls.String()] = true
			}
			for key, ss := range samples {
				require.True(t, want[key], "unexpected series %s", key)
				require.Len(t, ss, rounds, key)
				for i, p := range ss {
					require.Equal(t, start.UnixMilli()+int64(i)*15000, p.Timestamp, key)
				}
			}
			var total uint64
			for _, m := range metas {
				total += m.Stats.NumSamples
				require.Equal(t, uint64(series), m.Stats.NumSeries)
				first := m.MinTime - floorMod(m.MinTime, (2*time.Hour).Milliseconds())
				require.Less(t, m.MaxTime-1, first+(2*time.Hour).Milliseconds(), "block %s crosses a 2h boundary", m.ULID)
			}
			require.Equal(t, uint64(series*rounds), total)

			for _, dir := range s.Blocks {
				meta, err := blockstore.ReadMetaFromDir(dir)
				require.NoError(t, err)
				if tenant == "" {
					require.Empty(t, meta.Strata.TenantID)
					continue
				}
				require.Equal(t, blockstore.StrataMeta{TenantID: tenant, Source: blockstore.SourceUpload}, meta.Strata)
			}
		})
	}
}

func TestBlocks_SameSeedSameData(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 7, 500e6, time.UTC)
	read := func(seed uint64) map[string][]prompb.Sample {
		cfg := testBlocksConfig(t.TempDir(), 90, start, start.Add(time.Hour))
		cfg.Seed = seed
		_, err := runBlocks(context.Background(), cfg, discardLogger)
		require.NoError(t, err)
		samples, _ := readBlocks(t, cfg.Dir)
		return samples
	}
	first := read(7)
	require.Equal(t, first, read(7))
	require.NotEqual(t, first, read(8))
}

// TestBlocks_WriteContinuesWhereBlocksEnd writes blocks up to a time and pushes the rounds after it with
// write -backfill-send-from-ms: together they are the very samples of one run of blocks over both.
func TestBlocks_WriteContinuesWhereBlocksEnd(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 7, 500e6, time.UTC)
	split := start.Add(3 * time.Hour)
	const series, pushed = 100, 40

	whole := testBlocksConfig(t.TempDir(), series, start, split.Add(pushed*15*time.Second))
	_, err := runBlocks(context.Background(), whole, discardLogger)
	require.NoError(t, err)
	want, _ := readBlocks(t, whole.Dir)

	old := testBlocksConfig(t.TempDir(), series, start, split)
	_, err = runBlocks(context.Background(), old, discardLogger)
	require.NoError(t, err)
	got, _ := readBlocks(t, old.Dir)

	recv, srv := newFakeReceiver(t, "X-Scope-OrgID")
	cfg := testWriteConfig(srv.URL)
	cfg.SeriesPerTen, cfg.Rounds, cfg.Concurrency = series, pushed, 2
	cfg.BackfillFrom, cfg.BackfillStartMs, cfg.BackfillSendMs = time.Hour, start.UnixMilli(), split.UnixMilli()
	require.NoError(t, cfg.Validate())
	s, _, err := runWrite(context.Background(), cfg, discardLogger)
	require.NoError(t, err)
	require.Equal(t, int64(series*pushed), s.SamplesAccepted)

	require.Len(t, recv.samples["tenant-0"], series)
	for _, ls := range seriesLabelSets(newTenantSeries("x", series, 1, nil)) {
		var pl []prompb.Label
		ls.Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
		pushedSamples := recv.samples["tenant-0"][labelsKey(pl)]
		require.Len(t, pushedSamples, pushed, ls.String())
		require.Equal(t, split.UnixMilli(), pushedSamples[0].Timestamp)
		got[ls.String()] = append(got[ls.String()], pushedSamples...)
	}
	require.Equal(t, want, got)
}

func TestBlocks_RejectsBadFlags(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		change  func(c *blocksConfig)
		wantErr string
	}{
		{name: "no dir", change: func(c *blocksConfig) { c.Dir = "" }, wantErr: "-dir is required"},
		{name: "no series", change: func(c *blocksConfig) { c.Series = 0 }, wantErr: "-series must be at least 1"},
		{name: "zero step", change: func(c *blocksConfig) { c.Step = 0 }, wantErr: "-step must be a positive"},
		{name: "sub-millisecond step", change: func(c *blocksConfig) { c.Step = 1500 * time.Microsecond }, wantErr: "-step must be a positive whole number of milliseconds"},
		{name: "block shorter than a step", change: func(c *blocksConfig) { c.BlockRange = time.Second }, wantErr: "-block-range must be"},
		{name: "end before start", change: func(c *blocksConfig) { c.EndMs = c.StartMs - 1 }, wantErr: "nothing to write"},
		{name: "negative start", change: func(c *blocksConfig) { c.StartMs = -1 }, wantErr: "must not be negative"},
		{name: "to before from", change: func(c *blocksConfig) { c.StartMs, c.EndMs, c.From, c.To = 0, 0, time.Hour, 2*time.Hour }, wantErr: "nothing to write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testBlocksConfig(t.TempDir(), 10, start, start.Add(time.Hour))
			tt.change(&cfg)
			require.ErrorContains(t, cfg.Validate(), tt.wantErr)
		})
	}
}

func TestBlocks_ModeWritesSummary(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(t.TempDir(), "s.json")
	code := run(context.Background(), []string{"blocks", "-dir", dir, "-series", "20", "-from", "3h", "-to", "1h",
		"-block-range", "24h", "-json", jsonPath}, io.Discard, io.Discard)
	require.Equal(t, 0, code)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	data, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	require.Contains(t, string(data), `"samples": 9600`, "20 series × 480 rounds")
}
