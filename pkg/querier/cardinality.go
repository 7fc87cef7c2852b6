package querier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// Cardinality answers questions about the size of a tenant's recent data (the TSDB status, Mimir's
// cardinality API) from the heads of the ingesters of the ring, merged across replicas.
//
// How replicas are accounted for. Every ingester answers for the series it holds, and each series is
// held by replication-factor ingesters, so the answers overlap. Two kinds of numbers are merged apart:
//   - Distinct values (label values per name, label pairs, active series) are unions: ingesters send the
//     values, or hashes of them, and each is counted once. That is exact whenever the answering
//     ingesters hold every series between them, which reads require anyway (a read fails when more
//     ingesters are down than the ring tolerates).
//   - Series counts (per metric, per label pair, per value, in total) and the memory they take add up
//     across ingesters, and their sum is divided by the copies of a series among the ingesters that
//     answered: replication factor × answering / (answering + missing). With every ingester answering
//     that is the replication factor, as in Mimir. With some missing it is smaller, which keeps the
//     estimate centred instead of low by the missing ones' share: exact when every ingester holds every
//     series (no more ingesters than the replication factor, the usual small cluster), and exact in
//     expectation with more, as tokens spread the series evenly. Asking only a quorum per series would
//     be exact but needs each series' token, which head statistics do not give; and a write that reached
//     only a quorum of its replicas makes any per-ingester sum an estimate anyway.
//
// The top lists of the TSDB status are merged from each ingester's own top list: exact when every ingester
// holds every series; with more ingesters, an entry that is in no ingester's list while being in the
// merged top is missed, and one cut from some ingesters' lists is counted low. Ingesters are asked for
// twice the requested length to make that rare.
type Cardinality struct {
	ring    ring.ReadRing
	clients IngesterClients
	limits  *validation.Overrides
	// bounds are what one request may gather: the constants below; tests lower them.
	bounds gatherBounds
}

// gatherBounds bound what one cardinality request gathers in the querier.
type gatherBounds struct {
	hashes, values, activeSeries int64
}

// NewCardinality answers from the ingesters of r. limits bounds the active series answers by the tenant's
// max_fetched_series_per_query.
func NewCardinality(r ring.ReadRing, clients IngesterClients, limits *validation.Overrides) *Cardinality {
	return &Cardinality{ring: r, clients: clients, limits: limits,
		bounds: gatherBounds{hashes: maxGatheredHashes, values: maxGatheredValues, activeSeries: maxActiveSeries}}
}

// CountMethod says which series the cardinality answers count, as Mimir's count_method parameter.
type CountMethod string

// The count methods of Mimir's cardinality API.
const (
	// CountInMemory counts every series in the ingesters' heads.
	CountInMemory CountMethod = "inmemory"
	// CountActive counts the series with a sample within the ingesters' idle timeout.
	CountActive CountMethod = "active"
)

func (m CountMethod) wire() ingesterpb.CountMethod {
	if m == CountActive {
		return ingesterpb.CountMethod_ACTIVE
	}
	return ingesterpb.CountMethod_IN_MEMORY
}

// Bounds of what one cardinality request gathers in the querier from all ingesters together: a tenant's
// label values can number millions, and each ingester sends its own copy.
const (
	// maxGatheredHashes bounds the label value hashes of a label names request (8 bytes each).
	maxGatheredHashes = 1 << 24
	// maxGatheredValues bounds the label values of a label values request.
	maxGatheredValues = 1 << 22
	// maxActiveSeries bounds an active series answer when the tenant's max_fetched_series_per_query does
	// not bound it lower: about 100 bytes of JSON each.
	maxActiveSeries = 500_000
)

// TooLargeError refuses a cardinality request whose answer would take more of the querier's memory than
// it gives one request: the request is to be narrowed with a selector.
type TooLargeError struct {
	What  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the ingesters answered more than %d %s; narrow the request with a selector", e.Limit, e.What)
}

// copies says how many copies of each series the answers of one request hold together: see Cardinality.
type copies float64

