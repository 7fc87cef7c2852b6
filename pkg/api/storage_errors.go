package api

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-metrics/strata/pkg/validation"
)

// The PromQL engine returns a storage failure (an ingester that cannot be reached) as the plain error it
// got, which the API cannot tell from a query's own failure (too many samples) and would answer 422, a
// status clients do not retry. errStorageQueryable marks every error of the queryable as
// promql.ErrStorage on its way into the engine so that queryError answers it with a 5xx instead; all but
// a query over one of the tenant's limits (max_fetched_series_per_query), which is the query's own
// failure and stays 422.
type errStorageQueryable struct{ storage.Queryable }

func (q errStorageQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	querier, err := q.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, promql.ErrStorage{Err: err}
	}
	return errStorageQuerier{querier}, nil
}

type errStorageQuerier struct{ storage.Querier }

func (q errStorageQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	return errStorageSeriesSet{q.Querier.Select(ctx, sortSeries, hints, matchers...)}
}

func (q errStorageQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	values, warnings, err := q.Querier.LabelValues(ctx, name, hints, matchers...)
	return values, warnings, asStorageError(err)
}

func (q errStorageQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	names, warnings, err := q.Querier.LabelNames(ctx, hints, matchers...)
	return names, warnings, asStorageError(err)
}

type errStorageSeriesSet struct{ storage.SeriesSet }

func (s errStorageSeriesSet) Err() error { return asStorageError(s.SeriesSet.Err()) }

func asStorageError(err error) error {
	var limitErr *validation.LimitError
	if err == nil || errors.As(err, &limitErr) {
		return err
	}
	return promql.ErrStorage{Err: err}
}
