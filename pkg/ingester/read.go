package ingester

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Bounds of one streamed message: small enough to stay far below gRPC's message limit, large enough to
// amortise the per-message cost.
const (
	queryStreamBatchSeries = 128
	queryStreamBatchBytes  = 1 << 20
	// labelBatchBytes bounds the label names and values of one Series or LabelValues message.
	labelBatchBytes = 1 << 20
)

// readRequest is the part of every read RPC that is handled the same way: tenant, time range, matchers.
type readRequest struct {
	tenantDB *tenantDB
	querier  storage.Querier      // set unless the request asked for chunks
	chunks   storage.ChunkQuerier // set when it did
	// matchers are the request's matchers for the TSDB, without the shard selector.
	matchers []*labels.Matcher
	// shard is the part of the matching series the request reads: a shard of a sharded query, or all.
	shard   querysharding.Shard
	release func()
}

// allSeries selects every series: the TSDB reads it as its all-postings key. It stands in for a
// request whose only matcher was its shard selector, since the TSDB selects nothing without matchers.
var allSeries = labels.MustNewMatcher(labels.MatchEqual, "", "")

// close releases the querier and the tenant's TSDB.
func (rr *readRequest) close() {
	if rr.querier != nil {
		_ = rr.querier.Close()
	}
	if rr.chunks != nil {
		_ = rr.chunks.Close()
	}
	rr.release()
}

// openRead resolves the tenant and opens a querier over [mint, maxt] (a chunk querier when wantChunks).
// It returns a nil request when the tenant has no data in this ingester, which is not an error.
func (i *Ingester) openRead(ctx context.Context, mint, maxt int64, pbMatchers []*seriespb.LabelMatcher, wantChunks bool) (*readRequest, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	matchers, err := seriespb.ToLabelMatchers(pbMatchers)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid matcher: %v", err)
	}
	// No series carries the shard label: the TSDB must not see its matcher, and the series it selects
	// are filtered by shard instead.
	shard, matchers, err := querysharding.RemoveShardMatcher(matchers)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if shard.Sharded() && len(matchers) == 0 {
		matchers = []*labels.Matcher{allSeries}
	}
	t, release, err := i.acquireTenantDB(tenantID, false)
	if err != nil || t == nil {
		return nil, err
	}
	rr := &readRequest{tenantDB: t, matchers: matchers, shard: shard, release: release}
	if wantChunks {
		rr.chunks, err = t.db.ChunkQuerier(mint, maxt)
	} else {
		rr.querier, err = t.db.Querier(mint, maxt)
	}
	if err != nil {
		release()
		return nil, status.Errorf(codes.Internal, "open querier: %v", err)
	}
	return rr, nil
}

