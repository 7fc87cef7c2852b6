package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb/tombstones"

	"github.com/strata-metrics/strata/pkg/compactor"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// maxPendingValidations is how many uploaded blocks may wait for their validation before the next upload
// waits too: uploads go on while the compactor validates, without piling up unbounded work there.
const maxPendingValidations = 4

func registerBackfillCommand(app *kingpin.Application, cfg *clientConfig, commands map[string]command) {
	cmd := app.Command("backfill", "Upload Prometheus TSDB blocks to the tenant (the compactor's block upload API): "+
		"a block directory, or a directory of blocks such as a Prometheus data directory or the output of "+
		"`promtool tsdb create-blocks-from openmetrics`. Blocks already uploaded are skipped, so an interrupted "+
		"backfill is resumed by running it again. Exits 1 when a block is refused.")
	dirs := cmd.Arg("dir", "Block directories, or directories holding blocks.").Required().ExistingDirs()
	timeout := cmd.Flag("validation-timeout", "How long to wait for the cluster to validate one uploaded block.").Default("10m").Duration()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		c, err := cfg.newClient()
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "stratatool: %v\n", err)
			return 1
		}
		blocks, err := findBlocks(*dirs)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "stratatool: %v\n", err)
			return 1
		}
		if len(blocks) == 0 {
			_, _ = fmt.Fprintf(stderr, "stratatool: no blocks (directories named by a ULID holding a meta.json) in %v\n", *dirs)
			return 1
		}
		// Uploads stream files of any size: only the wait for an answer is bounded.
		transport := c.transport.Clone()
		transport.ResponseHeaderTimeout = requestTimeout
		c.http = &http.Client{Transport: transport}
		b := &backfill{c: c, out: stdout, validationTimeout: *timeout, poll: 200 * time.Millisecond}
		if b.run(context.Background(), blocks) {
			return 0
		}
		return 1
	}
}

// findBlocks returns the block directories of dirs, sorted by ULID (so by creation time): each dir is a
// block itself or holds blocks; other entries (wal, chunks_head, lock files) are skipped.
func findBlocks(dirs []string) ([]string, error) {
	var blocks []string
	seen := map[string]bool{}
	add := func(dir string) {
		if !seen[filepath.Base(dir)] {
			seen[filepath.Base(dir)] = true
			blocks = append(blocks, dir)
		}
	}
	for _, dir := range dirs {
		if isBlockDir(dir) {
			add(filepath.Clean(dir))
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if sub := filepath.Join(dir, e.Name()); e.IsDir() && isBlockDir(sub) {
				add(sub)
			}
		}
	}
	slices.SortFunc(blocks, func(a, b string) int {
		return ulid.MustParseStrict(filepath.Base(a)).Compare(ulid.MustParseStrict(filepath.Base(b)))
	})
	return blocks, nil
}

func isBlockDir(dir string) bool {
	if _, err := ulid.ParseStrict(filepath.Base(filepath.Clean(dir))); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, blockstore.MetaFilename))
	return err == nil
}

// backfill uploads blocks one after the other while the cluster validates the previous ones.
type backfill struct {
	c                 *client
	out               io.Writer
	validationTimeout time.Duration
	poll              time.Duration

	total                     int
	uploaded, skipped, failed int
	bytes                     int64
	samples                   uint64
	pending                   []pendingBlock
	start                     time.Time
}

type pendingBlock struct {
	n        int
	id       ulid.ULID
	samples  uint64
	deadline time.Time
}

// run uploads blocks and reports whether every one is in the cluster.
func (b *backfill) run(ctx context.Context, blocks []string) bool {
	b.total, b.start = len(blocks), time.Now()
	for i, dir := range blocks {
		if err := b.block(ctx, i+1, dir); err != nil {
			b.failed++
			b.printf(i+1, filepath.Base(dir), "failed: %v", err)
		}
		for len(b.pending) >= maxPendingValidations {
			b.waitOne(ctx)
		}
	}
	for len(b.pending) > 0 {
		b.waitOne(ctx)
	}
	elapsed := time.Since(b.start)
	_, _ = fmt.Fprintf(b.out, "backfill: %d blocks uploaded, %d already there, %d failed; %d bytes and %d samples in %s (%.0f samples/s)\n",
		b.uploaded, b.skipped, b.failed, b.bytes, b.samples, elapsed.Round(time.Millisecond), float64(b.samples)/elapsed.Seconds())
	return b.failed == 0
}

func (b *backfill) printf(n int, id, format string, args ...any) {
	_, _ = fmt.Fprintf(b.out, "block %s (%d/%d): %s\n", id, n, b.total, fmt.Sprintf(format, args...))
}

