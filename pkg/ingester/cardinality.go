package ingester

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Bounds of the cardinality RPCs: the gRPC port answers any client, and each of these reads the whole
// head, so the work and the answer of one request stay bounded.
const (
	// MaxTSDBStatusLimit is the longest list TSDBStatus answers.
	MaxTSDBStatusLimit = 1000
	// MaxCardinalityLabelNames is the most label names one LabelValuesCardinality request asks about.
	MaxCardinalityLabelNames = 100
	// hashesPerMessage bounds the value hashes of one LabelNamesCardinality message to labelBatchBytes.
	hashesPerMessage = labelBatchBytes / 8
)

// TSDBStatus answers the statistics of the tenant's head that add up across ingesters; see headStatus.
func (i *Ingester) TSDBStatus(ctx context.Context, req *ingesterpb.TSDBStatusRequest) (*ingesterpb.TSDBStatusResponse, error) {
	if req.Limit < 1 || req.Limit > MaxTSDBStatusLimit {
		return nil, status.Errorf(codes.InvalidArgument, "limit must be between 1 and %d, got %d", MaxTSDBStatusLimit, req.Limit)
	}
	t, release, err := i.cardinalityTenant(ctx)
	if err != nil {
		return nil, err
	}
	if t == nil {
		// An empty head's bounds, as Prometheus reports them.
		return &ingesterpb.TSDBStatusResponse{MinTimeMs: math.MaxInt64, MaxTimeMs: math.MinInt64}, nil
	}
	defer release()
	resp, err := headStatus(ctx, t.db.Head(), headChunks(t.registerer), int(req.Limit))
	if err != nil {
		return nil, readError(ctx, "head statistics", err)
	}
	return resp, nil
}

// LabelNamesCardinality streams, label name by label name in order, the hashes of the values each name has
// among the selected series, each value once. Hashes rather than values: the querier only counts them,
// and a value can be as long as the tenant's max_label_value_length where its hash is 8 bytes.
func (i *Ingester) LabelNamesCardinality(req *ingesterpb.LabelNamesCardinalityRequest, stream ingesterpb.Ingester_LabelNamesCardinalityServer) error {
	ctx := stream.Context()
	matchers, err := requestMatchers(req.Matchers)
	if err != nil {
		return err
	}
	t, release, err := i.cardinalityTenant(ctx)
	if err != nil || t == nil {
		return err
	}
	defer release()
	hashes, err := i.labelValueHashes(ctx, t, matchers, req.CountMethod)
	if err != nil {
		return readError(ctx, "label values", err)
	}
	batch, size := &ingesterpb.LabelNamesCardinalityResponse{}, 0
	for _, name := range slices.Sorted(maps.Keys(hashes)) {
		for values := hashes[name]; len(values) > 0; {
			n := min(len(values), hashesPerMessage)
			batch.Labels = append(batch.Labels, &ingesterpb.LabelValueHashes{LabelName: name, ValueHashes: values[:n]})
			size += len(name) + 8*n
			values = values[n:]
			if size >= labelBatchBytes {
				if err := send(ctx, stream, batch); err != nil {
					return err
				}
				batch, size = &ingesterpb.LabelNamesCardinalityResponse{}, 0
			}
		}
	}
	if len(batch.Labels) > 0 {
		return send(ctx, stream, batch)
	}
	return nil
}

// labelValueHashes returns the hashes of the values of every label name among the selected series.
func (i *Ingester) labelValueHashes(ctx context.Context, t *tenantDB, matchers []*labels.Matcher, method ingesterpb.CountMethod) (map[string][]uint64, error) {
	out := map[string][]uint64{}
	if method == ingesterpb.CountMethod_IN_MEMORY && len(matchers) == 0 {
		// Every series: the head's index lists each name's values without reading any series.
		ir, err := t.db.Head().Index()
		if err != nil {
			return nil, err
		}
		defer ir.Close()
		names, err := ir.LabelNames(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			values, err := ir.LabelValues(ctx, name, nil)
			if err != nil {
				return nil, err
			}
			hashes := make([]uint64, len(values))
			for j, v := range values {
				hashes[j] = xxhash.Sum64String(v)
			}
			out[name] = hashes
		}
		return out, nil
	}
	sets := map[string]map[uint64]struct{}{}
	_, err := i.forEachSelected(ctx, t, matchers, method, func(ls labels.Labels) {
		ls.Range(func(l labels.Label) {
			set := sets[l.Name]
			if set == nil {
				set = map[uint64]struct{}{}
				sets[strings.Clone(l.Name)] = set
			}
			set[xxhash.Sum64String(l.Value)] = struct{}{}
		})
	})
	if err != nil {
		return nil, err
	}
	for name, set := range sets {
		out[name] = slices.Collect(maps.Keys(set))
	}
	return out, nil
}