// QueryStream streams the matching series in label order, as the TSDB's own chunks: nothing is decoded or
// re-encoded here. The TSDB hands out a copy of a series' open head chunk, so the stream never shares
// memory that appends are still writing to; chunks that overlap (out-of-order data) come merged. The
// stream fails, without sending the series that crossed it, once the answer crosses the request's fetch
// limits: this ingester's answer is part of the query's, so the query is over them too.
func (i *Ingester) QueryStream(req *ingesterpb.QueryRequest, stream ingesterpb.Ingester_QueryStreamServer) error {
	ctx := stream.Context()
	if err := i.begin(); err != nil {
		return err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers, true)
	if err != nil || rr == nil {
		return err
	}
	defer rr.close()
	if err := checkHeadSeriesLimit(ctx, rr, req.StartMs, req.EndMs, req.Limits); err != nil {
		return err
	}

	// Chunks that cross the range's edges are sent whole rather than cut and re-encoded: the samples
	// outside are real, and the querier's engine reads only the range it needs.
	hints := &storage.SelectHints{Start: req.StartMs, End: req.EndMs, DisableTrimming: true}
	set := rr.chunks.Select(ctx, true, hints, rr.matchers...)
	fetched := seriespb.NewFetchCounter(req.Limits)
	batch := &ingesterpb.QueryStreamResponse{}
	batchBytes := 0
	var it chunks.Iterator
	for set.Next() {
		series := set.At()
		if !rr.shard.Contains(series.Labels()) {
			continue
		}
		out := &seriespb.Series{Labels: seriespb.FromLabels(series.Labels())}
		seriesBytes := 0
		it = series.Iterator(it)
		for it.Next() {
			meta := it.At()
			data := meta.Chunk.Bytes()
			out.Chunks = append(out.Chunks, &seriespb.Chunk{
				MinTimeMs: meta.MinTime,
				MaxTimeMs: meta.MaxTime,
				Encoding:  uint32(meta.Chunk.Encoding()),
				Data:      data,
			})
			seriesBytes += len(data)
		}
		if err := it.Err(); err != nil {
			return status.Errorf(codes.Internal, "read chunks: %v", err)
		}
		if err := fetched.Add(seriesBytes); err != nil {
			return err
		}
		batch.Series = append(batch.Series, out)
		batchBytes += seriesBytes
		// Send marshals the batch before it returns, while the querier still holds the chunks' memory.
		if len(batch.Series) >= queryStreamBatchSeries || batchBytes >= queryStreamBatchBytes {
			if err := send(ctx, stream, batch); err != nil {
				return err
			}
			batch = &ingesterpb.QueryStreamResponse{}
			batchBytes = 0
		}
	}
	if err := set.Err(); err != nil {
		return status.Errorf(codes.Internal, "select series: %v", err)
	}
	if len(batch.Series) > 0 {
		return send(ctx, stream, batch)
	}
	return nil
}

// send sends one message of a stream unless the caller has gone: a canceled query stops the work behind
// its stream at the next message, even where gRPC would still accept it into its buffers.
func send[T any](ctx context.Context, stream interface{ Send(*T) error }, msg *T) error {
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	return stream.Send(msg)
}

// LabelNames returns the label names of the matching series in the time range.
func (i *Ingester) LabelNames(ctx context.Context, req *ingesterpb.LabelNamesRequest) (*ingesterpb.LabelNamesResponse, error) {
	if err := i.begin(); err != nil {
		return nil, err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers, false)
	if err != nil || rr == nil {
		return &ingesterpb.LabelNamesResponse{}, err
	}
	defer rr.close()
	var names []string
	if rr.shard.Sharded() {
		names, err = shardLabelStrings(ctx, rr, req.StartMs, req.EndMs, req.Limit, func(ls labels.Labels, add func(string)) {
			ls.Range(func(l labels.Label) { add(l.Name) })
		})
	} else {
		names, _, err = rr.querier.LabelNames(ctx, &storage.LabelHints{Limit: int(req.Limit)}, rr.matchers...)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "label names: %v", err)
	}
	return &ingesterpb.LabelNamesResponse{Names: names}, nil
}