// perCopy divides a sum over the answers by the copies. A sum that is not 0 stays at least 1: something
// that some ingester holds exists.
func (c copies) perCopy(sum uint64) uint64 {
	if sum == 0 {
		return 0
	}
	return max(1, uint64(math.Round(float64(sum)/float64(c))))
}

// askIngesters calls f on every ingester of the read set in parallel and returns the answers of those that
// succeeded, as long as the failures are within the set's budget, with the copies of each series they hold
// together. An answer over a bound (a tenant limit, or one of the querier's own) fails the request
// whatever the budget: the other ingesters' answers would be taken for the whole.
func askIngesters[T any](ctx context.Context, c *Cardinality, f func(context.Context, ingesterpb.IngesterClient) (T, error)) ([]T, copies, error) {
	rs, err := c.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		boundMtx sync.Mutex
		boundErr error
	)
	results, err := rs.Do(ctx, func(ctx context.Context, inst *ring.InstanceDesc) (any, error) {
		client, err := c.clients.GetClientFor(inst.Addr)
		if err != nil {
			return nil, err
		}
		v, err := f(ctx, client)
		var tooLarge *TooLargeError
		if limitErr, ok := seriespb.LimitErrorOf(err); ok || errors.As(err, &tooLarge) {
			boundMtx.Lock()
			if boundErr == nil {
				boundErr = err
				if ok {
					boundErr = limitErr
				}
			}
			boundMtx.Unlock()
			cancel()
		}
		return v, err
	})
	boundMtx.Lock()
	defer boundMtx.Unlock()
	if boundErr != nil {
		return nil, 0, boundErr
	}
	if err != nil {
		return nil, 0, err
	}
	out := make([]T, len(results))
	for i, r := range results {
		out[i] = r.(T)
	}
	// The unhealthy ingesters left out of the set are missing too. With zone awareness the set names the
	// zones left out rather than their ingesters, so a zone then counts as one missing ingester.
	answering := len(out)
	missing := len(rs.Instances) - answering + len(rs.Excluded)
	replicas := max(1, min(c.ring.ReplicationFactor(), c.ring.InstancesCount()))
	n := copies(replicas)
	if answering > 0 && missing > 0 {
		n = copies(float64(replicas) * float64(answering) / float64(answering+missing))
	}
	return out, max(n, 1), nil
}

// recvStream reads a stream to its end, passing each message to f.
func recvStream[T any](stream grpc.ServerStreamingClient[T], err error, f func(*T) error) error {
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f(msg); err != nil {
			return err
		}
	}
}

// LabelNamesCardinality is the answer of Mimir's /api/v1/cardinality/label_names.
type LabelNamesCardinality struct {
	LabelValuesCountTotal int                    `json:"label_values_count_total"`
	LabelNamesCount       int                    `json:"label_names_count"`
	Cardinality           []LabelNameCardinality `json:"cardinality"`
}

// LabelNameCardinality is a label name with its number of distinct values.
type LabelNameCardinality struct {
	LabelName        string `json:"label_name"`
	LabelValuesCount int    `json:"label_values_count"`
}

// LabelNames counts the distinct values of each label name among the series that match (every series
// when matchers is empty), and lists the limit names with the most values, then by name.
func (c *Cardinality) LabelNames(ctx context.Context, matchers []*labels.Matcher, method CountMethod, limit int) (*LabelNamesCardinality, error) {
	valueCounts, err := c.labelValueCounts(ctx, matchers, method)
	if err != nil {
		return nil, err
	}
	out := &LabelNamesCardinality{LabelNamesCount: len(valueCounts), Cardinality: make([]LabelNameCardinality, 0, len(valueCounts))}
	for name, n := range valueCounts {
		out.LabelValuesCountTotal += n
		out.Cardinality = append(out.Cardinality, LabelNameCardinality{LabelName: name, LabelValuesCount: n})
	}
	slices.SortFunc(out.Cardinality, func(a, b LabelNameCardinality) int {
		if c := cmp.Compare(b.LabelValuesCount, a.LabelValuesCount); c != 0 {
			return c
		}
		return strings.Compare(a.LabelName, b.LabelName)
	})
	out.Cardinality = out.Cardinality[:min(limit, len(out.Cardinality))]
	return out, nil
}