// LabelValuesCardinality streams the series count of each value of the requested label names among the
// selected series, names in order and each name's values in order.
func (i *Ingester) LabelValuesCardinality(req *ingesterpb.LabelValuesCardinalityRequest, stream ingesterpb.Ingester_LabelValuesCardinalityServer) error {
	ctx := stream.Context()
	if len(req.LabelNames) == 0 || len(req.LabelNames) > MaxCardinalityLabelNames {
		return status.Errorf(codes.InvalidArgument, "between 1 and %d label names must be asked for, got %d", MaxCardinalityLabelNames, len(req.LabelNames))
	}
	matchers, err := requestMatchers(req.Matchers)
	if err != nil {
		return err
	}
	t, release, err := i.cardinalityTenant(ctx)
	if err != nil || t == nil {
		return err
	}
	defer release()
	names := slices.Compact(slices.Sorted(slices.Values(req.LabelNames)))
	total, counts, err := i.labelValueCounts(ctx, t, names, matchers, req.CountMethod)
	if err != nil {
		return readError(ctx, "label values", err)
	}
	batch, size := &ingesterpb.LabelValuesCardinalityResponse{SeriesCountTotal: total}, 0
	for _, name := range names {
		values := counts[name]
		for len(values) > 0 {
			entry := &ingesterpb.LabelValueCounts{LabelName: name}
			batch.Labels = append(batch.Labels, entry)
			size += len(name)
			for len(values) > 0 && (len(entry.Values) == 0 || size < labelBatchBytes) {
				entry.Values = append(entry.Values, values[0])
				size += len(values[0].Value) + 10
				values = values[1:]
			}
			if size >= labelBatchBytes {
				if err := send(ctx, stream, batch); err != nil {
					return err
				}
				batch, size = &ingesterpb.LabelValuesCardinalityResponse{}, 0
			}
		}
	}
	// The first message carries the total even when no series has any of the names.
	if len(batch.Labels) > 0 || batch.SeriesCountTotal > 0 {
		return send(ctx, stream, batch)
	}
	return nil
}

// labelValueCounts returns the number of selected series and, for each name, its values among them in
// order with their series counts.
func (i *Ingester) labelValueCounts(ctx context.Context, t *tenantDB, names []string, matchers []*labels.Matcher, method ingesterpb.CountMethod) (uint64, map[string][]*ingesterpb.LabelValueCount, error) {
	out := map[string][]*ingesterpb.LabelValueCount{}
	if method == ingesterpb.CountMethod_IN_MEMORY && len(matchers) == 0 {
		// Every series: each value's postings in the head's index know their length.
		ir, err := t.db.Head().Index()
		if err != nil {
			return 0, nil, err
		}
		defer ir.Close()
		allName, allValue := index.AllPostingsKey()
		all, err := ir.Postings(ctx, allName, allValue)
		if err != nil {
			return 0, nil, err
		}
		total, err := postingsLen(all)
		if err != nil {
			return 0, nil, err
		}
		for _, name := range names {
			values, err := ir.SortedLabelValues(ctx, name, nil)
			if err != nil {
				return 0, nil, err
			}
			for _, v := range values {
				p, err := ir.Postings(ctx, name, v)
				if err != nil {
					return 0, nil, err
				}
				n, err := postingsLen(p)
				if err != nil {
					return 0, nil, err
				}
				if n > 0 {
					out[name] = append(out[name], &ingesterpb.LabelValueCount{Value: v, SeriesCount: n})
				}
			}
		}
		return total, out, nil
	}
	counts := make(map[string]map[string]uint64, len(names))
	for _, name := range names {
		counts[name] = map[string]uint64{}
	}
	total, err := i.forEachSelected(ctx, t, matchers, method, func(ls labels.Labels) {
		for _, name := range names {
			if v := ls.Get(name); v != "" {
				if _, ok := counts[name][v]; !ok {
					v = strings.Clone(v) // the TSDB's strings may live in memory it reuses
				}
				counts[name][v]++
			}
		}
	})
	if err != nil {
		return 0, nil, err
	}
	for name, byValue := range counts {
		for _, v := range slices.Sorted(maps.Keys(byValue)) {
			out[name] = append(out[name], &ingesterpb.LabelValueCount{Value: v, SeriesCount: byValue[v]})
		}
	}
	return total, out, nil
}

