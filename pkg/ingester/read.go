package ingester

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Bounds of one QueryStream message: small enough to stay far below gRPC's message limit, large enough to
// amortise the per-message cost.
const (
	queryStreamBatchSeries = 128
	queryStreamBatchBytes  = 1 << 20
)

// readRequest is the part of every read RPC that is handled the same way: tenant, time range, matchers.
type readRequest struct {
	tenantDB *tenantDB
	querier  storage.Querier
	matchers []*labels.Matcher
	release  func()
}

// close releases the querier and the tenant's TSDB.
func (rr *readRequest) close() {
	_ = rr.querier.Close()
	rr.release()
}

// openRead resolves the tenant and opens a querier over [mint, maxt]. It returns a nil request when the
// tenant has no data in this ingester, which is not an error.
func (i *Ingester) openRead(ctx context.Context, mint, maxt int64, pbMatchers []*ingesterpb.LabelMatcher) (*readRequest, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	matchers, err := ingesterpb.ToLabelMatchers(pbMatchers)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid matcher: %v", err)
	}
	t, release, err := i.acquireTenantDB(tenantID, false)
	if err != nil || t == nil {
		return nil, err
	}
	q, err := t.db.Querier(mint, maxt)
	if err != nil {
		release()
		return nil, status.Errorf(codes.Internal, "open querier: %v", err)
	}
	return &readRequest{tenantDB: t, querier: q, matchers: matchers, release: release}, nil
}

// QueryStream streams the matching series in label order. Samples are re-encoded into fresh chunks, so the
// stream never shares memory with the head chunk that appends are still writing to.
func (i *Ingester) QueryStream(req *ingesterpb.QueryRequest, stream ingesterpb.Ingester_QueryStreamServer) error {
	ctx := stream.Context()
	if err := i.begin(); err != nil {
		return err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers)
	if err != nil || rr == nil {
		return err
	}
	defer rr.close()

	set := rr.querier.Select(ctx, true, &storage.SelectHints{Start: req.StartMs, End: req.EndMs}, rr.matchers...)
	batch := &ingesterpb.QueryStreamResponse{}
	batchBytes := 0
	var it chunks.Iterator
	for set.Next() {
		series := set.At()
		out := &ingesterpb.StreamSeries{Labels: ingesterpb.FromLabels(series.Labels())}
		it = storage.NewSeriesToChunkEncoder(series).Iterator(it)
		for it.Next() {
			meta := it.At()
			data := meta.Chunk.Bytes()
			out.Chunks = append(out.Chunks, &ingesterpb.Chunk{
				MinTimeMs: meta.MinTime,
				MaxTimeMs: meta.MaxTime,
				Encoding:  uint32(meta.Chunk.Encoding()),
				Data:      data,
			})
			batchBytes += len(data)
		}
		if err := it.Err(); err != nil {
			return status.Errorf(codes.Internal, "encode chunks: %v", err)
		}
		batch.Series = append(batch.Series, out)
		if len(batch.Series) >= queryStreamBatchSeries || batchBytes >= queryStreamBatchBytes {
			if err := stream.Send(batch); err != nil {
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
		return stream.Send(batch)
	}
	return nil
}

// LabelNames returns the label names of the matching series in the time range.
func (i *Ingester) LabelNames(ctx context.Context, req *ingesterpb.LabelNamesRequest) (*ingesterpb.LabelNamesResponse, error) {
	if err := i.begin(); err != nil {
		return nil, err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers)
	if err != nil || rr == nil {
		return &ingesterpb.LabelNamesResponse{}, err
	}
	defer rr.close()
	names, _, err := rr.querier.LabelNames(ctx, &storage.LabelHints{Limit: int(req.Limit)}, rr.matchers...)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "label names: %v", err)
	}
	return &ingesterpb.LabelNamesResponse{Names: names}, nil
}

// LabelValues returns the values of one label among the matching series in the time range.
func (i *Ingester) LabelValues(ctx context.Context, req *ingesterpb.LabelValuesRequest) (*ingesterpb.LabelValuesResponse, error) {
	if err := i.begin(); err != nil {
		return nil, err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers)
	if err != nil || rr == nil {
		return &ingesterpb.LabelValuesResponse{}, err
	}
	defer rr.close()
	values, _, err := rr.querier.LabelValues(ctx, req.Name, &storage.LabelHints{Limit: int(req.Limit)}, rr.matchers...)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "label values: %v", err)
	}
	return &ingesterpb.LabelValuesResponse{Values: values}, nil
}

// Series returns the label sets of the matching series, without samples.
func (i *Ingester) Series(ctx context.Context, req *ingesterpb.SeriesRequest) (*ingesterpb.SeriesResponse, error) {
	if err := i.begin(); err != nil {
		return nil, err
	}
	defer i.end()
	rr, err := i.openRead(ctx, req.StartMs, req.EndMs, req.Matchers)
	if err != nil || rr == nil {
		return &ingesterpb.SeriesResponse{}, err
	}
	defer rr.close()
	hints := &storage.SelectHints{Start: req.StartMs, End: req.EndMs, Func: "series", Limit: int(req.Limit)}
	set := rr.querier.Select(ctx, true, hints, rr.matchers...)
	resp := &ingesterpb.SeriesResponse{}
	for set.Next() {
		if req.Limit > 0 && int64(len(resp.Series)) >= req.Limit {
			break
		}
		resp.Series = append(resp.Series, &ingesterpb.LabelSet{Labels: ingesterpb.FromLabels(set.At().Labels())})
	}
	if err := set.Err(); err != nil {
		return nil, status.Errorf(codes.Internal, "select series: %v", err)
	}
	return resp, nil
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
