package querymiddleware

import (
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// series is one series of a range query's answer, as the Prometheus API's JSON has it: float points and
// native histogram points, each in time order.
type series struct {
	Metric     labels.Labels
	Floats     []floatPoint
	Histograms []histogramPoint
}

// floatPoint is a float sample at T (milliseconds): the engine's own type, so that the frontend and the
// querier write it with the same encoder.
type floatPoint = promql.FPoint

// histogramPoint is a native histogram sample at T as the API renders it: count, sum and the non-empty
// buckets with their bounds, all of which a cached answer must give back exactly.
type histogramPoint struct {
	T          int64
	Count, Sum float64
	Buckets    []histogramBucket
}

// histogramBucket is one bucket of a histogramPoint. Boundaries says which bounds are inclusive, as the
// API encodes it: 0 upper only, 1 lower only, 2 neither, 3 both.
type histogramBucket struct {
	Boundaries          int64
	Lower, Upper, Count float64
}

// extent is a range query's answer over the points of its grid from start to end (both included,
// milliseconds): every series that has a point there, with those points. It is what the results cache
// keeps, and what each request to a querier returns.
type extent struct {
	start, end int64
	series     []*series
	// infos are the answer's info annotations: exactly those the query gives over start..end, which a
	// part of the range may not give, so the cache never answers with part of an extent that has some.
	infos []string
	// warnings are the warning annotations of an answer fresh from a querier; such an answer is not
	// cached (see storableFetches), so a cached extent has none.
	warnings []string
}

// clip returns the part of e from from to to, or nil when that is empty. The result shares e's points.
func (e *extent) clip(from, to int64) *extent {
	from, to = max(from, e.start), min(to, e.end)
	if from > to {
		return nil
	}
	if from == e.start && to == e.end {
		return e
	}
	out := &extent{start: from, end: to, infos: e.infos, series: make([]*series, 0, len(e.series))}
	for _, s := range e.series {
		floats := s.Floats[searchFloats(s.Floats, from):searchFloats(s.Floats, to+1)]
		histograms := s.Histograms[searchHistograms(s.Histograms, from):searchHistograms(s.Histograms, to+1)]
		if len(floats) > 0 || len(histograms) > 0 {
			out.series = append(out.series, &series{Metric: s.Metric, Floats: floats, Histograms: histograms})
		}
	}
	return out
}

// searchFloats returns the index of the first point at or after t.
func searchFloats(points []floatPoint, t int64) int {
	return sort.Search(len(points), func(i int) bool { return points[i].T >= t })
}

func searchHistograms(points []histogramPoint, t int64) int {
	return sort.Search(len(points), func(i int) bool { return points[i].T >= t })
}

// matrixBuilder concatenates the answers of consecutive, non-overlapping time ranges, added in time
// order, into the answer over their union.
type matrixBuilder struct {
	byLabels map[string]*series
	series   []*series
	warnings orderedSet
	infos    orderedSet
	buf      []byte
}

func newMatrixBuilder() *matrixBuilder {
	return &matrixBuilder{byLabels: map[string]*series{}}
}

// add appends e's points; e must start after every extent added before.
func (m *matrixBuilder) add(e *extent) {
	for _, s := range e.series {
		m.buf = s.Metric.Bytes(m.buf[:0])
		out, ok := m.byLabels[string(m.buf)]
		if !ok {
			out = &series{Metric: s.Metric}
			m.byLabels[string(m.buf)] = out
			m.series = append(m.series, out)
		}
		out.Floats = append(out.Floats, s.Floats...)
		out.Histograms = append(out.Histograms, s.Histograms...)
	}
	m.warnings.add(e.warnings...)
	m.infos.add(e.infos...)
}

// matrix returns the series sorted by labels, as the PromQL engine sorts a range query's result.
func (m *matrixBuilder) matrix() []*series {
	slices.SortFunc(m.series, func(a, b *series) int { return labels.Compare(a.Metric, b.Metric) })
	return m.series
}

// orderedSet keeps strings once each, in the order first added: parts repeat the same annotations.
type orderedSet struct {
	seen  map[string]struct{}
	items []string
}

func (s *orderedSet) add(items ...string) {
	for _, item := range items {
		if _, dup := s.seen[item]; dup {
			continue
		}
		if s.seen == nil {
			s.seen = map[string]struct{}{}
		}
		s.seen[item] = struct{}{}
		s.items = append(s.items, item)
	}
}
