package storegateway

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
)

// labelValuesBatchBytes bounds the values of one LabelValues message, far below gRPC's message limit.
const labelValuesBatchBytes = 1 << 20

// LabelNames implements storegatewaypb.StoreGatewayServer. Without matchers it answers from the index's
// label names of every block overlapping the range; with matchers, from the matching series that have
// samples in the range.
func (s *StoreGateway) LabelNames(ctx context.Context, req *storegatewaypb.LabelNamesRequest) (*storegatewaypb.LabelNamesResponse, error) {
	defer s.observeDuration("LabelNames", time.Now())
	q, err := parseQuery(ctx, req.BlockIds, req.MinTimeMs, req.MaxTimeMs, req.Matchers)
	if err != nil {
		return nil, err
	}
	blocks, queried := s.acquireBlocks(q)
	defer releaseBlocks(blocks)

	names := map[string]struct{}{}
	for _, b := range blocksInRange(blocks, q.mint, q.maxt) {
		if len(q.matchers) == 0 && !q.shard.Sharded() {
			ns, err := b.index.LabelNames(ctx)
			if err != nil {
				return nil, grpcError(err)
			}
			for _, n := range ns {
				if _, ok := names[n]; !ok {
					// Strings from the index point into its memory map, which outlives no request.
					names[strings.Clone(n)] = struct{}{}
				}
			}
			continue
		}
		ss, err := b.selectSeries(ctx, q.matchers, q.shard, q.mint, q.maxt, 0, s.postingsCache)
		if err != nil {
			return nil, grpcError(err)
		}
		for _, bs := range ss {
			bs.lset.Range(func(l labels.Label) { names[l.Name] = struct{}{} })
		}
	}
	return &storegatewaypb.LabelNamesResponse{Names: slices.Sorted(maps.Keys(names)), QueriedBlockIds: queried}, nil
}

// LabelValues implements storegatewaypb.StoreGatewayServer, with the same semantics as LabelNames. The
// values are streamed in messages of about labelValuesBatchBytes, the first of which lists the queried
// blocks: a label can have as many values as the tenant has series.
func (s *StoreGateway) LabelValues(req *storegatewaypb.LabelValuesRequest, srv storegatewaypb.StoreGateway_LabelValuesServer) error {
	defer s.observeDuration("LabelValues", time.Now())
	ctx := srv.Context()
	q, err := parseQuery(ctx, req.BlockIds, req.MinTimeMs, req.MaxTimeMs, req.Matchers)
	if err != nil {
		return err
	}
	blocks, queried := s.acquireBlocks(q)
	defer releaseBlocks(blocks)

	values := map[string]struct{}{}
	for _, b := range blocksInRange(blocks, q.mint, q.maxt) {
		if len(q.matchers) == 0 && !q.shard.Sharded() {
			vs, err := b.index.SortedLabelValues(ctx, req.Name, nil)
			if err != nil {
				return grpcError(err)
			}
			for _, v := range vs {
				if _, ok := values[v]; !ok {
					values[strings.Clone(v)] = struct{}{}
				}
			}
			continue
		}
		ss, err := b.selectSeries(ctx, q.matchers, q.shard, q.mint, q.maxt, 0, s.postingsCache)
		if err != nil {
			return grpcError(err)
		}
		for _, bs := range ss {
			if v := bs.lset.Get(req.Name); v != "" {
				values[v] = struct{}{}
			}
		}
	}
	sorted := slices.Sorted(maps.Keys(values))
	resp := &storegatewaypb.LabelValuesResponse{QueriedBlockIds: queried}
	for {
		n, size := 0, 0
		for n < len(sorted) && (n == 0 || size < labelValuesBatchBytes) {
			size += len(sorted[n])
			n++
		}
		resp.Values, sorted = sorted[:n], sorted[n:]
		if err := ctx.Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		if err := srv.Send(resp); err != nil {
			return err
		}
		if len(sorted) == 0 {
			return nil
		}
		resp = &storegatewaypb.LabelValuesResponse{}
	}
}
