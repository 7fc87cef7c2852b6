package ingester

import (
	"context"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// exemplarBatchBytes bounds the labels of one QueryExemplars message. A tenant's whole exemplar buffer can
// belong to one series, so a series is split across messages rather than sent in one.
const exemplarBatchBytes = 1 << 20

// QueryExemplars streams the exemplars, within [start, end], of the tenant's series that match any of
// the request's matcher sets, in label order and in messages of about exemplarBatchBytes. The answer is
// bounded by the tenant's exemplar buffer (its share of max_global_exemplars_per_user); the stream fails
// once it crosses the request's series limit, as the other reads do.
func (i *Ingester) QueryExemplars(req *ingesterpb.ExemplarQueryRequest, stream ingesterpb.Ingester_QueryExemplarsServer) error {
	ctx := stream.Context()
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	sets, err := seriespb.ToExemplarMatcherSets(req.MatcherSets)
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		return nil
	}
	if err := i.begin(); err != nil {
		return err
	}
	defer i.end()
	t, release, err := i.acquireTenantDB(tenantID, false)
	if err != nil || t == nil {
		return err
	}
	defer release()
	q, err := t.db.ExemplarQuerier(ctx)
	if err != nil {
		return status.Errorf(codes.Internal, "open exemplar querier: %v", err)
	}
	// The exemplar storage answers sorted by series labels, all at once: the buffer bounds the answer.
	results, err := q.Select(req.StartMs, req.EndMs, sets...)
	if err != nil {
		return status.Errorf(codes.Internal, "select exemplars: %v", err)
	}
	fetched := seriespb.NewFetchCounter(req.Limits)
	batcher := seriespb.NewExemplarBatcher(exemplarBatchBytes, func(series []*seriespb.SeriesExemplars) error {
		return send(ctx, stream, &ingesterpb.ExemplarQueryResponse{Series: series})
	})
	for _, r := range results {
		if err := fetched.Add(0); err != nil {
			return err
		}
		if err := batcher.Add(r.SeriesLabels, r.Exemplars); err != nil {
			return err
		}
	}
	return batcher.Flush()
}

// everySeries selects every series of the exemplar storage.
var everySeries = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".*")}

// writeBlockExemplars writes into the block in dir, about to be shipped, the exemplars of its time range
// that the tenant's exemplar storage still holds, so that they outlive the buffer: store-gateways serve
// them. A block is shipped within a ship interval of being cut, while the buffer (sized by
// max_global_exemplars_per_user) usually still has its last hour; exemplars it dropped before are lost,
// as they are from the ingester's own answers.
func (t *tenantDB) writeBlockExemplars(ctx context.Context, dir string, meta *blockstore.Meta) error {
	q, err := t.db.ExemplarQuerier(ctx)
	if err != nil {
		return fmt.Errorf("open exemplar querier: %w", err)
	}
	// Both ends of Select are inclusive; a block's MaxTime is not.
	results, err := q.Select(meta.MinTime, meta.MaxTime-1, everySeries)
	if err != nil {
		return fmt.Errorf("select exemplars: %w", err)
	}
	// Select answers in label order, the order the file takes (the writer refuses any other).
	w, err := blockstore.NewExemplarWriter(dir)
	if err != nil {
		return err
	}
	for _, r := range results {
		if err := w.Append(r.SeriesLabels, r.Exemplars); err != nil {
			w.Abort()
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	meta.Strata.Exemplars = w.Count()
	return nil
}
