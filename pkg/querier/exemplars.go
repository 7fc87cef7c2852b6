package querier

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"golang.org/x/sync/errgroup"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// MaxExemplarSelectors bounds the distinct selectors of an exemplar query: each becomes a matcher set,
// which ingesters and store-gateways bound (seriespb.MaxExemplarMatcherSets); dashboards' queries have a
// handful.
const MaxExemplarSelectors = seriespb.MaxExemplarMatcherSets

// ExemplarLimits bound one exemplar query; 0 is no bound.
type ExemplarLimits struct {
	// MaxSeries bounds the series of the answer (max_fetched_series_per_query): a source that crosses it
	// stops sending.
	MaxSeries int
	// MaxExemplars bounds the exemplars received from all sources, replicas' copies included
	// (max_fetched_exemplars_per_query): they are all held until merged.
	MaxExemplars int
}

// exemplarBudget counts the exemplars an exemplar query received from its sources, which answer
// concurrently.
type exemplarBudget struct {
	max int
	n   atomic.Int64
}

func (b *exemplarBudget) take(series []*seriespb.SeriesExemplars) error {
	if b.max <= 0 {
		return nil
	}
	var n int64
	for _, s := range series {
		n += int64(len(s.Exemplars))
	}
	if b.n.Add(n) > int64(b.max) {
		return seriespb.ExemplarsLimitError(int64(b.max))
	}
	return nil
}

func exemplarRequestParts(matcherSets [][]*labels.Matcher, limits ExemplarLimits) ([]*seriespb.LabelMatchers, *seriespb.FetchLimits) {
	sets := make([]*seriespb.LabelMatchers, 0, len(matcherSets))
	for _, ms := range matcherSets {
		sets = append(sets, &seriespb.LabelMatchers{Matchers: seriespb.FromLabelMatchers(ms)})
	}
	var fetch *seriespb.FetchLimits
	if limits.MaxSeries > 0 || limits.MaxExemplars > 0 {
		fetch = &seriespb.FetchLimits{MaxSeries: int64(max(limits.MaxSeries, 0)), MaxExemplars: int64(max(limits.MaxExemplars, 0))}
	}
	return sets, fetch
}

// QueryExemplars returns the exemplars within [start, end] of the tenant's series that match any of
// matcherSets (one per selector of a query), as Prometheus' exemplar querier answers them: series in
// label order, each series' exemplars oldest first. Only ingesters are asked; ExemplarQueryable adds
// the blocks' exemplars. Every ingester of the read set is asked and the replicas' copies of an exemplar
// are kept once; failures within the set's budget are left out.
func (q *IngesterQueryable) QueryExemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, limits ExemplarLimits) ([]exemplar.QueryResult, error) {
	if len(matcherSets) == 0 {
		return []exemplar.QueryResult{}, nil
	}
	answers, err := q.ingesterExemplars(ctx, start, end, matcherSets, limits, &exemplarBudget{max: limits.MaxExemplars})
	if err != nil {
		return nil, err
	}
	return mergeExemplarAnswers(answers, limits)
}

// ingesterExemplars asks every ingester of the read set for its exemplars, as QueryExemplars answers them, and
// returns their answers unmerged.
func (q *IngesterQueryable) ingesterExemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, limits ExemplarLimits, budget *exemplarBudget) ([][]*seriespb.SeriesExemplars, error) {
	req := &ingesterpb.ExemplarQueryRequest{StartMs: start, EndMs: end}
	req.MatcherSets, req.Limits = exemplarRequestParts(matcherSets, limits)
	return askAllIngesters(ctx, q, func(ctx context.Context, client ingesterpb.IngesterClient) ([]*seriespb.SeriesExemplars, error) {
		stream, err := client.QueryExemplars(ctx, req)
		if err != nil {
			return nil, err
		}
		var out []*seriespb.SeriesExemplars
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			if err := budget.take(msg.Series); err != nil {
				return nil, err
			}
			out = append(out, msg.Series...)
		}
	})
}

