package ingester

import (
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// exemplarBatchBytes bounds the labels of one QueryExemplars message. A tenant's whole exemplar buffer can
// belong to one series, so a series is split across messages rather than sent in one.
const exemplarBatchBytes = 1 << 20

// exemplarFixedBytes is what an exemplar costs on the wire besides its labels: value and timestamp.
const exemplarFixedBytes = 16

// maxExemplarMatcherSets bounds the matcher sets of one QueryExemplars request, as the querier's API
// bounds a query's selectors (querier.MaxExemplarSelectors): the exemplar storage tests every set against
// every series holding exemplars while it holds its lock, which appends of exemplars wait for (5,000 sets
// against 10,000 series: 3 s).
const maxExemplarMatcherSets = 100

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
	if len(req.MatcherSets) > maxExemplarMatcherSets {
		return status.Errorf(codes.InvalidArgument, "the request has %d matcher sets, more than the %d an exemplar query may have", len(req.MatcherSets), maxExemplarMatcherSets)
	}
	sets := make([][]*labels.Matcher, 0, len(req.MatcherSets))
	for _, set := range req.MatcherSets {
		ms, err := seriespb.ToLabelMatchers(set.Matchers)
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "invalid matcher: %v", err)
		}
		// An empty set would select every series; the API never sends one, as a selector has a matcher.
		if len(ms) == 0 {
			return status.Error(codes.InvalidArgument, "a matcher set has no matchers")
		}
		sets = append(sets, ms)
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
	batch := &ingesterpb.ExemplarQueryResponse{}
	batchBytes := 0
	for _, r := range results {
		if err := fetched.Add(0); err != nil {
			return err
		}
		seriesLabels := seriespb.FromLabels(r.SeriesLabels)
		out := &ingesterpb.SeriesExemplars{Labels: seriesLabels}
		batch.Series = append(batch.Series, out)
		batchBytes += labelsBytes(seriesLabels)
		for _, e := range r.Exemplars {
			ex := &ingesterpb.Exemplar{Labels: seriespb.FromLabels(e.Labels), Value: e.Value, TimestampMs: e.Ts}
			out.Exemplars = append(out.Exemplars, ex)
			batchBytes += labelsBytes(ex.Labels) + exemplarFixedBytes
			if batchBytes >= exemplarBatchBytes {
				if err := send(ctx, stream, batch); err != nil {
					return err
				}
				// The series goes on in the next message under the same labels.
				out = &ingesterpb.SeriesExemplars{Labels: seriesLabels}
				batch = &ingesterpb.ExemplarQueryResponse{Series: []*ingesterpb.SeriesExemplars{out}}
				batchBytes = labelsBytes(seriesLabels)
			}
		}
		if len(out.Exemplars) == 0 {
			batch.Series = batch.Series[:len(batch.Series)-1] // its exemplars all went in the last message
			batchBytes -= labelsBytes(seriesLabels)
		}
	}
	if len(batch.Series) > 0 {
		return send(ctx, stream, batch)
	}
	return nil
}

// labelsBytes is the size of a label set's names and values.
func labelsBytes(ls []*seriespb.Label) int {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value)
	}
	return n
}