// LabelValues streams the values of one label among the matching series in the time range, sorted, in
// messages of about labelBatchBytes: a label can have as many values as the tenant has series.
func (i *Ingester) LabelValues(req *ingesterpb.LabelValuesRequest, stream ingesterpb.Ingester_LabelValuesServer) error {
	ctx := stream.Context()
	if err := i.begin(); err != nil {
		return err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers, false)
	if err != nil || rr == nil {
		return err
	}
	defer rr.close()
	var values []string
	if rr.shard.Sharded() {
		values, err = shardLabelStrings(ctx, rr, req.StartMs, req.EndMs, req.Limit, func(ls labels.Labels, add func(string)) {
			if v := ls.Get(req.Name); v != "" {
				add(v)
			}
		})
	} else {
		values, _, err = rr.querier.LabelValues(ctx, req.Name, &storage.LabelHints{Limit: int(req.Limit)}, rr.matchers...)
	}
	if err != nil {
		return status.Errorf(codes.Internal, "label values: %v", err)
	}
	for len(values) > 0 {
		n, size := 0, 0
		for n < len(values) && (n == 0 || size < labelBatchBytes) {
			size += len(values[n])
			n++
		}
		if err := send(ctx, stream, &ingesterpb.LabelValuesResponse{Values: values[:n]}); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}

// shardLabelStrings collects, sorted and cut at limit (0: no limit), the strings that collect finds in
// the label sets of the shard's series among those matching in [mint, maxt]. The TSDB's index answers
// label names and values for all the matching series at once; a shard has to look at each series.
func shardLabelStrings(ctx context.Context, rr *readRequest, mint, maxt, limit int64, collect func(labels.Labels, func(string))) ([]string, error) {
	found := map[string]struct{}{}
	add := func(s string) {
		if _, ok := found[s]; !ok {
			// The TSDB's strings may point into memory it reuses once the querier is closed.
			found[strings.Clone(s)] = struct{}{}
		}
	}
	set := rr.querier.Select(ctx, false, &storage.SelectHints{Start: mint, End: maxt, Func: "series"}, rr.matchers...)
	for set.Next() {
		if ls := set.At().Labels(); rr.shard.Contains(ls) {
			collect(ls, add)
		}
	}
	if err := set.Err(); err != nil {
		return nil, err
	}
	out := slices.Sorted(maps.Keys(found))
	if limit > 0 && int64(len(out)) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Series streams the label sets of the matching series, without samples, in label order and in messages
// of about labelBatchBytes. It ends after req.Limit series, and fails once the answer crosses the
// request's series limit.
func (i *Ingester) Series(req *ingesterpb.SeriesRequest, stream ingesterpb.Ingester_SeriesServer) error {
	ctx := stream.Context()
	if err := i.begin(); err != nil {
		return err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers, false)
	if err != nil || rr == nil {
		return err
	}
	defer rr.close()
	// An answer cut at the request's own limit first never reaches the series limit.
	if req.Limit <= 0 || req.Limits == nil || req.Limit > req.Limits.MaxSeries {
		if err := checkHeadSeriesLimit(ctx, rr, req.StartMs, req.EndMs, req.Limits); err != nil {
			return err
		}
	}
	hints := &storage.SelectHints{Start: req.StartMs, End: req.EndMs, Func: "series", Limit: int(req.Limit)}
	if rr.shard.Sharded() {
		hints.Limit = 0 // the TSDB would cut before the shard's series are picked out; the loop cuts after
	}
	set := rr.querier.Select(ctx, true, hints, rr.matchers...)
	fetched := seriespb.NewFetchCounter(req.Limits)
	batch := &ingesterpb.SeriesResponse{}
	batchBytes, sent := 0, int64(0)
	for set.Next() {
		if req.Limit > 0 && sent >= req.Limit {
			break
		}
		if !rr.shard.Contains(set.At().Labels()) {
			continue
		}
		if err := fetched.Add(0); err != nil {
			return err
		}
		out := &seriespb.Series{Labels: seriespb.FromLabels(set.At().Labels())}
		for _, l := range out.Labels {
			batchBytes += len(l.Name) + len(l.Value)
		}
		batch.Series = append(batch.Series, out)
		sent++
		if batchBytes >= labelBatchBytes {
			if err := send(ctx, stream, batch); err != nil {
				return err
			}
			batch, batchBytes = &ingesterpb.SeriesResponse{}, 0
		}
	}
	if err := set.Err(); err != nil {
		return status.Errorf(codes.Internal, "select series: %v", err)
	}
	if len(batch.Series) > 0 {
		return send(ctx, stream, batch)
	}
	return nil
}

// MetricsMetadata returns the metric metadata the tenant sent through remote write.
// Like the other reads it is refused once Stop has started, so that a querier asks another replica
// rather than taking an empty answer for the truth.
func (i *Ingester) MetricsMetadata(ctx context.Context, req *ingesterpb.MetricsMetadataRequest) (*ingesterpb.MetricsMetadataResponse, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if err := i.begin(); err != nil {
		return nil, err
	}
	defer i.end()
	t, release, err := i.acquireTenantDB(tenantID, false)
	if err != nil || t == nil {
		return &ingesterpb.MetricsMetadataResponse{}, err
	}
	defer release()
	return &ingesterpb.MetricsMetadataResponse{
		Metadata: t.metadata.list(req.Metric, int(req.Limit), int(req.LimitPerMetric)),
	}, nil
}
