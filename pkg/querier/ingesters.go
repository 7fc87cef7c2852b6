package querier

import (
	"context"
	"errors"
	"io"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// IngesterClients gives the querier a client for an ingester address.
type IngesterClients interface {
	GetClientFor(addr string) (ingesterpb.IngesterClient, error)
}

// IngesterQueryable reads recent data from the ingesters. Every series lives on replication-factor
// ingesters, so a read asks all of them, tolerates as many failures as the ring allows, and merges the
// replicas' answers, dropping duplicate samples.
type IngesterQueryable struct {
	ring    ring.ReadRing
	clients IngesterClients
}

// NewIngesterQueryable returns a queryable over the ingesters of r.
func NewIngesterQueryable(r ring.ReadRing, clients IngesterClients) *IngesterQueryable {
	return &IngesterQueryable{ring: r, clients: clients}
}

// Querier implements storage.Queryable.
func (q *IngesterQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &ingesterQuerier{IngesterQueryable: q, mint: mint, maxt: maxt}, nil
}

type ingesterQuerier struct {
	*IngesterQueryable
	mint, maxt int64
}

// forEachIngester calls f on every ingester of the read replication set, in parallel.
func (q *ingesterQuerier) forEachIngester(ctx context.Context, f func(context.Context, ingesterpb.IngesterClient) (any, error)) ([]any, error) {
	rs, err := q.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return nil, err
	}
	return rs.Do(ctx, func(ctx context.Context, inst *ring.InstanceDesc) (any, error) {
		client, err := q.clients.GetClientFor(inst.Addr)
		if err != nil {
			return nil, err
		}
		return f(ctx, client)
	})
}

// Select implements storage.Querier.
func (q *ingesterQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	if hints != nil && hints.Func == "series" {
		return q.selectLabelsOnly(ctx, mint, maxt, int64(hints.Limit), matchers)
	}
	req := &ingesterpb.QueryRequest{StartMs: mint, EndMs: maxt, Matchers: seriespb.FromLabelMatchers(matchers)}
	results, err := q.forEachIngester(ctx, func(ctx context.Context, client ingesterpb.IngesterClient) (any, error) {
		stream, err := client.QueryStream(ctx, req)
		if err != nil {
			return nil, err
		}
		var series []*seriespb.Series
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return series, nil
			}
			if err != nil {
				return nil, err
			}
			series = append(series, resp.Series...)
		}
	})
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	answers := make([][]*seriespb.Series, len(results))
	for i, r := range results {
		answers[i] = r.([]*seriespb.Series)
	}
	// The merge keeps one sample per timestamp, removing the replicas' duplicates.
	set, err := mergeEncodedAnswers(answers)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return set
}

func (q *ingesterQuerier) selectLabelsOnly(ctx context.Context, mint, maxt, limit int64, matchers []*labels.Matcher) storage.SeriesSet {
	req := &ingesterpb.SeriesRequest{StartMs: mint, EndMs: maxt, Matchers: seriespb.FromLabelMatchers(matchers), Limit: limit}
	results, err := q.forEachIngester(ctx, func(ctx context.Context, client ingesterpb.IngesterClient) (any, error) {
		return client.Series(ctx, req)
	})
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	var (
		b   labels.ScratchBuilder
		all []labels.Labels
	)
	for _, r := range results {
		for _, ls := range r.(*ingesterpb.SeriesResponse).Series {
			all = append(all, seriespb.ToLabels(&b, ls.Labels))
		}
	}
	slices.SortFunc(all, labels.Compare)
	all = slices.CompactFunc(all, labels.Equal)
	if limit > 0 && int64(len(all)) > limit {
		all = all[:limit]
	}
	series := make([]storage.Series, len(all))
	for i, ls := range all {
		series[i] = storage.NewListSeries(ls, nil)
	}
	return &sliceSeriesSet{series: series, i: -1}
}

