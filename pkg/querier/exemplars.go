package querier

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// MaxExemplarSelectors bounds the distinct selectors of an exemplar query. Each ingester tests every
// selector against every series holding exemplars while it holds its exemplar storage's lock, which the
// tenant's appends of exemplars wait for; dashboards' queries have a handful.
const MaxExemplarSelectors = 100

// QueryExemplars returns the exemplars within [start, end] of the tenant's series that match any of
// matcherSets (one per selector of a query), as Prometheus' exemplar querier answers them: series in
// label order, each series' exemplars oldest first. Only ingesters hold exemplars (blocks have none), so
// the answer covers the ingesters' exemplar buffers, whatever the range. Every ingester of the read set
// is asked and the replicas' copies of an exemplar are kept once; failures within the set's budget are
// left out. maxSeries (0: none) bounds the series of the answer: an ingester that crosses it stops
// sending, and the query fails with the max_fetched_series_per_query error.
func (q *IngesterQueryable) QueryExemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, maxSeries int) ([]exemplar.QueryResult, error) {
	if len(matcherSets) == 0 {
		return []exemplar.QueryResult{}, nil
	}
	req := &ingesterpb.ExemplarQueryRequest{StartMs: start, EndMs: end}
	for _, ms := range matcherSets {
		req.MatcherSets = append(req.MatcherSets, &ingesterpb.LabelMatchers{Matchers: seriespb.FromLabelMatchers(ms)})
	}
	if maxSeries > 0 {
		req.Limits = &seriespb.FetchLimits{MaxSeries: int64(maxSeries)}
	}
	answers, err := askAllIngesters(ctx, q, func(ctx context.Context, client ingesterpb.IngesterClient) ([]*ingesterpb.SeriesExemplars, error) {
		stream, err := client.QueryExemplars(ctx, req)
		if err != nil {
			return nil, err
		}
		var out []*ingesterpb.SeriesExemplars
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			out = append(out, msg.Series...)
		}
	})
	if err != nil {
		return nil, err
	}
	merged := mergeExemplars(answers)
	if maxSeries > 0 && len(merged) > maxSeries {
		// Each ingester was within the limit, their union is not.
		return nil, seriespb.SeriesLimitError(int64(maxSeries))
	}
	return merged, nil
}

// askAllIngesters calls f on every ingester of the read set in parallel and returns the answers of those
// that succeeded, as long as the failures are within the set's budget. An ingester that stops at one of
// the tenant's limits fails the request whatever the budget, with that limit's error: the other
// ingesters' answers would otherwise be taken for the whole.
func askAllIngesters[T any](ctx context.Context, q *IngesterQueryable, f func(context.Context, ingesterpb.IngesterClient) (T, error)) ([]T, error) {
	rs, err := q.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		limitMtx sync.Mutex
		limitErr error
	)
	results, err := rs.Do(ctx, func(ctx context.Context, inst *ring.InstanceDesc) (any, error) {
		client, err := q.clients.GetClientFor(inst.Addr)
		if err != nil {
			return nil, err
		}
		v, err := f(ctx, client)
		if le, ok := seriespb.LimitErrorOf(err); ok {
			limitMtx.Lock()
			if limitErr == nil {
				limitErr = le
			}
			limitMtx.Unlock()
			cancel()
		}
		return v, err
	})
	limitMtx.Lock()
	defer limitMtx.Unlock()
	if limitErr != nil {
		return nil, limitErr
	}
	if err != nil {
		return nil, err
	}
	out := make([]T, len(results))
	for i, r := range results {
		out[i] = r.(T)
	}
	return out, nil
}

// exemplarKey identifies an exemplar within its series: the replicas of a series hold the same
// exemplars, and an exemplar store keeps one of each (timestamp, value, labels). The value's bits make
// NaN equal to itself.
type exemplarKey struct {
	ts     int64
	value  uint64
	labels string
}

// mergeExemplars unites the ingesters' answers: each series once, in label order; its exemplars once
// each, oldest first. A series may come from several ingesters, and in several messages of one.
func mergeExemplars(answers [][]*ingesterpb.SeriesExemplars) []exemplar.QueryResult {
	type series struct {
		labels    labels.Labels
		exemplars []exemplar.Exemplar
		seen      map[exemplarKey]struct{}
	}
	var (
		builder labels.ScratchBuilder
		buf     []byte
	)
	bySeries := map[string]*series{}
	for _, answer := range answers {
		for _, s := range answer {
			ls := seriespb.ToLabels(&builder, s.Labels)
			buf = ls.Bytes(buf)
			out, ok := bySeries[string(buf)]
			if !ok {
				out = &series{labels: ls, seen: map[exemplarKey]struct{}{}}
				bySeries[string(buf)] = out
			}
			for _, e := range s.Exemplars {
				els := seriespb.ToLabels(&builder, e.Labels)
				buf = els.Bytes(buf)
				key := exemplarKey{ts: e.TimestampMs, value: math.Float64bits(e.Value), labels: string(buf)}
				if _, dup := out.seen[key]; dup {
					continue
				}
				out.seen[key] = struct{}{}
				out.exemplars = append(out.exemplars, exemplar.Exemplar{Labels: els, Value: e.Value, Ts: e.TimestampMs, HasTs: true})
			}
		}
	}
	merged := make([]exemplar.QueryResult, 0, len(bySeries))
	for _, s := range bySeries {
		// Stable: exemplars of one timestamp keep the order their ingester stored them in.
		slices.SortStableFunc(s.exemplars, func(a, b exemplar.Exemplar) int {
			switch {
			case a.Ts < b.Ts:
				return -1
			case a.Ts > b.Ts:
				return 1
			}
			return 0
		})
		merged = append(merged, exemplar.QueryResult{SeriesLabels: s.labels, Exemplars: s.exemplars})
	}
	slices.SortFunc(merged, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return merged
}
