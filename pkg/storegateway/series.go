package storegateway

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
)

const (
	// seriesBatchChunks bounds the chunks fetched at once, and so a request's memory.
	seriesBatchChunks = 2048
	// maxResponseBytes is the approximate size at which a response message is sent, well under gRPC's
	// default 4 MiB receive limit.
	maxResponseBytes = 1 << 20
)

// mergedSeries is one series of the response: its labels and its chunks from every block.
type mergedSeries struct {
	lset  labels.Labels
	parts []blockSeries
}

// Series implements storegatewaypb.StoreGatewayServer. The stream fails, without sending the series
// that crossed it, once the answer crosses the request's fetch limits: this store-gateway's answer is
// part of the query's, so the query is over them too. A series limit is checked before any chunk is
// fetched.
func (s *StoreGateway) Series(req *storegatewaypb.SeriesRequest, srv storegatewaypb.StoreGateway_SeriesServer) error {
	defer s.observeDuration("Series", time.Now())
	ctx := srv.Context()
	q, err := parseQuery(ctx, req.BlockIds, req.MinTimeMs, req.MaxTimeMs, req.Matchers)
	if err != nil {
		return err
	}
	blocks, queried := s.acquireBlocks(q)
	defer releaseBlocks(blocks)
	// The querier learns at once which blocks to ask other store-gateways for.
	if err := srv.Send(&storegatewaypb.SeriesResponse{QueriedBlockIds: queried}); err != nil {
		return err
	}

	// One block with more series than the limit is enough to refuse the query.
	maxSeries := req.GetLimits().GetMaxSeries()
	atMost := 0
	if maxSeries > 0 {
		atMost = int(maxSeries) + 1
	}
	var perBlock [][]blockSeries
	for _, b := range blocksInRange(blocks, q.mint, q.maxt) {
		ss, err := b.selectSeries(ctx, q.matchers, q.shard, q.mint, q.maxt, atMost, s.postingsCache)
		if err != nil {
			return grpcError(err)
		}
		if len(ss) > 0 {
			perBlock = append(perBlock, ss)
		}
	}
	merged := mergeSeries(perBlock)
	if maxSeries > 0 && int64(len(merged)) > maxSeries {
		return seriespb.LimitStatus(seriespb.SeriesLimitError(maxSeries))
	}

	fetched := seriespb.NewFetchCounter(req.Limits)
	w := &responseWriter{srv: srv}
	for len(merged) > 0 {
		if err := ctx.Err(); err != nil {
			return grpcError(err)
		}
		// Take series until the batch holds enough chunks; always at least one series.
		n, nChunks := 0, 0
		for n < len(merged) && (n == 0 || nChunks < seriesBatchChunks) {
			for _, p := range merged[n].parts {
				nChunks += len(p.chunks)
			}
			n++
		}
		batch := merged[:n]
		merged = merged[n:]
		out, err := s.buildSeries(ctx, batch, req.SkipChunks)
		if err != nil {
			return grpcError(err)
		}
		for _, ps := range out {
			chunkBytes := 0
			for _, c := range ps.Chunks {
				chunkBytes += len(c.Data)
			}
			if err := fetched.Add(chunkBytes); err != nil {
				return err
			}
			if err := w.add(ps); err != nil {
				return err
			}
		}
	}
	return w.finish()
}

// mergeSeries merges each block's label-sorted series into one label-sorted list, with the series of equal
// labels in different blocks (replicas of the same data, or adjacent time ranges) joined.
func mergeSeries(perBlock [][]blockSeries) []mergedSeries {
	var total int
	for _, ss := range perBlock {
		total += len(ss)
	}
	out := make([]mergedSeries, 0, total)
	heads := make([]int, len(perBlock))
	for {
		// Linear scan over the blocks' heads: a query touches few blocks, so a heap would not pay off.
		minI := -1
		for i, ss := range perBlock {
			if heads[i] < len(ss) && (minI < 0 || labels.Compare(ss[heads[i]].lset, perBlock[minI][heads[minI]].lset) < 0) {
				minI = i
			}
		}
		if minI < 0 {
			return out
		}
		m := mergedSeries{lset: perBlock[minI][heads[minI]].lset}
		for i, ss := range perBlock {
			if heads[i] < len(ss) && labels.Equal(ss[heads[i]].lset, m.lset) {
				m.parts = append(m.parts, ss[heads[i]])
				heads[i]++
			}
		}
		out = append(out, m)
	}
}

