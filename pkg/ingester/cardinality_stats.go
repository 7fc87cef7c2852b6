package ingester

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/util/promutil"
)

// headStatus computes the quantities of Prometheus' TSDB status that add up across ingesters: series
// counts by metric name and by label pair, and the memory each label name takes, with the definitions of
// the head's own Stats (labels.SizeOfLabels for the memory). Head.Stats is not called because its lists
// keep, among entries of equal count at the cut, whichever its map order met first: replicas holding the
// same series would then each send different entries, and the querier's sums of them would be wrong.
// Here every list is cut by count, then by name, so equal heads give equal lists.
func headStatus(ctx context.Context, head *tsdb.Head, chunkCount int64, limit int) (*ingesterpb.TSDBStatusResponse, error) {
	ir, err := head.Index()
	if err != nil {
		return nil, err
	}
	defer ir.Close()
	names, err := ir.LabelNames(ctx)
	if err != nil {
		return nil, err
	}
	byMetric, memory, byPair := newTopStats(limit), newTopStats(limit), newTopStats(limit)
	for _, name := range names {
		values, err := ir.LabelValues(ctx, name, nil) // the lists order their entries themselves
		if err != nil {
			return nil, err
		}
		var bytes uint64
		for _, value := range values {
			p, err := ir.Postings(ctx, name, value)
			if err != nil {
				return nil, err
			}
			n, err := postingsLen(p)
			if err != nil {
				return nil, err
			}
			bytes += labels.SizeOfLabels(name, value, n)
			if name == model.MetricNameLabel {
				byMetric.add(value, n)
			}
			if byPair.keeps(n) {
				byPair.add(name+"="+value, n)
			}
		}
		memory.add(name, bytes)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return &ingesterpb.TSDBStatusResponse{
		NumSeries:                   head.NumSeries(),
		ChunkCount:                  chunkCount,
		MinTimeMs:                   head.MinTime(),
		MaxTimeMs:                   head.MaxTime(),
		SeriesCountByMetricName:     byMetric.sorted(),
		MemoryInBytesByLabelName:    memory.sorted(),
		SeriesCountByLabelValuePair: byPair.sorted(),
	}, nil
}

// postingsLen counts p's series; the head's postings of one label pair know their length.
func postingsLen(p index.Postings) (uint64, error) {
	if l, ok := p.(interface{ Len() int }); ok {
		return uint64(l.Len()), nil
	}
	var n uint64
	for p.Next() {
		n++
	}
	return n, p.Err()
}

// headChunks returns the tenant's head chunks as the TSDB's prometheus_tsdb_head_chunks gauge counts them,
// which is where Prometheus' own TSDB status reads its chunk count: the head exposes it no other way.
func headChunks(reg *promutil.TrackingRegisterer) int64 {
	for _, c := range reg.Collectors() {
		g, ok := c.(prometheus.Gauge)
		if !ok || !strings.Contains(g.Desc().String(), `fqName: "prometheus_tsdb_head_chunks"`) {
			continue
		}
		var m dto.Metric
		if err := g.Write(&m); err != nil {
			return 0
		}
		return int64(m.GetGauge().GetValue())
	}
	return 0
}

// topStats keeps the limit largest stats by value, then by name, whatever order they are added in.
type topStats struct {
	limit int
	// kept is a heap whose first entry is the one to drop first.
	kept []*ingesterpb.CardinalityStat
}

func newTopStats(limit int) *topStats {
	return &topStats{limit: limit, kept: make([]*ingesterpb.CardinalityStat, 0, limit)}
}

// worse orders stats from the one to drop first: smaller value, then larger name.
func worse(a, b *ingesterpb.CardinalityStat) bool {
	if a.Value != b.Value {
		return a.Value < b.Value
	}
	return a.Name > b.Name
}

func (t *topStats) Len() int           { return len(t.kept) }
func (t *topStats) Less(i, j int) bool { return worse(t.kept[i], t.kept[j]) }
func (t *topStats) Swap(i, j int)      { t.kept[i], t.kept[j] = t.kept[j], t.kept[i] }
func (t *topStats) Push(x any)         { t.kept = append(t.kept, x.(*ingesterpb.CardinalityStat)) }
func (t *topStats) Pop() any {
	last := t.kept[len(t.kept)-1]
	t.kept = t.kept[:len(t.kept)-1]
	return last
}

// keeps reports whether a stat of this value may enter the list, so that a caller builds its name only
// then: most label pairs of a large head never do.
func (t *topStats) keeps(value uint64) bool {
	return len(t.kept) < t.limit || (t.limit > 0 && value >= t.kept[0].Value)
}

func (t *topStats) add(name string, value uint64) {
	s := &ingesterpb.CardinalityStat{Name: name, Value: value}
	switch {
	case len(t.kept) < t.limit:
		heap.Push(t, s)
	case t.limit > 0 && worse(t.kept[0], s):
		t.kept[0] = s
		heap.Fix(t, 0)
	}
}

// sorted returns the kept stats, largest value first, then by name.
func (t *topStats) sorted() []*ingesterpb.CardinalityStat {
	out := slices.Clone(t.kept)
	slices.SortFunc(out, func(a, b *ingesterpb.CardinalityStat) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
