package querysharding

import (
	"context"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// mergedAnswers is the storage the outer query reads: the selector {__strata_sharded_subtree__="<i>"}
// selects the series of every shard's answer to subtree i. Each series has a point at the steps where
// its shard's answer had one and nowhere else; the outer query reads them with a lookback of 1ms, so
// that a series missing at a step is missing there, instead of taking the previous step's value as a
// selector over real data would for up to the lookback delta.
type mergedAnswers struct {
	subtrees [][]promql.Series
}

// Querier implements storage.Queryable.
func (a *mergedAnswers) Querier(int64, int64) (storage.Querier, error) { return a, nil }

// Select implements storage.Querier.
func (a *mergedAnswers) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	for _, m := range ms {
		if m.Name != subtreeLabel {
			continue
		}
		if i, err := strconv.Atoi(m.Value); err == nil && i >= 0 && i < len(a.subtrees) {
			return &seriesList{series: a.subtrees[i], next: -1}
		}
	}
	return storage.EmptySeriesSet()
}

// LabelValues implements storage.Querier; the outer query never asks.
func (a *mergedAnswers) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

// LabelNames implements storage.Querier; the outer query never asks.
func (a *mergedAnswers) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

// Close implements storage.Querier.
func (a *mergedAnswers) Close() error { return nil }

// seriesList is a storage.SeriesSet over series in memory.
type seriesList struct {
	series []promql.Series
	next   int
}

func (s *seriesList) Next() bool {
	s.next++
	return s.next < len(s.series)
}

func (s *seriesList) At() storage.Series                { return promql.NewStorageSeries(s.series[s.next]) }
func (s *seriesList) Err() error                        { return nil }
func (s *seriesList) Warnings() annotations.Annotations { return nil }
