package ingester

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// checkHeadSeriesLimit refuses a read, with the status its stream would end with, when the tenant's
// head alone holds more series in the range than the read's series limit.
func checkHeadSeriesLimit(ctx context.Context, rr *readRequest, mint, maxt int64, limits *seriespb.FetchLimits) error {
	if limits == nil || limits.MaxSeries <= 0 {
		return nil
	}
	over, err := headOverSeriesLimit(ctx, rr.tenantDB.db, mint, maxt, rr.matchers, rr.shard, limits.MaxSeries)
	if err != nil {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Errorf(codes.Internal, "count series: %v", err)
	}
	if over {
		return seriespb.LimitStatus(seriespb.SeriesLimitError(limits.MaxSeries))
	}
	return nil
}

// headOverSeriesLimit reports whether the tenant's head alone holds more than limit series of shard that
// match ms and have samples in [mint, maxt]. Those series are all part of the answer, so the read is then
// over the limit, and it is refused before any series is selected, sorted and sent: a match-all over 2M
// series otherwise sorted them all first. Counting postings comes first and is cheap: a head with no more
// matching series than the limit cannot be over it, whatever their shards, and the read goes on unchecked.
func headOverSeriesLimit(ctx context.Context, db *tsdb.DB, mint, maxt int64, ms []*labels.Matcher, shard querysharding.Shard, limit int64) (bool, error) {
	// Restricted to the range, the head's index gives each series only the chunks that overlap it, by
	// their real time range (unrestricted, the open chunk ends at MaxInt64).
	ir, err := tsdb.NewRangeHead(db.Head(), mint, maxt).Index()
	if err != nil {
		return false, err
	}
	defer ir.Close()
	postings, err := tsdb.PostingsForMatchers(ctx, ir, ms...)
	if err != nil {
		return false, err
	}
	if n, err := countPostings(postings, limit+1); err != nil || n <= limit {
		return false, err
	}
	// More candidates than the limit: count those with samples in the range, up to one past the limit.
	if postings, err = tsdb.PostingsForMatchers(ctx, ir, ms...); err != nil {
		return false, err
	}
	var (
		builder labels.ScratchBuilder
		metas   []chunks.Meta
		found   int64
	)
	for i := 0; postings.Next(); i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err := ir.Series(postings.At(), &builder, &metas); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // removed by head GC meanwhile
			}
			return false, err
		}
		if len(metas) == 0 {
			continue
		}
		// The head's index hands out the series' own labels: no copy is made here.
		if shard.Sharded() && !shard.Contains(builder.Labels()) {
			continue
		}
		found++
		if found > limit {
			return true, nil
		}
	}
	return false, postings.Err()
}

// countPostings counts p's entries, stopping at upTo.
func countPostings(p index.Postings, upTo int64) (int64, error) {
	var n int64
	for n < upTo && p.Next() {
		n++
	}
	return n, p.Err()
}
