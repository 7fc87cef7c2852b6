package blockstore

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// benchExemplars is a tenant's exemplar buffer of 100,000 exemplars: 10,000 series of 10 each, with
// trace IDs as OpenTelemetry makes them.
func benchExemplars() []seriesExemplars {
	out := make([]seriesExemplars, 10_000)
	for s := range out {
		out[s].lset = labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "job", "api", "instance", "10.0.0."+strconv.Itoa(s%250), "le", strconv.Itoa(s))
		for i := range 10 {
			ts := int64(1_700_000_000_000 + i*15_000)
			out[s].exemplars = append(out[s].exemplars, exemplar.Exemplar{
				Labels: labels.FromStrings("trace_id", "4bf92f3577b34da6a3ce929d0e0e"+strconv.Itoa(1000+s)+strconv.Itoa(i)), Value: 0.25, Ts: ts, HasTs: true,
			})
		}
	}
	// Label order, as a writer takes them.
	for i := range out {
		for j := i; j > 0 && labels.Compare(out[j].lset, out[j-1].lset) < 0; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func BenchmarkExemplarFile_Write(b *testing.B) {
	series := benchExemplars()
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewExemplarWriter(dir)
		require.NoError(b, err)
		for _, s := range series {
			require.NoError(b, w.Append(s.lset, s.exemplars))
		}
		require.NoError(b, w.Close())
	}
	fi, err := os.Stat(filepath.Join(dir, ExemplarsFilename))
	require.NoError(b, err)
	b.ReportMetric(float64(fi.Size()), "file-bytes")
}

// Three replicas' files of one range merged into one, as the compactor does.
func BenchmarkMergeExemplarFiles_ThreeReplicas(b *testing.B) {
	series := benchExemplars()
	var dirs []string
	for range 3 {
		dir := b.TempDir()
		w, err := NewExemplarWriter(dir)
		require.NoError(b, err)
		for _, s := range series {
			require.NoError(b, w.Append(s.lset, s.exemplars))
		}
		require.NoError(b, w.Close())
		dirs = append(dirs, dir)
	}
	out := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		n, err := MergeExemplarFiles(out, dirs, nil)
		require.NoError(b, err)
		require.EqualValues(b, 100_000, n)
	}
}

// benchExemplarFile writes benchExemplars into a file in a temporary directory and returns the directory.
func benchExemplarFile(b *testing.B) string {
	dir := b.TempDir()
	w, err := NewExemplarWriter(dir)
	require.NoError(b, err)
	for _, s := range benchExemplars() {
		require.NoError(b, w.Append(s.lset, s.exemplars))
	}
	require.NoError(b, w.Close())
	return dir
}

// countExemplars reads the exemplar file in dir, of the series want selects (nil: all), and returns how
// many exemplars it read.
func countExemplars(b *testing.B, dir string, want func(labels.Labels) bool) int {
	f, err := os.Open(filepath.Join(dir, ExemplarsFilename))
	require.NoError(b, err)
	defer f.Close()
	r, err := NewExemplarReader(f)
	require.NoError(b, err)
	if want != nil {
		r.SelectSeries(want)
	}
	n := 0
	for {
		_, es, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		require.NoError(b, err)
		n += len(es)
	}
}

func BenchmarkExemplarFile_Read(b *testing.B) {
	dir := benchExemplarFile(b)
	b.ReportAllocs()
	for b.Loop() {
		require.Equal(b, 100_000, countExemplars(b, dir, nil))
	}
}

// A selective query's read: one series of the 10,000 is wanted.
func BenchmarkExemplarFile_ReadOneSeries(b *testing.B) {
	dir := benchExemplarFile(b)
	b.ReportAllocs()
	for b.Loop() {
		require.Equal(b, 10, countExemplars(b, dir, func(lset labels.Labels) bool { return lset.Get("le") == "5000" }))
	}
}