// block uploads one block unless the cluster has it; its validation is then awaited by waitOne.
func (b *backfill) block(ctx context.Context, n int, dir string) error {
	meta, err := blockstore.ReadMetaFromDir(dir)
	if err != nil {
		return err
	}
	id := meta.ULID
	if err := checkTombstones(dir); err != nil {
		return err
	}
	check, err := b.check(ctx, id)
	if err != nil && !isStatus(err, http.StatusNotFound) {
		return err
	}
	if err == nil {
		switch check.Result {
		case compactor.UploadStateComplete:
			b.skipped++
			b.printf(n, id.String(), "already uploaded, skipped")
			return nil
		case compactor.UploadStateValidating:
			b.printf(n, id.String(), "being validated by an earlier run, waiting")
			b.pending = append(b.pending, pendingBlock{n: n, id: id, samples: meta.Stats.NumSamples, deadline: time.Now().Add(b.validationTimeout)})
			return nil
		}
		// uploading (an interrupted run) or failed: start again.
	}
	rawMeta, err := os.ReadFile(filepath.Join(dir, blockstore.MetaFilename))
	if err != nil {
		return err
	}
	if _, err := b.c.do(ctx, http.MethodPost, b.path(id, "start"), rawMeta, http.StatusOK); err != nil {
		if isStatus(err, http.StatusConflict) {
			// Published since the check (another run), or being validated.
			b.pending = append(b.pending, pendingBlock{n: n, id: id, samples: meta.Stats.NumSamples, deadline: time.Now().Add(b.validationTimeout)})
			return nil
		}
		return err
	}
	files := []string{blockstore.BlockIndexFilename}
	entries, err := os.ReadDir(filepath.Join(dir, blockstore.ChunksDirname))
	if err != nil {
		return fmt.Errorf("list chunks: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, blockstore.ChunksDirname+"/"+e.Name())
		}
	}
	var size int64
	for _, f := range files {
		n, err := b.uploadFile(ctx, id, dir, f)
		if err != nil {
			return err
		}
		size += n
	}
	if _, err := b.c.do(ctx, http.MethodPost, b.path(id, "finish"), []byte{}, http.StatusOK); err != nil {
		return err
	}
	b.bytes += size
	b.printf(n, id.String(), "uploaded %d bytes in %d files, %d samples; validating", size, len(files), meta.Stats.NumSamples)
	b.pending = append(b.pending, pendingBlock{n: n, id: id, samples: meta.Stats.NumSamples, deadline: time.Now().Add(b.validationTimeout)})
	return nil
}

// waitOne waits for the oldest pending block's validation to end and reports it.
func (b *backfill) waitOne(ctx context.Context) {
	p := b.pending[0]
	b.pending = b.pending[1:]
	for {
		check, err := b.check(ctx, p.id)
		switch {
		case err != nil:
			b.failed++
			b.printf(p.n, p.id.String(), "failed: %v", err)
			return
		case check.Result == compactor.UploadStateComplete:
			b.uploaded++
			b.samples += p.samples
			b.printf(p.n, p.id.String(), "complete")
			return
		case check.Result == compactor.UploadStateFailed:
			b.failed++
			b.printf(p.n, p.id.String(), "failed: %s", check.Error)
			return
		case time.Now().After(p.deadline):
			b.failed++
			b.printf(p.n, p.id.String(), "failed: still %s after %s (--validation-timeout); run again to resume", check.Result, b.validationTimeout)
			return
		}
		time.Sleep(b.poll)
	}
}

func (b *backfill) path(id ulid.ULID, op string) string {
	return compactor.BlockUploadPathPrefix + id.String() + "/" + op
}

func (b *backfill) check(ctx context.Context, id ulid.ULID) (*compactor.UploadCheck, error) {
	body, err := b.c.do(ctx, http.MethodGet, b.path(id, "check"), nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var check compactor.UploadCheck
	if err := json.Unmarshal(body, &check); err != nil {
		return nil, fmt.Errorf("decode the answer of check: %w", err)
	}
	return &check, nil
}

// uploadFile streams one file of the block and returns its size.
func (b *backfill) uploadFile(ctx context.Context, id ulid.ULID, dir, rel string) (int64, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	p := b.path(id, "files") + "?path=" + url.QueryEscape(rel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.c.base+p, f)
	if err != nil {
		return 0, err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	b.c.authorize(req)
	resp, err := b.c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", rel, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return 0, &statusError{method: http.MethodPost, path: p, status: resp.StatusCode, body: string(msg)}
	}
	return st.Size(), nil
}

// checkTombstones refuses a block with deletions not yet applied: the API takes only the index and the
// chunks, so the deleted series would come back.
func checkTombstones(dir string) error {
	r, _, err := tombstones.ReadTombstones(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read tombstones: %w", err)
	}
	defer r.Close()
	if n := r.Total(); n > 0 {
		return fmt.Errorf("the block has %d tombstones (deleted series not yet compacted away); let Prometheus compact it, or rewrite it with `promtool tsdb dump` and create-blocks-from, first", n)
	}
	return nil
}