// labelValueCounts returns the number of distinct values of each label name among the selected series:
// the union of the ingesters' value hashes.
func (c *Cardinality) labelValueCounts(ctx context.Context, matchers []*labels.Matcher, method CountMethod) (map[string]int, error) {
	req := &ingesterpb.LabelNamesCardinalityRequest{Matchers: seriespb.FromLabelMatchers(matchers), CountMethod: method.wire()}
	var gathered atomic.Int64
	answers, _, err := askIngesters(ctx, c, func(ctx context.Context, client ingesterpb.IngesterClient) (map[string][]uint64, error) {
		hashes := map[string][]uint64{}
		stream, err := client.LabelNamesCardinality(ctx, req)
		err = recvStream(stream, err, func(msg *ingesterpb.LabelNamesCardinalityResponse) error {
			for _, l := range msg.Labels {
				if gathered.Add(int64(len(l.ValueHashes))) > c.bounds.hashes {
					return &TooLargeError{What: "label values", Limit: c.bounds.hashes}
				}
				hashes[l.LabelName] = append(hashes[l.LabelName], l.ValueHashes...)
			}
			return nil
		})
		return hashes, err
	})
	if err != nil {
		return nil, err
	}
	all := map[string][]uint64{}
	for _, a := range answers {
		for name, hashes := range a {
			all[name] = append(all[name], hashes...)
		}
	}
	counts := make(map[string]int, len(all))
	for name, hashes := range all {
		slices.Sort(hashes)
		counts[name] = len(slices.Compact(hashes))
	}
	return counts, nil
}

// LabelValuesCardinality is the answer of Mimir's /api/v1/cardinality/label_values.
type LabelValuesCardinality struct {
	SeriesCountTotal uint64                   `json:"series_count_total"`
	Labels           []LabelValuesOfLabelName `json:"labels"`
}

// LabelValuesOfLabelName is one requested label name with its values' series counts.
type LabelValuesOfLabelName struct {
	LabelName        string                  `json:"label_name"`
	LabelValuesCount int                     `json:"label_values_count"`
	SeriesCount      uint64                  `json:"series_count"`
	Cardinality      []LabelValueCardinality `json:"cardinality"`
}

// LabelValueCardinality is a label value with the number of series that have it.
type LabelValueCardinality struct {
	LabelValue  string `json:"label_value"`
	SeriesCount uint64 `json:"series_count"`
}