// mergeExemplarAnswers merges the sources' answers and checks the union against the series limit: each
// source was within it, their union may not be.
func mergeExemplarAnswers(answers [][]*seriespb.SeriesExemplars, limits ExemplarLimits) ([]exemplar.QueryResult, error) {
	merged := mergeExemplars(answers)
	if limits.MaxSeries > 0 && len(merged) > limits.MaxSeries {
		return nil, seriespb.SeriesLimitError(int64(limits.MaxSeries))
	}
	return merged, nil
}

// ExemplarQueryable answers exemplar queries from ingesters and from the exemplar files of the blocks in
// object storage, which keep the exemplars of a block's range that the ingester that cut it still held.
type ExemplarQueryable struct {
	*IngesterQueryable
	Blocks *BlocksQueryable
}

// QueryExemplars answers as IngesterQueryable.QueryExemplars does, over the ingesters' exemplars and
// those of the tenant's blocks overlapping [start, end] (blocks newer than -querier.query-store-after
// are left to the ingesters, as for samples).
func (q ExemplarQueryable) QueryExemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, limits ExemplarLimits) ([]exemplar.QueryResult, error) {
	if len(matcherSets) == 0 {
		return []exemplar.QueryResult{}, nil
	}
	budget := &exemplarBudget{max: limits.MaxExemplars}
	// The first failure cancels the other side, whose cancellation comes after it: the first error is
	// the cause.
	g, ctx := errgroup.WithContext(ctx)
	var fromIngesters, fromBlocks [][]*seriespb.SeriesExemplars
	g.Go(func() (err error) {
		fromIngesters, err = q.ingesterExemplars(ctx, start, end, matcherSets, limits, budget)
		return err
	})
	g.Go(func() (err error) {
		fromBlocks, err = q.Blocks.exemplars(ctx, start, end, matcherSets, limits, budget)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return mergeExemplarAnswers(append(fromIngesters, fromBlocks...), limits)
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
	limited := &firstLimitError{cancel: cancel}
	results, err := rs.Do(ctx, func(ctx context.Context, inst *ring.InstanceDesc) (any, error) {
		client, err := q.clients.GetClientFor(inst.Addr)
		if err != nil {
			return nil, err
		}
		v, err := f(ctx, client)
		limited.check(err)
		return v, err
	})
	if err := limited.get(); err != nil {
		return nil, err
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

// mergeExemplars unites the sources' answers: each series once, in label order; its exemplars once
// each, oldest first. A series may come from several sources, and in several messages of one.
func mergeExemplars(answers [][]*seriespb.SeriesExemplars) []exemplar.QueryResult {
	var (
		builder labels.ScratchBuilder
		buf     []byte
	)
	bySeries := map[string]*exemplar.QueryResult{}
	for _, answer := range answers {
		for _, s := range answer {
			ls := seriespb.ToLabels(&builder, s.Labels)
			buf = ls.Bytes(buf)
			out, ok := bySeries[string(buf)]
			if !ok {
				out = &exemplar.QueryResult{SeriesLabels: ls}
				bySeries[string(buf)] = out
			}
			for _, e := range s.Exemplars {
				out.Exemplars = append(out.Exemplars, exemplar.Exemplar{Labels: seriespb.ToLabels(&builder, e.Labels), Value: e.Value, Ts: e.TimestampMs, HasTs: true})
			}
		}
	}
	merged := make([]exemplar.QueryResult, 0, len(bySeries))
	for _, s := range bySeries {
		s.Exemplars = blockstore.DedupExemplars(s.Exemplars)
		merged = append(merged, *s)
	}
	slices.SortFunc(merged, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return merged
}

// firstLimitError keeps the first limit error of concurrent reads and cancels the others, which then fail
// with the cancellation: the limit's error is the query's.
type firstLimitError struct {
	cancel context.CancelFunc
	mtx    sync.Mutex
	err    error
}

// check records err if it is a limit's.
func (f *firstLimitError) check(err error) {
	le, ok := seriespb.LimitErrorOf(err)
	if !ok {
		return
	}
	f.mtx.Lock()
	if f.err == nil {
		f.err = le
	}
	f.mtx.Unlock()
	f.cancel()
}

func (f *firstLimitError) get() error {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	return f.err
}
