package querymiddleware

import (
	"cmp"
	"slices"
)

// coalesce sorts extents by start and joins those that overlap or follow each other on the grid (one
// ends a step before the next starts), so a cache entry holds few, disjoint extents in time order.
// Overlapping extents hold the same points where they overlap: the data is older than the cacheable
// bound, so every answer over it is the same.
func coalesce(extents []*extent, step int64) []*extent {
	if len(extents) < 2 {
		return extents
	}
	sorted := slices.Clone(extents)
	slices.SortFunc(sorted, func(a, b *extent) int { return cmp.Compare(a.start, b.start) })
	out := []*extent{sorted[0]}
	for _, e := range sorted[1:] {
		last := out[len(out)-1]
		if e.start > last.end+step {
			out = append(out, e)
			continue
		}
		out[len(out)-1] = join(last, e)
	}
	return out
}

// join returns the union of a and b, where b starts within a or right after it. The result owns its
// point slices: appending to them never writes into a's or b's.
func join(a, b *extent) *extent {
	if b.end <= a.end {
		return a // b adds no point
	}
	out := &extent{start: a.start, end: b.end}
	var infos orderedSet
	infos.add(a.infos...)
	infos.add(b.infos...)
	out.infos = infos.items

	byLabels := make(map[string]*series, len(a.series))
	var buf []byte
	for _, s := range a.series {
		joined := &series{Metric: s.Metric, Floats: slices.Clip(s.Floats), Histograms: slices.Clip(s.Histograms)}
		buf = s.Metric.Bytes(buf[:0])
		byLabels[string(buf)] = joined
		out.series = append(out.series, joined)
	}
	for _, s := range b.series {
		floats := s.Floats[searchFloats(s.Floats, a.end+1):]
		histograms := s.Histograms[searchHistograms(s.Histograms, a.end+1):]
		if len(floats) == 0 && len(histograms) == 0 {
			continue
		}
		buf = s.Metric.Bytes(buf[:0])
		joined, ok := byLabels[string(buf)]
		if !ok {
			joined = &series{Metric: s.Metric}
			out.series = append(out.series, joined)
		}
		joined.Floats = append(joined.Floats, floats...)
		joined.Histograms = append(joined.Histograms, histograms...)
	}
	return out
}
