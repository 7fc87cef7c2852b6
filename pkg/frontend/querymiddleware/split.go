package querymiddleware

// part is a piece of a split range query: the query's points from start to end (both on its grid,
// milliseconds), all within split interval number index.
type part struct {
	start, end int64
	index      int64
}

// splitRange splits the points start, start+step, ... end at multiples of interval since the Unix epoch
// (UTC midnights for a day), so that the parts' points, concatenated, are the query's. Intervals without
// a point make no part, so there are never more parts than points; the caller has bounded those. An
// interval of 0 makes one part.
func splitRange(start, end, step, interval int64) []part {
	if interval <= 0 {
		return []part{{start: start, end: end}}
	}
	first, last := floorDiv(start, interval), floorDiv(end, interval)
	parts := make([]part, 0, min(last-first+1, (end-start)/step+1))
	for t := start; t <= end; {
		index := floorDiv(t, interval)
		intervalEnd := min(end, (index+1)*interval-1)
		partEnd := t + (intervalEnd-t)/step*step
		parts = append(parts, part{start: t, end: partEnd, index: index})
		t = partEnd + step
	}
	return parts
}

// floorDiv is a/b rounded down (b > 0), so that times before 1970 fall in the right interval.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// floorMod is a - floorDiv(a, b)*b, in 0..b-1.
func floorMod(a, b int64) int64 {
	return a - floorDiv(a, b)*b
}
