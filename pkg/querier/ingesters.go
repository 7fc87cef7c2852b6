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
	streams    streamContexts
}

// forEachIngester calls f on every ingester of the read replication set, in parallel, and returns the
// answers of those that succeeded, as long as the failures are within the set's budget.
func forEachIngester[T any](ctx context.Context, q *IngesterQueryable, f func(context.Context, ingesterpb.IngesterClient) (T, error)) ([]T, error) {
	rs, err := q.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return nil, err
	}
	results, err := rs.Do(ctx, func(ctx context.Context, inst *ring.InstanceDesc) (any, error) {
		client, err := q.clients.GetClientFor(inst.Addr)
		if err != nil {
			return nil, err
		}
		return f(ctx, client)
	})
	if err != nil {
		return nil, err
	}
	out := make([]T, len(results))
	for i, r := range results {
		out[i] = r.(T)
	}
	return out, nil
}

// Select implements storage.Querier. Every ingester of the read set streams its series; the streams are
// merged as they arrive, dropping the replicas' duplicate samples. An ingester that fails, before or
// during its stream, is left out as long as the set tolerates it: the others hold every acknowledged
// sample. An ingester that stops at the query's fetch limits fails the query.
func (q *ingesterQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	pbMatchers := seriespb.FromLabelMatchers(matchers)
	if hints != nil && hints.Func == "series" {
		// Label sets only, for /api/v1/series: the Series call loads no samples.
		limit := int64(hints.Limit)
		req := &ingesterpb.SeriesRequest{StartMs: mint, EndMs: maxt, Matchers: pbMatchers, Limit: limit, Limits: fetchLimitsFrom(ctx)}
		set := q.selectStreams(ctx, func(ctx context.Context, client ingesterpb.IngesterClient) (func() ([]*seriespb.Series, error), error) {
			return recvSeries(client.Series(ctx, req))
		})
		if limit > 0 {
			set = &limitedSeriesSet{SeriesSet: set, left: limit}
		}
		return set
	}
	req := &ingesterpb.QueryRequest{StartMs: mint, EndMs: maxt, Matchers: pbMatchers, Limits: fetchLimitsFrom(ctx)}
	return q.selectStreams(ctx, func(ctx context.Context, client ingesterpb.IngesterClient) (func() ([]*seriespb.Series, error), error) {
		return recvSeries(client.QueryStream(ctx, req))
	})
}

// selectStreams opens a stream on every ingester of the read set with open, which returns the function
// that receives the stream's next message, and merges the streams within the set's failure budget.
func (q *ingesterQuerier) selectStreams(ctx context.Context, open func(context.Context, ingesterpb.IngesterClient) (func() ([]*seriespb.Series, error), error)) storage.SeriesSet {
	rs, err := q.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	ctx = q.streams.new(ctx)
	streams := make([]*seriesStream, 0, len(rs.Instances))
	var failures []ring.InstanceError
	fail := func(inst *ring.InstanceDesc, err error) error {
		failures = append(failures, ring.InstanceError{ID: inst.ID, Addr: inst.Addr, Err: err})
		if rs.Tolerates(failures) {
			return nil
		}
		return &ring.DoError{Failures: failures, Instances: len(rs.Instances), MaxErrors: rs.MaxErrors, Excluded: rs.Excluded}
	}
	bySource := map[string]*ring.InstanceDesc{}
	for i := range rs.Instances {
		inst := &rs.Instances[i]
		bySource[inst.Addr] = inst
		client, err := q.clients.GetClientFor(inst.Addr)
		var recv func() ([]*seriespb.Series, error)
		if err == nil {
			recv, err = open(ctx, client)
		}
		if err != nil {
			if err := fail(inst, err); err != nil {
				return storage.ErrSeriesSet(err)
			}
			continue
		}
		streams = append(streams, newSeriesStream(ctx, inst.Addr, recv))
	}
	return newMergedSeriesSet(ctx, streams, func(failed *seriesStream, err error) ([]*seriesStream, error) {
		return nil, fail(bySource[failed.source], err)
	})
}

// LabelValues implements storage.Querier.
func (q *ingesterQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	req := &ingesterpb.LabelValuesRequest{Name: name, StartMs: q.mint, EndMs: q.maxt, Matchers: seriespb.FromLabelMatchers(matchers), Limit: limitOf(hints)}
	results, err := forEachIngester(ctx, q.IngesterQueryable, func(ctx context.Context, client ingesterpb.IngesterClient) ([]string, error) {
		stream, err := client.LabelValues(ctx, req)
		if err != nil {
			return nil, err
		}
		var values []string
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return values, nil
			}
			if err != nil {
				return nil, err
			}
			values = append(values, resp.Values...)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return mergeStrings(results, limitOf(hints)), nil, nil
}

// LabelNames implements storage.Querier.
func (q *ingesterQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	req := &ingesterpb.LabelNamesRequest{StartMs: q.mint, EndMs: q.maxt, Matchers: seriespb.FromLabelMatchers(matchers), Limit: limitOf(hints)}
	results, err := forEachIngester(ctx, q.IngesterQueryable, func(ctx context.Context, client ingesterpb.IngesterClient) ([]string, error) {
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

// Close implements storage.Querier: it ends the streams of every Select.
func (q *ingesterQuerier) Close() error {
	q.streams.cancel(nil)
	return nil
}

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
	results, err := forEachIngester(ctx, q, func(ctx context.Context, client ingesterpb.IngesterClient) ([]*ingesterpb.MetricMetadata, error) {
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
		for _, m := range r {
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

// mergeStrings unions the sorted string lists of several ingesters or store-gateways.
func mergeStrings(results [][]string, limit int64) []string {
	var all []string
	for _, r := range results {
		all = append(all, r...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if limit > 0 && int64(len(all)) > limit {
		all = all[:limit]
	}
	return all
}

// limitedSeriesSet ends after left series.
type limitedSeriesSet struct {
	storage.SeriesSet
	left int64
}

func (s *limitedSeriesSet) Next() bool {
	if s.left <= 0 {
		return false
	}
	s.left--
	return s.SeriesSet.Next()
}