// ActiveSeries streams the label sets of the active series that match the request, in label order and in
// messages of about labelBatchBytes. It fails once the answer crosses the request's series limit.
func (i *Ingester) ActiveSeries(req *ingesterpb.ActiveSeriesRequest, stream ingesterpb.Ingester_ActiveSeriesServer) error {
	ctx := stream.Context()
	if len(req.Matchers) == 0 {
		return status.Error(codes.InvalidArgument, "a selector is required")
	}
	matchers, err := requestMatchers(req.Matchers)
	if err != nil {
		return err
	}
	t, release, err := i.cardinalityTenant(ctx)
	if err != nil || t == nil {
		return err
	}
	defer release()
	set, closeSet, err := activeSeriesSet(ctx, t, i.activeSince(), true, matchers...)
	if err != nil {
		return readError(ctx, "select active series", err)
	}
	defer closeSet()
	fetched := seriespb.NewFetchCounter(req.Limits)
	batch, size := &ingesterpb.ActiveSeriesResponse{}, 0
	for set.Next() {
		if err := fetched.Add(0); err != nil {
			return err
		}
		out := &seriespb.Series{Labels: seriespb.FromLabels(set.At().Labels())}
		for _, l := range out.Labels {
			size += len(l.Name) + len(l.Value)
		}
		batch.Series = append(batch.Series, out)
		if size >= labelBatchBytes {
			if err := send(ctx, stream, batch); err != nil {
				return err
			}
			batch, size = &ingesterpb.ActiveSeriesResponse{}, 0
		}
	}
	if err := set.Err(); err != nil {
		return readError(ctx, "select active series", err)
	}
	if len(batch.Series) > 0 {
		return send(ctx, stream, batch)
	}
	return nil
}

// cardinalityTenant returns the TSDB of the request's tenant, or nil when the tenant has no data here;
// release must be called when the request is done with it.
func (i *Ingester) cardinalityTenant(ctx context.Context) (*tenantDB, func(), error) {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if err := i.begin(); err != nil {
		return nil, nil, err
	}
	t, release, err := i.acquireTenantDB(tenantID, false)
	if err != nil || t == nil {
		i.end()
		return nil, nil, err
	}
	return t, func() { release(); i.end() }, nil
}

func requestMatchers(pb []*seriespb.LabelMatcher) ([]*labels.Matcher, error) {
	matchers, err := seriespb.ToLabelMatchers(pb)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid matcher: %v", err)
	}
	return matchers, nil
}

// readError is the status of a read of the head that failed: the caller's own end when it went away.
func readError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Errorf(codes.Internal, "%s: %v", what, err)
}

// forEachSelected calls f with the label set of every selected series: the series in memory that match,
// or the active ones among them, and returns how many there were. f must not keep the labels' strings.
func (i *Ingester) forEachSelected(ctx context.Context, t *tenantDB, matchers []*labels.Matcher, method ingesterpb.CountMethod, f func(labels.Labels)) (uint64, error) {
	var n uint64
	if method == ingesterpb.CountMethod_ACTIVE {
		set, closeSet, err := activeSeriesSet(ctx, t, i.activeSince(), false, matchers...)
		if err != nil {
			return 0, err
		}
		defer closeSet()
		for set.Next() {
			if n%1024 == 0 && ctx.Err() != nil {
				return 0, ctx.Err()
			}
			f(set.At().Labels())
			n++
		}
		return n, set.Err()
	}
	// In memory: every series of the head's index, as Prometheus' TSDB status counts them, including
	// series whose samples have all gone to blocks and that wait for the head's next garbage collection.
	ir, err := t.db.Head().Index()
	if err != nil {
		return 0, err
	}
	defer ir.Close()
	var p index.Postings
	allName, allValue := index.AllPostingsKey()
	if len(matchers) == 0 {
		p, err = ir.Postings(ctx, allName, allValue)
	} else {
		p, err = tsdb.PostingsForMatchers(ctx, ir, matchers...)
	}
	if err != nil {
		return 0, err
	}
	var builder labels.ScratchBuilder
	for p.Next() {
		if n%1024 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := ir.Series(p.At(), &builder, nil); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // removed by the head's garbage collection meanwhile
			}
			return 0, err
		}
		f(builder.Labels())
		n++
	}
	return n, p.Err()
}