// LabelValues counts the series of each value of each of names among the series that match (every series
// when matchers is empty), and lists for each name the limit values with the most series, then by value.
// Names come with the most series first, then by name.
func (c *Cardinality) LabelValues(ctx context.Context, names []string, matchers []*labels.Matcher, method CountMethod, limit int) (*LabelValuesCardinality, error) {
	req := &ingesterpb.LabelValuesCardinalityRequest{LabelNames: names, Matchers: seriespb.FromLabelMatchers(matchers), CountMethod: method.wire()}
	type answer struct {
		total  uint64
		counts map[string]map[string]uint64
	}
	var gathered atomic.Int64
	answers, n, err := askIngesters(ctx, c, func(ctx context.Context, client ingesterpb.IngesterClient) (answer, error) {
		a := answer{counts: map[string]map[string]uint64{}}
		first := true
		stream, err := client.LabelValuesCardinality(ctx, req)
		err = recvStream(stream, err, func(msg *ingesterpb.LabelValuesCardinalityResponse) error {
			if first {
				a.total, first = msg.SeriesCountTotal, false
			}
			for _, l := range msg.Labels {
				if gathered.Add(int64(len(l.Values))) > c.bounds.values {
					return &TooLargeError{What: "label values", Limit: c.bounds.values}
				}
				byValue := a.counts[l.LabelName]
				if byValue == nil {
					byValue = map[string]uint64{}
					a.counts[l.LabelName] = byValue
				}
				for _, v := range l.Values {
					byValue[v.Value] += v.SeriesCount
				}
			}
			return nil
		})
		return a, err
	})
	if err != nil {
		return nil, err
	}
	var total uint64
	sums := map[string]map[string]uint64{}
	for _, a := range answers {
		total += a.total
		for name, byValue := range a.counts {
			if sums[name] == nil {
				sums[name] = map[string]uint64{}
			}
			for v, count := range byValue {
				sums[name][v] += count
			}
		}
	}
	out := &LabelValuesCardinality{SeriesCountTotal: n.perCopy(total), Labels: []LabelValuesOfLabelName{}}
	// Every name asked for is answered, the ones no series has too.
	for _, name := range slices.Compact(slices.Sorted(slices.Values(names))) {
		item := LabelValuesOfLabelName{LabelName: name, LabelValuesCount: len(sums[name]), Cardinality: make([]LabelValueCardinality, 0, len(sums[name]))}
		for v, sum := range sums[name] {
			count := n.perCopy(sum)
			item.SeriesCount += count
			item.Cardinality = append(item.Cardinality, LabelValueCardinality{LabelValue: v, SeriesCount: count})
		}
		slices.SortFunc(item.Cardinality, func(a, b LabelValueCardinality) int {
			if c := cmp.Compare(b.SeriesCount, a.SeriesCount); c != 0 {
				return c
			}
			return strings.Compare(a.LabelValue, b.LabelValue)
		})
		item.Cardinality = item.Cardinality[:min(limit, len(item.Cardinality))]
		out.Labels = append(out.Labels, item)
	}
	slices.SortStableFunc(out.Labels, func(a, b LabelValuesOfLabelName) int { return cmp.Compare(b.SeriesCount, a.SeriesCount) })
	return out, nil
}

// ActiveSeries returns the label sets of the active series that match, each once, in label order. The
// answer is bounded by the tenant's max_fetched_series_per_query, or by maxActiveSeries when that is
// lower; every ingester applies the bound to its own part too.
func (c *Cardinality) ActiveSeries(ctx context.Context, matchers []*labels.Matcher) ([]labels.Labels, error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	limit, tenantBound := c.bounds.activeSeries, false
	if c.limits != nil {
		if l := int64(c.limits.For(tenantID).MaxFetchedSeriesPerQuery); l > 0 && l <= limit {
			limit, tenantBound = l, true
		}
	}
	// The error of an answer over the bound names the tenant's limit when it is the one that applies.
	overLimit := func() error {
		if tenantBound {
			return seriespb.SeriesLimitError(limit)
		}
		return &TooLargeError{What: "active series", Limit: c.bounds.activeSeries}
	}
	req := &ingesterpb.ActiveSeriesRequest{Matchers: seriespb.FromLabelMatchers(matchers), Limits: &seriespb.FetchLimits{MaxSeries: limit}}
	answers, _, err := askIngesters(ctx, c, func(ctx context.Context, client ingesterpb.IngesterClient) ([]labels.Labels, error) {
		var (
			out     []labels.Labels
			builder labels.ScratchBuilder
		)
		stream, err := client.ActiveSeries(ctx, req)
		err = recvStream(stream, err, func(msg *ingesterpb.ActiveSeriesResponse) error {
			for _, s := range msg.Series {
				out = append(out, seriespb.ToLabels(&builder, s.Labels))
			}
			return nil
		})
		return out, err
	})
	if _, ok := seriespb.LimitErrorOf(err); ok {
		return nil, overLimit()
	}
	if err != nil {
		return nil, err
	}
	var all []labels.Labels
	for _, a := range answers {
		all = append(all, a...)
	}
	slices.SortFunc(all, labels.Compare)
	all = slices.CompactFunc(all, labels.Equal)
	if int64(len(all)) > limit {
		return nil, overLimit()
	}
	return all, nil
}
