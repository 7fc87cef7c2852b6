package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// blocksConfig configures the blocks mode, which writes the past that remote write cannot deliver:
// a TSDB head (Prometheus', or a Strata ingester's) refuses samples older than about an hour before
// its newest one.
type blocksConfig struct {
	Dir          string
	Series       int
	Seed         uint64
	From, To     time.Duration
	StartMs      int64
	EndMs        int64
	Step         time.Duration
	BlockRange   time.Duration
	StrataTenant string
}

// RegisterFlags registers the blocks mode's flags.
func (c *blocksConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Dir, "dir", "", "directory to write the blocks into, one <ULID> directory each (created if missing)")
	f.IntVar(&c.Series, "series", 10000, "series, the same as write's -series for one tenant")
	f.Uint64Var(&c.Seed, "seed", 1, "seed of the value generator, as write's -seed (write's tenant N uses seed+N)")
	f.DurationVar(&c.From, "from", 7*24*time.Hour, "the first sample is this long before now (-start-ms overrides)")
	f.DurationVar(&c.To, "to", 3*time.Hour, "samples stop this long before now (-end-ms overrides)")
	f.Int64Var(&c.StartMs, "start-ms", 0, "the first round's timestamp (unix ms) instead of now minus -from; the same as write's -backfill-start-ms")
	f.Int64Var(&c.EndMs, "end-ms", 0, "rounds at or after this time (unix ms) are not written, instead of now minus -to; write's -backfill-send-from-ms continues from here")
	f.DurationVar(&c.Step, "step", 15*time.Second, "spacing of the rounds, as write's -backfill-step")
	f.DurationVar(&c.BlockRange, "block-range", 2*time.Hour, "time range of a block, aligned to multiples of it since the Unix epoch (2h: what ingesters ship; 24h: what Strata's compactor leaves)")
	f.StringVar(&c.StrataTenant, "strata-tenant", "", "also mark each block as uploaded by this Strata tenant (meta.json's strata section), so the blocks can be copied into a filesystem bucket as <tenant>/<ULID>; Prometheus ignores the section")
}

// Validate reports the first invalid flag.
func (c *blocksConfig) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("-dir is required")
	case c.Series < 1:
		return fmt.Errorf("-series must be at least 1, got %d", c.Series)
	case c.Step <= 0 || c.Step%time.Millisecond != 0:
		return fmt.Errorf("-step must be a positive whole number of milliseconds, got %s", c.Step)
	case c.BlockRange < c.Step || c.BlockRange%time.Millisecond != 0:
		return fmt.Errorf("-block-range must be whole milliseconds and at least -step, got %s", c.BlockRange)
	case c.StartMs < 0 || c.EndMs < 0 || c.From < 0 || c.To < 0:
		return errors.New("-from, -to, -start-ms and -end-ms must not be negative")
	}
	if start, end := c.window(time.Now()); end <= start {
		return fmt.Errorf("nothing to write: the rounds start at %s and must end after that, not at %s",
			time.UnixMilli(start).UTC().Format(time.RFC3339), time.UnixMilli(end).UTC().Format(time.RFC3339))
	}
	return nil
}

// window returns the first round's timestamp and the (exclusive) end of the rounds, in unix ms.
func (c *blocksConfig) window(now time.Time) (start, end int64) {
	start, end = now.Add(-c.From).UnixMilli(), now.Add(-c.To).UnixMilli()
	if c.StartMs > 0 {
		start = c.StartMs
	}
	if c.EndMs > 0 {
		end = c.EndMs
	}
	return start, end
}

// blocksSummary is what the blocks mode wrote.
type blocksSummary struct {
	Series       int      `json:"series"`
	Rounds       int      `json:"rounds"`
	Samples      int64    `json:"samples"`
	FirstMs      int64    `json:"first_sample_ms"`
	LastMs       int64    `json:"last_sample_ms"`
	Blocks       []string `json:"blocks"` // directories
	FlushSeconds float64  `json:"flush_seconds"`
}

