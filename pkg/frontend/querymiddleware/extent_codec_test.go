package querymiddleware

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func testExtents() []*extent {
	nanWithPayload := math.Float64frombits(0x7ff8000000000abc)
	long := make([]floatPoint, maxSamplesPerChunk+10) // more than one chunk
	for i := range long {
		long[i] = floatPoint{T: 100_000 + int64(i)*1000, F: float64(i%17) * 0.1}
	}
	return []*extent{
		{start: -5000, end: 60_000, infos: []string{"PromQL info: metric might not be a counter"}, series: []*series{
			{Metric: labels.FromStrings("__name__", "a", "path", `/x<y>&"z"`), Floats: []floatPoint{
				{T: -5000, F: nanWithPayload}, {T: 0, F: math.Inf(1)}, {T: 1000, F: math.Inf(-1)}, {T: 2000, F: math.Copysign(0, -1)},
				{T: 3000, F: 1e-300}, {T: 60_000, F: 0.1 + 0.2},
			}},
			{Metric: labels.EmptyLabels(), Histograms: []histogramPoint{
				{T: 0, Count: 10, Sum: 2.5, Buckets: []histogramBucket{{0, -1, -0.5, 2}, {3, -0.001, 0.001, 1}, {1, 0.5, 1, 7}}},
				{T: 30_000, Count: 0, Sum: 0},
			}},
		}},
		{start: 100_000, end: 100_000 + int64(len(long))*1000, series: []*series{
			{Metric: labels.FromStrings("__name__", "long"), Floats: long},
		}},
		{start: 1 << 50, end: 1<<50 + 1}, // an empty range: no series
	}
}

func TestEntry_DecodesWhatWasEncoded(t *testing.T) {
	extents := testExtents()
	data := encodeEntry("the full key", extents)
	got, err := decodeEntry("the full key", data)
	require.NoError(t, err)
	require.Len(t, got, len(extents))
	for i, want := range extents {
		requireSameExtent(t, want, got[i])
	}
}

// requireSameExtent compares float bits, which require.Equal does not for NaN.
func requireSameExtent(t *testing.T, want, got *extent) {
	t.Helper()
	require.Equal(t, want.start, got.start)
	require.Equal(t, want.end, got.end)
	require.Equal(t, want.infos, got.infos)
	require.Len(t, got.series, len(want.series))
	for i, ws := range want.series {
		gs := got.series[i]
		require.Equal(t, ws.Metric.String(), gs.Metric.String())
		require.Len(t, gs.Floats, len(ws.Floats))
		for j, p := range ws.Floats {
			require.Equal(t, p.T, gs.Floats[j].T)
			require.Equal(t, math.Float64bits(p.F), math.Float64bits(gs.Floats[j].F), "point %d of %s", j, ws.Metric)
		}
		require.Equal(t, ws.Histograms, gs.Histograms)
	}
}

func TestEntry_OfAnotherKeyIsNotUsed(t *testing.T) {
	_, err := decodeEntry("key b", encodeEntry("key a", testExtents()))
	require.ErrorIs(t, err, errKeyMismatch)
}

func TestEntry_MalformedIsAnErrorNotAPanic(t *testing.T) {
	data := encodeEntry("k", testExtents())
	for n := 0; n < len(data); n += max(1, n/50) {
		_, err := decodeEntry("k", data[:n])
		require.Error(t, err, "truncated to %d bytes", n)
	}
	_, err := decodeEntry("k", append(append([]byte(nil), data...), 0))
	require.ErrorContains(t, err, "after the last extent")

	outOfOrder := encodeEntry("k", []*extent{{start: 10, end: 20}, {start: 15, end: 30}})
	_, err = decodeEntry("k", outOfOrder)
	require.ErrorContains(t, err, "overlaps")

	pointOutside := encodeEntry("k", []*extent{{start: 10, end: 20, series: []*series{{Metric: labels.FromStrings("a", "b"), Floats: []floatPoint{{T: 21, F: 1}}}}}})
	_, err = decodeEntry("k", pointOutside)
	require.ErrorContains(t, err, "outside")
}

func FuzzDecodeEntry(f *testing.F) {
	small := testExtents()
	small = append(small[:1], small[2:]...) // without the long series: small inputs fuzz faster
	f.Add(encodeEntry("k", small))
	f.Add(encodeEntry("k", nil))
	f.Add([]byte(entryMagic + "\x01k\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		extents, err := decodeEntry("k", data)
		if err != nil {
			return
		}
		// What decodes is consistent: extents in order and disjoint, points within them.
		for i, e := range extents {
			require.LessOrEqual(t, e.start, e.end)
			if i > 0 {
				require.Greater(t, e.start, extents[i-1].end)
			}
			for _, s := range e.series {
				require.NoError(t, checkPoints(s, e.start, e.end))
			}
		}
	})
}

func TestCoalesce_JoinsAdjacentAndOverlappingExtents(t *testing.T) {
	const step = 10
	ls := func(v string) labels.Labels { return labels.FromStrings("s", v) }
	points := func(ts ...int64) []floatPoint {
		out := make([]floatPoint, len(ts))
		for i, t := range ts {
			out[i] = floatPoint{T: t, F: float64(t)}
		}
		return out
	}
	a := &extent{start: 0, end: 20, infos: []string{"i1"}, series: []*series{{Metric: ls("x"), Floats: points(0, 10, 20)}}}
	b := &extent{start: 30, end: 50, infos: []string{"i1", "i2"}, series: []*series{{Metric: ls("x"), Floats: points(30, 50)}, {Metric: ls("y"), Floats: points(40)}}}
	c := &extent{start: 40, end: 70, series: []*series{{Metric: ls("x"), Floats: points(50, 60, 70)}, {Metric: ls("y"), Floats: points(40)}}}
	d := &extent{start: 90, end: 90} // a gap before it: kept apart

	got := coalesce([]*extent{d, c, a, b}, step)

	require.Len(t, got, 2)
	require.Equal(t, int64(0), got[0].start)
	require.Equal(t, int64(70), got[0].end)
	require.Equal(t, []string{"i1", "i2"}, got[0].infos)
	require.Len(t, got[0].series, 2)
	require.Equal(t, points(0, 10, 20, 30, 50, 60, 70), got[0].series[0].Floats)
	require.Equal(t, points(40), got[0].series[1].Floats)
	require.Same(t, d, got[1])
	require.Equal(t, points(0, 10, 20), a.series[0].Floats, "inputs are not modified")
	require.Len(t, a.series, 1)
}

func TestExtentClip(t *testing.T) {
	e := &extent{start: 0, end: 40, series: []*series{
		{Metric: labels.FromStrings("s", "x"), Floats: []floatPoint{{T: 0, F: 1}, {T: 10, F: 2}, {T: 40, F: 3}}},
		{Metric: labels.FromStrings("s", "y"), Histograms: []histogramPoint{{T: 30, Count: 1}}},
	}}
	require.Same(t, e, e.clip(-100, 100))
	require.Nil(t, e.clip(41, 100))
	got := e.clip(5, 30)
	require.Equal(t, int64(5), got.start)
	require.Equal(t, int64(30), got.end)
	require.Len(t, got.series, 2)
	require.Equal(t, []floatPoint{{T: 10, F: 2}}, got.series[0].Floats)
	got = e.clip(35, 100)
	require.Len(t, got.series, 1, "a series without points in the range is left out")
}
