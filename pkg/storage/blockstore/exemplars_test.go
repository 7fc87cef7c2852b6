package blockstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

type seriesExemplars struct {
	lset      labels.Labels
	exemplars []exemplar.Exemplar
}

func ex(traceID string, v float64, ts int64) exemplar.Exemplar {
	return exemplar.Exemplar{Labels: labels.FromStrings("trace_id", traceID), Value: v, Ts: ts, HasTs: true}
}

func writeExemplarFile(t *testing.T, dir string, series ...seriesExemplars) int64 {
	t.Helper()
	w, err := NewExemplarWriter(dir)
	require.NoError(t, err)
	for _, s := range series {
		require.NoError(t, w.Append(s.lset, s.exemplars))
	}
	require.NoError(t, w.Close())
	return w.Count()
}

func readExemplarFile(t *testing.T, dir string) []seriesExemplars {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, ExemplarsFilename))
	require.NoError(t, err)
	defer f.Close()
	r, err := NewExemplarReader(f)
	require.NoError(t, err)
	var out []seriesExemplars
	for {
		lset, es, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, seriesExemplars{lset, es})
	}
}

func TestExemplarFile_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	// One series with enough exemplars to be cut into several records, read back as one.
	var many []exemplar.Exemplar
	for i := range 20_000 {
		many = append(many, ex("trace-"+strconv.Itoa(i), float64(i), int64(i)))
	}
	want := []seriesExemplars{
		{labels.FromStrings("__name__", "a", "job", "x"), []exemplar.Exemplar{ex("1", 1, 10), ex("2", math.NaN(), 20)}},
		{labels.FromStrings("__name__", "b"), many},
		{labels.FromStrings("__name__", "c"), []exemplar.Exemplar{ex("3", 3, 30)}},
	}
	require.Equal(t, int64(20_003), writeExemplarFile(t, dir, want...))
	got := readExemplarFile(t, dir)
	require.Len(t, got, 3)
	for i := range want {
		require.Equal(t, want[i].lset, got[i].lset)
		require.Len(t, got[i].exemplars, len(want[i].exemplars))
		for j := range want[i].exemplars {
			require.True(t, sameExemplar(want[i].exemplars[j], got[i].exemplars[j]), "%d/%d", i, j)
		}
	}
	_, err := os.Stat(filepath.Join(dir, ExemplarsFilename+".tmp"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestExemplarFile_RefusesSeriesOutOfOrder(t *testing.T) {
	w, err := NewExemplarWriter(t.TempDir())
	require.NoError(t, err)
	defer w.Abort()
	require.NoError(t, w.Append(labels.FromStrings("__name__", "b"), []exemplar.Exemplar{ex("1", 1, 1)}))
	require.NoError(t, w.Append(labels.FromStrings("__name__", "b"), []exemplar.Exemplar{ex("2", 1, 2)}), "the same series again goes on")
	require.Error(t, w.Append(labels.FromStrings("__name__", "a"), []exemplar.Exemplar{ex("3", 1, 3)}))
}

// A file without exemplars is not written, and replaces one an earlier attempt wrote.
func TestExemplarFile_EmptyIsNoFile(t *testing.T) {
	dir := t.TempDir()
	writeExemplarFile(t, dir, seriesExemplars{labels.FromStrings("__name__", "a"), []exemplar.Exemplar{ex("1", 1, 1)}})
	require.Zero(t, writeExemplarFile(t, dir))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestExemplarFile_CorruptFilesAreErrors(t *testing.T) {
	record := func(n uint64) []byte {
		var b bytes.Buffer
		b.WriteString(exemplarsMagic)
		sw := snappy.NewBufferedWriter(&b)
		_, _ = sw.Write(binary.AppendUvarint(nil, n))
		_, _ = sw.Write([]byte{0x0a})
		_ = sw.Close()
		return b.Bytes()
	}
	garbage := func() []byte {
		var b bytes.Buffer
		b.WriteString(exemplarsMagic)
		sw := snappy.NewBufferedWriter(&b)
		_, _ = sw.Write([]byte{3, 0xff, 0xff, 0xff})
		_ = sw.Close()
		return b.Bytes()
	}
	for name, content := range map[string][]byte{
		"empty":             nil,
		"other format":      []byte("PROMETHEUS-INDEX"),
		"huge record":       record(1 << 40),
		"garbage record":    garbage(),
		"truncated record":  record(100),
		"not snappy framed": append([]byte(exemplarsMagic), 1, 2, 3, 4),
	} {
		r, err := NewExemplarReader(bytes.NewReader(content))
		if err == nil {
			_, _, err = r.Next()
		}
		require.ErrorIs(t, err, ErrExemplarsCorrupted, name)
	}
}

// Merging keeps every series once, in label order, and every exemplar once (replicas' blocks hold the
// same ones), and leaves out those keep refuses.
func TestMergeExemplarFiles(t *testing.T) {
	a, b, c, out := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	up := labels.FromStrings("__name__", "up", "job", "x")
	req := labels.FromStrings("__name__", "req", "job", "x")
	writeExemplarFile(t, a,
		seriesExemplars{req, []exemplar.Exemplar{ex("1", 1, 10), ex("2", 2, 20)}},
		seriesExemplars{up, []exemplar.Exemplar{ex("5", 5, 50)}})
	writeExemplarFile(t, b,
		seriesExemplars{req, []exemplar.Exemplar{ex("2", 2, 20), ex("3", 3, 15), ex("4", 4, 99)}})
	// c has no exemplar file.

	dropLate := func(_ labels.Labels, e exemplar.Exemplar) bool { return e.Ts < 90 }
	n, err := MergeExemplarFiles(out, []string{a, b, c}, dropLate)
	require.NoError(t, err)
	require.Equal(t, int64(4), n)
	got := readExemplarFile(t, out)
	require.Len(t, got, 2)
	require.Equal(t, req, got[0].lset)
	require.Equal(t, []int64{10, 15, 20}, timestamps(got[0].exemplars))
	require.Equal(t, up, got[1].lset)
	require.Equal(t, []int64{50}, timestamps(got[1].exemplars))

	// Nothing to merge: no file.
	empty := t.TempDir()
	n, err = MergeExemplarFiles(empty, []string{c}, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = os.Stat(filepath.Join(empty, ExemplarsFilename))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func timestamps(es []exemplar.Exemplar) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Ts
	}
	return out
}

// A reader selecting series returns those only, whole even when cut into several records.
func TestExemplarFile_SelectSeries(t *testing.T) {
	dir := t.TempDir()
	var many []exemplar.Exemplar
	for i := range 20_000 {
		many = append(many, ex("trace-"+strconv.Itoa(i), float64(i), int64(i)))
	}
	writeExemplarFile(t, dir,
		seriesExemplars{labels.FromStrings("__name__", "a"), many},
		seriesExemplars{labels.FromStrings("__name__", "b"), []exemplar.Exemplar{ex("1", 1, 1)}},
		seriesExemplars{labels.FromStrings("__name__", "c"), many},
		seriesExemplars{labels.FromStrings("__name__", "d"), []exemplar.Exemplar{ex("2", 2, 2)}},
	)
	for want, names := range map[string][]string{"b": {"b"}, "c": {"c"}, "[bc]": {"b", "c"}, "x": nil, "a|d": {"a", "d"}} {
		m := labels.MustNewMatcher(labels.MatchRegexp, "__name__", want)
		f, err := os.Open(filepath.Join(dir, ExemplarsFilename))
		require.NoError(t, err)
		r, err := NewExemplarReader(f)
		require.NoError(t, err)
		r.SelectSeries(func(lset labels.Labels) bool { return m.Matches(lset.Get("__name__")) })
		var got []string
		for {
			lset, es, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			got = append(got, lset.Get("__name__"))
			if lset.Get("__name__") == "a" || lset.Get("__name__") == "c" {
				require.Len(t, es, 20_000)
			} else {
				require.Len(t, es, 1)
			}
		}
		require.NoError(t, f.Close())
		require.Equal(t, names, got, want)
	}
}

// Readers sharing a budget fail with its error once they decoded more exemplars together; the exemplars
// of series they skip are not counted.
func TestExemplarFile_LimitExemplars(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeExemplarFile(t, a, seriesExemplars{labels.FromStrings("__name__", "x"), []exemplar.Exemplar{ex("1", 1, 1), ex("2", 2, 2)}},
		seriesExemplars{labels.FromStrings("__name__", "y"), []exemplar.Exemplar{ex("3", 3, 3)}})
	writeExemplarFile(t, b, seriesExemplars{labels.FromStrings("__name__", "x"), []exemplar.Exemplar{ex("4", 4, 4)}})
	errOver := errors.New("over budget")
	merge := func(budget int64, want func(labels.Labels) bool) error {
		var readers []*ExemplarReader
		for _, dir := range []string{a, b} {
			f, err := os.Open(filepath.Join(dir, ExemplarsFilename))
			require.NoError(t, err)
			t.Cleanup(func() { _ = f.Close() })
			r, err := NewExemplarReader(f)
			require.NoError(t, err)
			r.SelectSeries(want)
			r.LimitExemplars(&budget, errOver)
			readers = append(readers, r)
		}
		return MergeExemplars(readers, nil, func(labels.Labels, []exemplar.Exemplar) error { return nil })
	}
	require.NoError(t, merge(4, nil))
	require.ErrorIs(t, merge(3, nil), errOver)
	onlyX := func(lset labels.Labels) bool { return lset.Get("__name__") == "x" }
	require.NoError(t, merge(3, onlyX), "y's exemplar is skipped, not decoded")
}