// runBlocks generates the rounds write would send with the same seed, series, start and step, and writes
// them into blocks of cfg.BlockRange, one after another.
func runBlocks(ctx context.Context, cfg blocksConfig, logger *slog.Logger) (*blocksSummary, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create -dir: %w", err)
	}
	start, end := cfg.window(time.Now())
	gen := newTenantSeries("blocks", cfg.Series, cfg.Seed, nil)
	lsets := seriesLabelSets(gen)
	s := &blocksSummary{Series: cfg.Series, FirstMs: start}
	step, blockRange := cfg.Step.Milliseconds(), cfg.BlockRange.Milliseconds()

	var (
		bw       *promtsdb.BlockWriter
		blockEnd int64
		refs     = make([]storage.SeriesRef, len(lsets))
	)
	flush := func() error {
		if bw == nil {
			return nil
		}
		began := time.Now()
		dir, err := flushBlock(ctx, bw, cfg.Dir, cfg.StrataTenant)
		s.FlushSeconds += time.Since(began).Seconds()
		bw = nil
		if err != nil {
			return err
		}
		s.Blocks = append(s.Blocks, dir)
		logger.Info("block written", "dir", dir)
		return nil
	}
	for ts := start; ts < end; ts += step {
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		dt := 0.0
		if ts > start {
			dt = float64(step) / 1000 // as write computes it, to the last bit
		}
		gen.advance(dt, 0)
		if bw == nil || ts >= blockEnd {
			if err := flush(); err != nil {
				return s, err
			}
			var err error
			if bw, err = promtsdb.NewBlockWriter(slog.New(slog.DiscardHandler), cfg.Dir, blockRange); err != nil {
				return s, fmt.Errorf("block writer: %w", err)
			}
			blockEnd = ts - floorMod(ts, blockRange) + blockRange
			clear(refs)
		}
		app := bw.Appender(ctx)
		i := 0
		var err error
		gen.series(0, gen.n, func(t *target, j int) {
			if err == nil {
				refs[i], err = app.Append(refs[i], lsets[i], ts, t.values[j])
			}
			i++
		})
		if err == nil {
			err = app.Commit()
		}
		if err != nil {
			return s, fmt.Errorf("append round at %d: %w", ts, err)
		}
		s.Rounds++
		s.Samples += int64(len(lsets))
		s.LastMs = ts
	}
	if err := flush(); err != nil {
		return s, err
	}
	return s, nil
}

// seriesLabelSets returns the labels of the generator's series in layout order.
func seriesLabelSets(gen *tenantSeries) []labels.Labels {
	var (
		out []labels.Labels
		b   labels.ScratchBuilder
	)
	gen.series(0, gen.n, func(t *target, j int) {
		b.Reset()
		for _, l := range seriesLabels(&gen.tpl.series[j], t.id) {
			b.Add(l.name, l.value)
		}
		out = append(out, b.Labels())
	})
	return out
}

// flushBlock writes bw's samples as a block under parent, closes bw, and marks the block as uploaded by
// tenant unless tenant is empty. It returns the block's directory.
func flushBlock(ctx context.Context, bw *promtsdb.BlockWriter, parent, tenant string) (string, error) {
	id, err := bw.Flush(ctx)
	if cerr := bw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close block writer: %w", cerr)
	}
	if err != nil {
		return "", fmt.Errorf("write block: %w", err)
	}
	dir := filepath.Join(parent, id.String())
	if tenant == "" {
		return dir, nil
	}
	meta, err := blockstore.ReadMetaFromDir(dir)
	if err != nil {
		return "", err
	}
	meta.Strata = blockstore.StrataMeta{TenantID: tenant, Source: blockstore.SourceUpload}
	if err := meta.WriteToDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// floorMod is a - floor(a/b)*b, in 0..b-1 (b > 0).
func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
