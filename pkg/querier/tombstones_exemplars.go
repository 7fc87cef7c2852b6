package querier

import (
	"context"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// IngesterReads is what only ingesters answer, as IngesterQueryable does: metadata and exemplars.
type IngesterReads interface {
	MetricsMetadata(ctx context.Context, metric string, limit, limitPerMetric int) (map[string][]MetricMetadata, error)
	QueryExemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, limits ExemplarLimits) ([]exemplar.QueryResult, error)
}

// TombstoneIngesterSource is the ingesters' metadata and exemplars with the exemplars of deleted samples
// left out: a series deletion hides them at once, as it hides the samples.
type TombstoneIngesterSource struct {
	IngesterReads
	Tombstones TombstoneSource
}

// QueryExemplars answers the ingesters' exemplars less those at a time a pending tombstone deletes from
// their series, and series left without exemplars.
func (s TombstoneIngesterSource) QueryExemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, limits ExemplarLimits) ([]exemplar.QueryResult, error) {
	res, err := s.IngesterReads.QueryExemplars(ctx, start, end, matcherSets, limits)
	if err != nil || len(res) == 0 {
		return res, err
	}
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return res, nil // nothing to filter by: the wrapped source answered for no single tenant
	}
	pending, err := s.Tombstones.Pending(ctx, id)
	if err != nil || len(pending) == 0 {
		return res, err
	}
	out := make([]exemplar.QueryResult, 0, len(res))
	for _, r := range res {
		ivs := deletedIntervals(pending, r.SeriesLabels)
		if len(ivs) == 0 {
			out = append(out, r)
			continue
		}
		kept := make([]exemplar.Exemplar, 0, len(r.Exemplars))
		for _, e := range r.Exemplars {
			deleted := false
			for _, iv := range ivs {
				if iv.InBounds(e.Ts) {
					deleted = true
					break
				}
			}
			if !deleted {
				kept = append(kept, e)
			}
		}
		if len(kept) > 0 {
			r.Exemplars = kept
			out = append(out, r)
		}
	}
	return out, nil
}
