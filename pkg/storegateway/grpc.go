package storegateway

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// queryParams is what every request carries: the tenant, the blocks, the time range and the matchers.
type queryParams struct {
	tenant   string
	blockIDs []string
	mint     int64
	maxt     int64
	// matchers select series in the blocks' indexes; the request's shard selector is not among them.
	matchers []*labels.Matcher
	// shard is the part of the matching series the request reads: a shard of a sharded query, or all.
	shard querysharding.Shard
}

// parseQuery validates a request's common fields; its errors are InvalidArgument, since retrying the same
// request elsewhere cannot help.
func parseQuery(ctx context.Context, blockIDs []string, mint, maxt int64, ms []*seriespb.LabelMatcher) (queryParams, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return queryParams{}, status.Error(codes.Unauthenticated, err.Error())
	}
	if mint > maxt {
		return queryParams{}, status.Errorf(codes.InvalidArgument, "min time %d is after max time %d", mint, maxt)
	}
	matchers, err := seriespb.ToLabelMatchers(ms)
	if err != nil {
		return queryParams{}, status.Errorf(codes.InvalidArgument, "invalid matchers: %v", err)
	}
	// No series carries the shard label: the index lookup goes without it (no matchers select every
	// series), and the series found are filtered by shard.
	shard, matchers, err := querysharding.RemoveShardMatcher(matchers)
	if err != nil {
		return queryParams{}, status.Error(codes.InvalidArgument, err.Error())
	}
	for _, id := range blockIDs {
		if _, err := ulid.ParseStrict(id); err != nil {
			return queryParams{}, status.Errorf(codes.InvalidArgument, "invalid block ID %q: %v", id, err)
		}
	}
	return queryParams{tenant: tenantID, blockIDs: blockIDs, mint: mint, maxt: maxt, matchers: matchers, shard: shard}, nil
}

// acquireBlocks returns the requested blocks of the tenant that this instance serves, each held until
// releaseBlocks so that a concurrent sync does not close it, and their IDs in request order. Requested
// blocks it does not serve are left out: the querier asks another store-gateway for them.
func (s *StoreGateway) acquireBlocks(q queryParams) ([]*block, []string) {
	var (
		out  []*block
		ids  []string
		seen = map[ulid.ULID]bool{}
	)
	s.mu.RLock()
	defer s.mu.RUnlock()
	loaded := s.blocks[q.tenant]
	for _, text := range q.blockIDs {
		id := ulid.MustParseStrict(text) // checked by parseQuery
		b := loaded[id]
		if b == nil || seen[id] {
			continue
		}
		seen[id] = true
		b.inflight.Add(1)
		out = append(out, b)
		ids = append(ids, text)
	}
	return out, ids
}

func releaseBlocks(bs []*block) {
	for _, b := range bs {
		b.inflight.Done()
	}
}

// blocksInRange are the blocks that may hold samples of [mint, maxt].
func blocksInRange(bs []*block, mint, maxt int64) []*block {
	return slices.DeleteFunc(slices.Clone(bs), func(b *block) bool { return !b.overlaps(mint, maxt) })
}

// grpcError maps an internal error to a gRPC status: cancellation and deadlines keep their codes,
// anything else is Internal (a retry on another replica may succeed).
func grpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// observeDuration records a request's duration by method; use with defer.
func (s *StoreGateway) observeDuration(method string, start time.Time) {
	s.metrics.requestDuration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}