// LabelValues implements storage.Querier.
func (q *ingesterQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	req := &ingesterpb.LabelValuesRequest{Name: name, StartMs: q.mint, EndMs: q.maxt, Matchers: seriespb.FromLabelMatchers(matchers), Limit: limitOf(hints)}
	results, err := q.forEachIngester(ctx, func(ctx context.Context, client ingesterpb.IngesterClient) (any, error) {
		resp, err := client.LabelValues(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.Values, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return mergeStrings(results, limitOf(hints)), nil, nil
}

// LabelNames implements storage.Querier.
func (q *ingesterQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	req := &ingesterpb.LabelNamesRequest{StartMs: q.mint, EndMs: q.maxt, Matchers: seriespb.FromLabelMatchers(matchers), Limit: limitOf(hints)}
	results, err := q.forEachIngester(ctx, func(ctx context.Context, client ingesterpb.IngesterClient) (any, error) {
		resp, err := client.LabelNames(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.Names, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return mergeStrings(results, limitOf(hints)), nil, nil
}

// Close implements storage.Querier.
func (q *ingesterQuerier) Close() error { return nil }

// MetricMetadata is one metadata entry of a metric family, as /api/v1/metadata shows it.
type MetricMetadata struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// MetricsMetadata returns the tenant's metric metadata from every ingester, de-duplicated and keyed by
// metric family. metric selects one family; limits of 0 mean no limit.
func (q *IngesterQueryable) MetricsMetadata(ctx context.Context, metric string, limit, limitPerMetric int) (map[string][]MetricMetadata, error) {
	req := &ingesterpb.MetricsMetadataRequest{Metric: metric, Limit: int64(limit), LimitPerMetric: int64(limitPerMetric)}
	iq := &ingesterQuerier{IngesterQueryable: q}
	results, err := iq.forEachIngester(ctx, func(ctx context.Context, client ingesterpb.IngesterClient) (any, error) {
		resp, err := client.MetricsMetadata(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.Metadata, nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]MetricMetadata{}
	for _, r := range results {
		for _, m := range r.([]*ingesterpb.MetricMetadata) {
			entry := MetricMetadata{Type: m.Type, Help: m.Help, Unit: m.Unit}
			entries := out[m.MetricFamilyName]
			if slices.Contains(entries, entry) {
				continue
			}
			if _, known := out[m.MetricFamilyName]; !known && limit > 0 && len(out) >= limit {
				continue
			}
			if limitPerMetric > 0 && len(entries) >= limitPerMetric {
				continue
			}
			out[m.MetricFamilyName] = append(entries, entry)
		}
	}
	return out, nil
}

func limitOf(hints *storage.LabelHints) int64 {
	if hints == nil {
		return 0
	}
	return int64(hints.Limit)
}

// mergeStrings unions the sorted string lists of several ingesters.
func mergeStrings(results []any, limit int64) []string {
	var all []string
	for _, r := range results {
		all = append(all, r.([]string)...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if limit > 0 && int64(len(all)) > limit {
		all = all[:limit]
	}
	return all
}

// encodedSeries is a series as ingesters (StreamSeries) and store-gateways (Series) send it: labels and
// TSDB-encoded chunks.
type encodedSeries interface {
	GetLabels() []*seriespb.Label
	GetChunks() []*seriespb.Chunk
}

// mergeEncodedAnswers merges answers (each in label order) from several ingesters or store-gateways
// into one series set in label order. A series' chunks from every answer become one series: identical
// chunks (replicas that ingested the same samples) are kept once, and the rest is read as a sequence of
// non-overlapping chunks, merging sample by sample only where chunks overlap.
func mergeEncodedAnswers[S encodedSeries](answers [][]S) (storage.SeriesSet, error) {
	type answeredSeries struct {
		lset   labels.Labels
		chunks []*seriespb.Chunk
	}
	var (
		b   labels.ScratchBuilder
		all []answeredSeries
	)
	for _, answer := range answers {
		for _, s := range answer {
			all = append(all, answeredSeries{lset: seriespb.ToLabels(&b, s.GetLabels()), chunks: s.GetChunks()})
		}
	}
	if len(answers) > 1 {
		slices.SortStableFunc(all, func(a, b answeredSeries) int { return labels.Compare(a.lset, b.lset) })
	}
	out := make([]storage.Series, 0, len(all))
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && labels.Equal(all[i].lset, all[j].lset) {
			j++
		}
		var encoded []*seriespb.Chunk
		if j == i+1 {
			encoded = all[i].chunks
		} else {
			for _, s := range all[i:j] {
				encoded = append(encoded, s.chunks...)
			}
		}
		series, err := newChunkSeries(all[i].lset, encoded)
		if err != nil {
			return nil, err
		}
		out = append(out, series)
		i = j
	}
	return &sliceSeriesSet{series: out, i: -1}, nil
}

// sliceSeriesSet iterates over series already in memory.
type sliceSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSeriesSet) Next() bool {
	s.i++
	return s.i < len(s.series)
}
func (s *sliceSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSeriesSet) Err() error                        { return nil }
func (s *sliceSeriesSet) Warnings() annotations.Annotations { return nil }