// buildSeries fetches the chunks of a batch and converts it to its wire form, each series' chunks sorted by
// time with exact duplicates (the same chunk in replica blocks) removed.
func (s *StoreGateway) buildSeries(ctx context.Context, batch []mergedSeries, skipChunks bool) ([]*seriespb.Series, error) {
	out := make([]*seriespb.Series, len(batch))
	if skipChunks {
		for i, m := range batch {
			out[i] = &seriespb.Series{Labels: seriespb.FromLabels(m.lset)}
		}
		return out, nil
	}

	type located struct {
		meta chunks.Meta
		data chunkData
	}
	all := make([][]located, len(batch))
	var reqs []chunkRequest
	for i, m := range batch {
		n := 0
		for _, p := range m.parts {
			n += len(p.chunks)
		}
		all[i] = make([]located, 0, n)
		for _, p := range m.parts {
			for _, c := range p.chunks {
				all[i] = append(all[i], located{meta: c})
			}
		}
		// Requests point into all[i], which no longer grows.
		j := 0
		for _, p := range m.parts {
			for _, c := range p.chunks {
				reqs = append(reqs, chunkRequest{block: p.block, ref: c.Ref, out: &all[i][j].data})
				j++
			}
		}
	}
	if err := s.fetchChunks(ctx, reqs); err != nil {
		return nil, err
	}

	for i, m := range batch {
		cs := all[i]
		slices.SortStableFunc(cs, func(a, b located) int {
			if c := cmp.Compare(a.meta.MinTime, b.meta.MinTime); c != 0 {
				return c
			}
			return cmp.Compare(a.meta.MaxTime, b.meta.MaxTime)
		})
		ps := &seriespb.Series{Labels: seriespb.FromLabels(m.lset), Chunks: make([]*seriespb.Chunk, 0, len(cs))}
		for j, c := range cs {
			if j > 0 && isDuplicateChunk(cs[j-1].meta, cs[j-1].data, c.meta, c.data) {
				continue
			}
			ps.Chunks = append(ps.Chunks, &seriespb.Chunk{
				MinTimeMs: c.meta.MinTime,
				MaxTimeMs: c.meta.MaxTime,
				Encoding:  uint32(c.data.enc),
				Data:      c.data.data,
			})
		}
		out[i] = ps
	}
	return out, nil
}

func isDuplicateChunk(am chunks.Meta, a chunkData, bm chunks.Meta, b chunkData) bool {
	return am.MinTime == bm.MinTime && am.MaxTime == bm.MaxTime && a.enc == b.enc && bytes.Equal(a.data, b.data)
}

// responseWriter packs series into messages of about maxResponseBytes.
type responseWriter struct {
	srv   storegatewaypb.StoreGateway_SeriesServer
	resp  *storegatewaypb.SeriesResponse
	bytes int
}

func (w *responseWriter) add(ps *seriespb.Series) error {
	if w.resp == nil {
		w.resp = &storegatewaypb.SeriesResponse{}
	}
	w.resp.Series = append(w.resp.Series, ps)
	for _, l := range ps.Labels {
		w.bytes += len(l.Name) + len(l.Value) + 4
	}
	for _, c := range ps.Chunks {
		w.bytes += len(c.Data) + 24
	}
	if w.bytes < maxResponseBytes {
		return nil
	}
	return w.flush()
}

// flush sends the pending series, unless the querier has gone: a canceled query stops the work behind
// its stream at the next message, even where gRPC would still accept it into its buffers.
func (w *responseWriter) flush() error {
	resp := w.resp
	w.resp, w.bytes = nil, 0
	if err := w.srv.Context().Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	return w.srv.Send(resp)
}

// finish sends the remaining series.
func (w *responseWriter) finish() error {
	if w.resp == nil {
		return nil
	}
	return w.flush()
}
