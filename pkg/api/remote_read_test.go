package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

var (
	samplesOnly  = []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES}
	chunksFirst  = []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}
	samplesFirst = []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS}
)

func eq(name, value string) *prompb.LabelMatcher {
	return &prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: name, Value: value}
}

func re(name, value string) *prompb.LabelMatcher {
	return &prompb.LabelMatcher{Type: prompb.LabelMatcher_RE, Name: name, Value: value}
}

func readQueryOver(start, end time.Time, ms ...*prompb.LabelMatcher) *prompb.Query {
	return &prompb.Query{StartTimestampMs: start.UnixMilli(), EndTimestampMs: end.UnixMilli(), Matchers: ms}
}

// encodeRead marshals and compresses a read request as Prometheus' remote read client does.
func encodeRead(t *testing.T, req *prompb.ReadRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

type readAnswer struct {
	status int
	header http.Header
	body   []byte
}

// postRead sends body to the API's /read with the headers Prometheus sends, overridden by header.
func postRead(t *testing.T, url string, body io.Reader, header http.Header) readAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/read", body)
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	for name, values := range header {
		req.Header[name] = values
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return readAnswer{status: resp.StatusCode, header: resp.Header, body: out}
}

func (a *testAPI) read(t *testing.T, req *prompb.ReadRequest) readAnswer {
	t.Helper()
	return postRead(t, a.url, bytes.NewReader(encodeRead(t, req)), nil)
}

// readSeries is a series of an answer in a form both response types and the TSDB convert to.
type readSeries struct {
	Labels string
	Points []string
}

func floatPoint(ts int64, v float64) string {
	return strconv.FormatInt(ts, 10) + ":" + strconv.FormatFloat(v, 'g', -1, 64)
}

func histogramPoint(ts int64, h *histogram.FloatHistogram) string {
	return strconv.FormatInt(ts, 10) + ":" + h.String()
}

// samplesAnswer decodes a SAMPLES answer into one list of series per query.
func samplesAnswer(t *testing.T, ans readAnswer) [][]readSeries {
	t.Helper()
	require.Equal(t, http.StatusOK, ans.status, "%s", ans.body)
	require.Equal(t, "application/x-protobuf", ans.header.Get("Content-Type"))
	require.Equal(t, "snappy", ans.header.Get("Content-Encoding"))
	raw, err := snappy.Decode(nil, ans.body)
	require.NoError(t, err)
	var resp prompb.ReadResponse
	require.NoError(t, resp.Unmarshal(raw))
	out := make([][]readSeries, len(resp.Results))
	b := labels.NewScratchBuilder(0)
	for i, result := range resp.Results {
		out[i] = []readSeries{}
		for _, ts := range result.Timeseries {
			s := readSeries{Labels: ts.ToLabels(&b, nil).String()}
			for _, sample := range ts.Samples {
				s.Points = append(s.Points, floatPoint(sample.Timestamp, sample.Value))
			}
			for _, h := range ts.Histograms {
				fh := h.ToFloatHistogram()
				if !h.IsFloatHistogram() {
					fh = h.ToIntHistogram().ToFloat(nil)
				}
				s.Points = append(s.Points, histogramPoint(h.Timestamp, fh))
			}
			out[i] = append(out[i], s)
		}
	}
	return out
}

// readFrames splits a streamed answer into its messages, checking each frame's checksum as Prometheus'
// reader does; it fails on anything that is not a whole frame.
func readFrames(body []byte) ([]*prompb.ChunkedReadResponse, error) {
	r := bufio.NewReader(bytes.NewReader(body))
	var frames []*prompb.ChunkedReadResponse
	for {
		size, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		if size > 16<<20 {
			return frames, fmt.Errorf("frame of %d bytes", size)
		}
		var sum uint32
		if err := binary.Read(r, binary.BigEndian, &sum); err != nil {
			return frames, err
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return frames, err
		}
		if crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != sum {
			return frames, errors.New("checksum mismatch")
		}
		msg := &prompb.ChunkedReadResponse{}
		if err := msg.Unmarshal(data); err != nil {
			return frames, err
		}
		frames = append(frames, msg)
	}
}

// chunksAnswer decodes a STREAMED_XOR_CHUNKS answer for a request of n queries.
func chunksAnswer(t *testing.T, ans readAnswer, n int) [][]readSeries {
	t.Helper()
	require.Equal(t, http.StatusOK, ans.status, "%s", ans.body)
	require.Equal(t, "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse", ans.header.Get("Content-Type"))
	frames, err := readFrames(ans.body)
	require.NoError(t, err)
	out := make([][]readSeries, n)
	for i := range out {
		out[i] = []readSeries{}
	}
	b := labels.NewScratchBuilder(0)
	for _, frame := range frames {
		require.Len(t, frame.ChunkedSeries, 1, "one series per frame")
		cs := frame.ChunkedSeries[0]
		lset := cs.ToLabels(&b, nil).String()
		q := &out[frame.QueryIndex]
		if len(*q) == 0 || (*q)[len(*q)-1].Labels != lset {
			*q = append(*q, readSeries{Labels: lset})
		}
		s := &(*q)[len(*q)-1]
		for _, c := range cs.Chunks {
			require.Contains(t, []prompb.Chunk_Encoding{prompb.Chunk_XOR, prompb.Chunk_HISTOGRAM, prompb.Chunk_FLOAT_HISTOGRAM}, c.Type)
			chk, err := chunkenc.FromData(chunkenc.Encoding(c.Type), c.Data)
			require.NoError(t, err)
			s.Points = append(s.Points, iteratorPoints(t, chk.Iterator(nil), c.MinTimeMs, c.MaxTimeMs)...)
		}
	}
	return out
}

// iteratorPoints reads it; mint and maxt, when not both 0, must bound its samples.
func iteratorPoints(t *testing.T, it chunkenc.Iterator, mint, maxt int64) []string {
	t.Helper()
	var points []string
	for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
		ts := it.AtT()
		if mint != 0 || maxt != 0 {
			require.True(t, ts >= mint && ts <= maxt, "sample at %d outside its chunk's %d..%d", ts, mint, maxt)
		}
		switch typ {
		case chunkenc.ValFloat:
			_, v := it.At()
			points = append(points, floatPoint(ts, v))
		case chunkenc.ValHistogram:
			_, h := it.AtHistogram(nil)
			points = append(points, histogramPoint(ts, h.ToFloat(nil)))
		case chunkenc.ValFloatHistogram:
			_, fh := it.AtFloatHistogram(nil)
			points = append(points, histogramPoint(ts, fh))
		}
	}
	require.NoError(t, it.Err())
	return points
}

// storedSeries is what a read of the TSDB itself gives for the same selection.
func storedSeries(t *testing.T, db storage.Queryable, mint, maxt int64, ms ...*labels.Matcher) []readSeries {
	t.Helper()
	q, err := db.Querier(mint, maxt)
	require.NoError(t, err)
	defer q.Close()
	set := q.Select(context.Background(), true, nil, ms...)
	out := []readSeries{}
	for set.Next() {
		out = append(out, readSeries{Labels: set.At().Labels().String(), Points: iteratorPoints(t, set.At().Iterator(nil), 0, 0)})
	}
	require.NoError(t, set.Err())
	return out
}

func TestRemoteRead_BothResponseTypesAnswerWhatIsStored(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	mid := dataStart.Add(5 * time.Minute)
	queries := []*prompb.Query{
		readQueryOver(dataStart, dataEnd, eq("__name__", "up")),
		readQueryOver(mid, dataEnd, re("__name__", ".+"), eq("code", "200")),
		readQueryOver(dataStart, dataEnd, eq("__name__", "nothing")),
		readQueryOver(dataStart.Add(-time.Hour), dataStart.Add(-time.Minute), eq("__name__", "up")),
	}
	want := [][]readSeries{
		storedSeries(t, a.db, dataStart.UnixMilli(), dataEnd.UnixMilli(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")),
		storedSeries(t, a.db, mid.UnixMilli(), dataEnd.UnixMilli(), labels.MustNewMatcher(labels.MatchEqual, "code", "200")),
		{},
		{},
	}
	require.Len(t, want[0], 2)
	require.Len(t, want[1], 1)
	require.Less(t, len(want[1][0].Points), len(want[0][0].Points), "the second query reads half the range")

	for _, tc := range []struct {
		name     string
		accepted []prompb.ReadRequest_ResponseType
		streamed bool
	}{
		{name: "no accepted types means samples", accepted: nil},
		{name: "samples", accepted: samplesOnly},
		{name: "samples first", accepted: samplesFirst},
		{name: "chunks first", accepted: chunksFirst, streamed: true},
		{name: "chunks only", accepted: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS}, streamed: true},
		{name: "an unknown type is skipped", accepted: []prompb.ReadRequest_ResponseType{7, prompb.ReadRequest_STREAMED_XOR_CHUNKS}, streamed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := a.read(t, &prompb.ReadRequest{Queries: queries, AcceptedResponseTypes: tc.accepted})
			if tc.streamed {
				require.Equal(t, want, chunksAnswer(t, ans, len(queries)))
			} else {
				require.Equal(t, want, samplesAnswer(t, ans))
			}
		})
	}
}

// Prometheus passes a selector's hints to its TSDB as they come, and so does Strata, to the querier: the
// range narrows the read, and the "series" function asks for label sets only, no samples, where
// Prometheus' TSDB honours it.
func TestRemoteRead_HintsAreHonoured(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	from, to := dataStart.Add(2*time.Minute), dataStart.Add(3*time.Minute)
	up := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")
	withHints := func(h *prompb.ReadHints) *prompb.Query {
		q := readQueryOver(dataStart, dataEnd, eq("__name__", "up"))
		q.Hints = h
		return q
	}
	narrow := storedSeries(t, a.db, from.UnixMilli(), to.UnixMilli(), up)
	require.Len(t, narrow[0].Points, 5)
	labelsOnly := []readSeries{{Labels: narrow[0].Labels}, {Labels: narrow[1].Labels}}

	for _, tc := range []struct {
		name        string
		hints       *prompb.ReadHints
		wantSamples []readSeries
		wantChunks  []readSeries
	}{
		{name: "range of a rate", hints: &prompb.ReadHints{StartMs: from.UnixMilli(), EndMs: to.UnixMilli(), StepMs: 15000, Func: "rate", RangeMs: 60000, By: true, Grouping: []string{"job"}},
			wantSamples: narrow, wantChunks: narrow},
		{name: "range wider than the query's is cut to it", hints: &prompb.ReadHints{StartMs: 0, EndMs: dataEnd.Add(time.Hour).UnixMilli()},
			wantSamples: storedSeries(t, a.db, dataStart.UnixMilli(), dataEnd.UnixMilli(), up), wantChunks: storedSeries(t, a.db, dataStart.UnixMilli(), dataEnd.UnixMilli(), up)},
		// As from Prometheus' TSDB: label sets only in samples, but whole chunks in streamed answers,
		// which its chunk querier reads.
		{name: "series function", hints: &prompb.ReadHints{StartMs: from.UnixMilli(), EndMs: to.UnixMilli(), Func: "series"},
			wantSamples: labelsOnly, wantChunks: narrow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := withHints(tc.hints)
			require.Equal(t, [][]readSeries{tc.wantSamples}, samplesAnswer(t, a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{q}, AcceptedResponseTypes: samplesOnly})))
			require.Equal(t, [][]readSeries{tc.wantChunks}, chunksAnswer(t, a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{q}, AcceptedResponseTypes: chunksFirst}), 1))
		})
	}
}

func TestRemoteRead_NativeHistograms(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	for i := range 300 {
		ts := dataStart.Add(time.Duration(i) * step).UnixMilli()
		_, err := app.AppendHistogram(0, labels.FromStrings("__name__", "latency_seconds"), ts, tsdbutil.GenerateTestHistogram(int64(i)), nil)
		require.NoError(t, err)
		_, err = app.AppendHistogram(0, labels.FromStrings("__name__", "ratio"), ts, nil, tsdbutil.GenerateTestFloatHistogram(int64(i)))
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	a := newTestAPI(t, testEngineConfig(), db)

	end := dataStart.Add(300 * step)
	want := [][]readSeries{storedSeries(t, db, dataStart.UnixMilli(), end.UnixMilli(), labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))}
	require.Len(t, want[0], 2)
	require.Len(t, want[0][0].Points, 300)
	queries := []*prompb.Query{readQueryOver(dataStart, end, re("__name__", ".+"))}
	require.Equal(t, want, samplesAnswer(t, a.read(t, &prompb.ReadRequest{Queries: queries})))
	require.Equal(t, want, chunksAnswer(t, a.read(t, &prompb.ReadRequest{Queries: queries, AcceptedResponseTypes: chunksFirst}), 1))
}

// A request without queries gets an empty answer of the type it asked for, as from Prometheus.
func TestRemoteRead_NoQueries(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	require.Equal(t, [][]readSeries{}, samplesAnswer(t, a.read(t, &prompb.ReadRequest{})))
	ans := a.read(t, &prompb.ReadRequest{AcceptedResponseTypes: chunksFirst})
	require.Equal(t, [][]readSeries{}, chunksAnswer(t, ans, 0))
	require.Empty(t, ans.body)
}

// generatedQueryable holds one series of n float samples, one a second, made as they are read.
type generatedQueryable struct{ n int }

func (g generatedQueryable) Querier(int64, int64) (storage.Querier, error) { return g, nil }

func (g generatedQueryable) Select(context.Context, bool, *storage.SelectHints, ...*labels.Matcher) storage.SeriesSet {
	return &generatedSet{n: g.n}
}

func (generatedQueryable) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (generatedQueryable) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (generatedQueryable) Close() error { return nil }

type generatedSet struct {
	n    int
	done bool
}

func (s *generatedSet) Next() bool {
	if s.done {
		return false
	}
	s.done = true
	return true
}

func (s *generatedSet) At() storage.Series {
	return &storage.SeriesEntry{
		Lset: labels.FromStrings("__name__", "noise", "job", "generator"),
		SampleIteratorFn: func(chunkenc.Iterator) chunkenc.Iterator {
			return &generatedIterator{n: s.n, i: -1, rnd: rand.New(rand.NewPCG(1, 2))}
		},
	}
}

func (*generatedSet) Err() error                        { return nil }
func (*generatedSet) Warnings() annotations.Annotations { return nil }

// generatedIterator yields random values, which compress badly: frames fill up fast.
type generatedIterator struct {
	n, i int
	v    float64
	rnd  *rand.Rand
}

func (it *generatedIterator) Next() chunkenc.ValueType {
	if it.i+1 >= it.n {
		return chunkenc.ValNone
	}
	it.i++
	it.v = it.rnd.Float64()
	return chunkenc.ValFloat
}

func (it *generatedIterator) Seek(t int64) chunkenc.ValueType {
	for it.i < 0 || it.AtT() < t {
		if it.Next() == chunkenc.ValNone {
			return chunkenc.ValNone
		}
	}
	return chunkenc.ValFloat
}

func (it *generatedIterator) At() (int64, float64) { return it.AtT(), it.v }
func (it *generatedIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	panic("no histograms")
}

func (it *generatedIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	panic("no histograms")
}
func (it *generatedIterator) AtT() int64  { return int64(it.i) * 1000 }
func (it *generatedIterator) AtST() int64 { return 0 }
func (it *generatedIterator) Err() error  { return nil }

// A long series is split over frames of about 1 MiB of chunks (maxReadFrameBytes), each with the series'
// labels, which the client puts back together.
func TestRemoteRead_LongSeriesSpanFrames(t *testing.T) {
	const samples = 400_000
	a := newTestAPI(t, testEngineConfig(), generatedQueryable{n: samples})
	ans := a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{{StartTimestampMs: 0, EndTimestampMs: samples * 1000, Matchers: []*prompb.LabelMatcher{eq("job", "generator")}}}, AcceptedResponseTypes: chunksFirst})
	frames, err := readFrames(ans.body)
	require.NoError(t, err)
	require.Greater(t, len(frames), 2)
	next := int64(0)
	for i, frame := range frames {
		require.Len(t, frame.ChunkedSeries, 1)
		cs := frame.ChunkedSeries[0]
		require.Equal(t, `{__name__="noise", job="generator"}`, cs.ToLabels(&labels.ScratchBuilder{}, nil).String())
		chunkBytes := 0
		for _, c := range cs.Chunks {
			require.Equal(t, next, c.MinTimeMs, "chunks follow each other")
			next = c.MaxTimeMs + 1000
			chunkBytes += c.Size()
		}
		if i < len(frames)-1 {
			last := cs.Chunks[len(cs.Chunks)-1].Size()
			require.GreaterOrEqual(t, chunkBytes, maxReadFrameBytes-1024, "frame %d is full", i)
			require.Less(t, chunkBytes-last, maxReadFrameBytes, "frame %d exceeds the bound by one chunk at most", i)
		}
	}
	require.Equal(t, int64(samples*1000), next)
	got := chunksAnswer(t, ans, 1)
	require.Len(t, got[0], 1)
	require.Len(t, got[0][0].Points, samples)
}

// tenantRecorder remembers the tenant of each read.
type tenantRecorder struct {
	storage.Queryable
	mu      sync.Mutex
	tenants []string
}

func (r *tenantRecorder) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := r.Queryable.Querier(mint, maxt)
	return tenantRecordingQuerier{Querier: q, r: r}, err
}

type tenantRecordingQuerier struct {
	storage.Querier
	r *tenantRecorder
}

func (q tenantRecordingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	id, _ := tenant.FromContext(ctx)
	q.r.mu.Lock()
	q.r.tenants = append(q.r.tenants, id)
	q.r.mu.Unlock()
	return q.Querier.Select(ctx, sortSeries, hints, ms...)
}

func TestRemoteRead_ReadsAsTheRequestsTenant(t *testing.T) {
	rec := &tenantRecorder{Queryable: openTestDB(t)}
	cfg := testEngineConfig()
	a := NewPrometheusAPI(querier.NewEngine(cfg, nil, slog.New(slog.DiscardHandler)), rec, &fakeMetadata{}, cfg, validation.NewOverrides(validation.DefaultLimits(), nil), slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	a.Register(mux, "/api/v1", TenantMiddleware(true))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	body := encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{readQueryOver(dataStart, dataEnd, eq("__name__", "up"))}})
	ans := postRead(t, srv.URL+"/api/v1", bytes.NewReader(body), http.Header{"X-Scope-Orgid": {"team-a"}})
	require.Len(t, samplesAnswer(t, ans)[0], 2)
	require.Equal(t, []string{"team-a"}, rec.tenants)

	ans = postRead(t, srv.URL+"/api/v1", bytes.NewReader(body), nil)
	require.Equal(t, http.StatusUnauthorized, ans.status)
	require.Contains(t, string(ans.body), "no tenant ID")
	require.Len(t, rec.tenants, 1, "nothing read without a tenant")
}

func TestRemoteRead_RefusesBadRequests(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	valid := &prompb.ReadRequest{Queries: []*prompb.Query{readQueryOver(dataStart, dataEnd, eq("__name__", "up"))}}
	tooMany := &prompb.ReadRequest{}
	for range maxReadQueries + 1 {
		tooMany.Queries = append(tooMany.Queries, readQueryOver(dataStart, dataEnd, eq("__name__", "up")))
	}
	withQuery := func(q *prompb.Query) *prompb.ReadRequest { return &prompb.ReadRequest{Queries: []*prompb.Query{q}} }
	// A snappy length header announcing n bytes, followed by a few bytes that cannot hold them.
	lyingLength := func(n uint64) []byte {
		return append(binary.AppendUvarint(nil, n), []byte{0, 1, 2, 3, 4, 5, 6, 7}...)
	}

	for _, tc := range []struct {
		name    string
		body    []byte
		header  http.Header
		status  int
		message string
	}{
		{name: "gzip", body: encodeRead(t, valid), header: http.Header{"Content-Encoding": {"gzip"}}, status: 400, message: `unsupported Content-Encoding "gzip"`},
		{name: "JSON", body: encodeRead(t, valid), header: http.Header{"Content-Type": {"application/json"}}, status: 400, message: `unsupported Content-Type "application/json"`},
		{name: "a form", body: encodeRead(t, valid), header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, status: 400, message: "unsupported Content-Type"},
		{name: "not snappy", body: []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), status: 400, message: "not snappy-compressed"},
		{name: "corrupt snappy", body: append(binary.AppendUvarint(nil, 8), 0xff, 0xff, 0xff, 0xff, 0xff), status: 400, message: "not valid snappy"},
		{name: "uncompressed protobuf", body: func() []byte { b, _ := valid.Marshal(); return b }(), status: 400, message: "snappy"},
		{name: "snappy but not a ReadRequest", body: snappy.Encode(nil, []byte("\xff\xff\xff\xffnot protobuf")), status: 400, message: "not a prometheus.ReadRequest"},
		{name: "length header lies under the limit", body: lyingLength(maxReadRequestBytes), status: 400, message: "cannot decompress to the 10485760 bytes"},
		{name: "length header over the limit", body: lyingLength(maxReadRequestBytes + 1), status: 413, message: "decompressed body would be 10485761 bytes"},
		{name: "length header over 4 GiB", body: lyingLength(1 << 40), status: 413, message: "decompressed body would be"},
		{name: "body over the limit", body: make([]byte, maxReadRequestBytes+1), status: 413, message: "request body is 10485761 bytes"},
		{name: "too many queries", body: encodeRead(t, tooMany), status: 400, message: "101 queries, at most 100"},
		{name: "bad regexp", body: encodeRead(t, withQuery(readQueryOver(dataStart, dataEnd, re("job", "(")))), status: 400, message: `query 0: invalid matcher job=~"("`},
		{name: "unknown matcher type", body: encodeRead(t, withQuery(readQueryOver(dataStart, dataEnd, &prompb.LabelMatcher{Type: 9, Name: "job", Value: "x"}))), status: 400, message: `matcher on "job" has unknown type 9`},
		{name: "no supported response type", body: encodeRead(t, &prompb.ReadRequest{Queries: valid.Queries, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{5}}), status: 400, message: "none of the accepted response types"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := postRead(t, a.url, bytes.NewReader(tc.body), tc.header)
			require.Equal(t, tc.status, ans.status, "%s", ans.body)
			require.Contains(t, string(ans.body), tc.message)
			require.Contains(t, ans.header.Get("Content-Type"), "text/plain")
			require.Empty(t, ans.header.Get("Content-Encoding"))
		})
	}

	t.Run("body over the limit without a length", func(t *testing.T) {
		// A reader of unknown length: the body goes chunked, the limit holds while reading.
		body := io.MultiReader(bytes.NewReader(make([]byte, maxReadRequestBytes)), strings.NewReader("x"))
		ans := postRead(t, a.url, body, nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, ans.status, "%s", ans.body)
		require.Contains(t, string(ans.body), "larger than 10485760 bytes")
	})
	t.Run("headers may be left out", func(t *testing.T) {
		ans := postRead(t, a.url, bytes.NewReader(encodeRead(t, valid)), http.Header{"Content-Type": nil, "Content-Encoding": nil})
		require.Len(t, samplesAnswer(t, ans)[0], 2)
		ans = postRead(t, a.url, bytes.NewReader(encodeRead(t, valid)), http.Header{"Content-Type": {"application/x-protobuf; proto=prometheus.ReadRequest"}, "Content-Encoding": {"SNAPPY"}})
		require.Len(t, samplesAnswer(t, ans)[0], 2)
	})
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			req, err := http.NewRequest(method, a.url+"/read", bytes.NewReader(encodeRead(t, valid)))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
			require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))
		})
	}
}

// A length header that lies costs nothing: the body is refused before a buffer of the announced size is
// allocated.
func TestRemoteRead_LyingLengthDoesNotAllocate(t *testing.T) {
	body := append(binary.AppendUvarint(nil, maxReadRequestBytes), make([]byte, 64)...)
	allocs := testing.Benchmark(func(b *testing.B) {
		for range b.N {
			req := httptest.NewRequest(http.MethodPost, "/read", bytes.NewReader(body))
			_, err := decodeReadRequest(req)
			if err == nil {
				b.Fatal("accepted")
			}
		}
	}).AllocedBytesPerOp()
	require.Less(t, allocs, int64(64<<10), "bytes allocated per refused request")
}

// A read goes through the same queryable as PromQL, so the tenant's fetch limits apply to the whole
// request (one querier for all its queries), answered 400: the request's fault, not worth retrying.
func TestRemoteRead_FetchLimits(t *testing.T) {
	limits := defaultTestLimits()
	limits.MaxFetchedSeriesPerQuery = 1
	db := openTestDB(t)
	a := newTestAPIWithLimits(t, testEngineConfig(), querier.NewFetchLimitedQueryable(db, validation.NewOverrides(limits, nil), 0), limits)
	everything := readQueryOver(dataStart, dataEnd, re("__name__", ".*"))
	upA := readQueryOver(dataStart, dataEnd, eq("__name__", "up"), eq("instance", "a"))
	upB := readQueryOver(dataStart, dataEnd, eq("__name__", "up"), eq("instance", "b"))

	for _, accepted := range [][]prompb.ReadRequest_ResponseType{samplesOnly, chunksFirst} {
		t.Run(accepted[0].String(), func(t *testing.T) {
			ans := a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{everything}, AcceptedResponseTypes: accepted})
			require.Equal(t, http.StatusBadRequest, ans.status, "%s", ans.body)
			require.Contains(t, string(ans.body), "err-strata-max-fetched-series-per-query")

			// The second query crosses the limit: a streamed answer has sent the first one's frames by
			// then, and ends in a way no client takes for a whole answer.
			ans = a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{upA, upB}, AcceptedResponseTypes: accepted})
			requireReadFailed(t, ans, http.StatusBadRequest, "err-strata-max-fetched-series-per-query")

			// The same series twice is one series.
			ans = a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{upA, upA}, AcceptedResponseTypes: accepted})
			require.Equal(t, http.StatusOK, ans.status, "%s", ans.body)
		})
	}
}

// SAMPLES answers decode every sample into memory: -querier.max-samples bounds the whole request.
// Streamed chunks are not bounded by it.
func TestRemoteRead_SampleLimit(t *testing.T) {
	cfg := testEngineConfig()
	perSeries := int(dataEnd.Sub(dataStart)/step) + 1
	cfg.MaxSamples = 2*perSeries - 1
	a := newTestAPI(t, cfg, nil)
	upA := readQueryOver(dataStart, dataEnd, eq("__name__", "up"), eq("instance", "a"))
	upB := readQueryOver(dataStart, dataEnd, eq("__name__", "up"), eq("instance", "b"))

	ans := a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{upA}})
	require.Len(t, samplesAnswer(t, ans)[0][0].Points, perSeries)
	for name, queries := range map[string][]*prompb.Query{
		"one query":          {readQueryOver(dataStart, dataEnd, eq("__name__", "up"))},
		"across the queries": {upA, upB},
	} {
		ans := a.read(t, &prompb.ReadRequest{Queries: queries})
		require.Equal(t, http.StatusBadRequest, ans.status, name)
		require.Contains(t, string(ans.body), fmt.Sprintf("more than %d samples (-querier.max-samples)", cfg.MaxSamples), name)
		ans = a.read(t, &prompb.ReadRequest{Queries: queries, AcceptedResponseTypes: chunksFirst})
		require.Len(t, chunksAnswer(t, ans, len(queries))[0][0].Points, perSeries, name)
	}
}

// failingQueryable fails the reads of series named "broken", and reads the rest from a TSDB.
type failingQueryable struct {
	storage.Queryable
	err error
}

func (f failingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := f.Queryable.Querier(mint, maxt)
	return failingQuerier{Querier: q, err: f.err}, err
}

type failingQuerier struct {
	storage.Querier
	err error
}

func (q failingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	for _, m := range ms {
		if m.Name == "__name__" && m.Value == "broken" {
			return storage.ErrSeriesSet(q.err)
		}
	}
	return q.Querier.Select(ctx, sortSeries, hints, ms...)
}

func TestRemoteRead_StorageFailures(t *testing.T) {
	up := readQueryOver(dataStart, dataEnd, eq("__name__", "up"))
	broken := readQueryOver(dataStart, dataEnd, eq("__name__", "broken"))
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{name: "unreachable ingester", err: errors.New("ingester-3 is unreachable"), status: 500},
		{name: "querier full", err: &querier.SeriesInFlightError{Max: 10}, status: 503},
		{name: "timeout", err: context.DeadlineExceeded, status: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAPI(t, testEngineConfig(), failingQueryable{Queryable: openTestDB(t), err: tc.err})
			for _, accepted := range [][]prompb.ReadRequest_ResponseType{samplesOnly, chunksFirst} {
				// Failing before anything is sent, the status says so.
				ans := a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{broken, up}, AcceptedResponseTypes: accepted})
				require.Equal(t, tc.status, ans.status, "%s", ans.body)
				require.Contains(t, string(ans.body), tc.err.Error())

				ans = a.read(t, &prompb.ReadRequest{Queries: []*prompb.Query{up, broken}, AcceptedResponseTypes: accepted})
				requireReadFailed(t, ans, tc.status, tc.err.Error())
			}
		})
	}
}

// requireReadFailed checks that a read failed with status and message, or, for a streamed answer whose
// status was sent before the failure, that the frames end in the message, which is no valid frame.
func requireReadFailed(t *testing.T, ans readAnswer, status int, message string) {
	t.Helper()
	require.Contains(t, string(ans.body), message)
	if !strings.HasPrefix(ans.header.Get("Content-Type"), "application/x-streamed-protobuf") {
		require.Equal(t, status, ans.status, "%s", ans.body)
		return
	}
	require.Equal(t, http.StatusOK, ans.status)
	frames, err := readFrames(ans.body)
	require.Error(t, err, "a truncated stream must not read as a whole one")
	require.NotEmpty(t, frames, "the failure came after some frames")
}

// The first heldReadBytes of a streamed answer wait for the status: a failure past them can only break
// the stream, in a way that no client takes for the end of the answer.
func TestRemoteRead_FailureAfterTheHeldBytesBreaksTheStream(t *testing.T) {
	storageErr := errors.New("ingester-3 is unreachable")
	a := newTestAPI(t, testEngineConfig(), failingQueryable{Queryable: generatedQueryable{n: 600_000}, err: storageErr})
	queries := []*prompb.Query{
		{StartTimestampMs: 0, EndTimestampMs: 600_000_000, Matchers: []*prompb.LabelMatcher{eq("job", "generator")}},
		readQueryOver(dataStart, dataEnd, eq("__name__", "broken")),
	}
	ans := a.read(t, &prompb.ReadRequest{Queries: queries, AcceptedResponseTypes: chunksFirst})
	require.Greater(t, len(ans.body), heldReadBytes, "the first query's answer is larger than what is held")
	requireReadFailed(t, ans, http.StatusOK, storageErr.Error())

	// The same over SAMPLES is refused whole.
	ans = a.read(t, &prompb.ReadRequest{Queries: queries, AcceptedResponseTypes: samplesOnly})
	require.Equal(t, http.StatusInternalServerError, ans.status)
	require.Contains(t, string(ans.body), storageErr.Error())
}

// Like the query API, a read ends at -querier.timeout, and at StopQueries with 503.
func TestRemoteRead_EndsAtTheTimeoutAndAtShutdown(t *testing.T) {
	cfg := testEngineConfig()
	cfg.Timeout = 100 * time.Millisecond
	blocking := &blockingQueryable{}
	a := newTestAPI(t, cfg, blocking)
	req := &prompb.ReadRequest{Queries: []*prompb.Query{readQueryOver(dataStart, dataEnd, eq("__name__", "up"))}}
	ans := a.read(t, req)
	require.Equal(t, http.StatusServiceUnavailable, ans.status, "%s", ans.body)

	cfg.Timeout = time.Hour
	a = newTestAPI(t, cfg, blocking)
	done := make(chan readAnswer, 1)
	go func() { done <- postRead(t, a.url, bytes.NewReader(encodeRead(t, req)), nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for blocking.running.Load() == 0 {
		require.True(t, time.Now().Before(deadline), "the read never started")
		time.Sleep(time.Millisecond) // polling interval
	}
	a.api.StopQueries()
	ans = <-done
	require.Equal(t, http.StatusServiceUnavailable, ans.status)
	require.Contains(t, string(ans.body), "shutting down")
}

// FuzzDecodeReadRequest feeds arbitrary bodies to the request decoder: it never panics, refuses what it
// cannot take with a client error, and never allocates for more than the body can expand to.
func FuzzDecodeReadRequest(f *testing.F) {
	valid := &prompb.ReadRequest{
		Queries: []*prompb.Query{{StartTimestampMs: 1, EndTimestampMs: 2, Matchers: []*prompb.LabelMatcher{eq("__name__", "up"), re("job", "a|b")},
			Hints: &prompb.ReadHints{StartMs: 1, EndMs: 2, StepMs: 1, Func: "rate", Grouping: []string{"x"}}}},
		AcceptedResponseTypes: chunksFirst,
	}
	raw, err := valid.Marshal()
	require.NoError(f, err)
	f.Add(snappy.Encode(nil, raw))
	f.Add(raw)
	f.Add(snappy.Encode(nil, nil))
	f.Add(binary.AppendUvarint(nil, maxReadRequestBytes))
	f.Add(append(binary.AppendUvarint(nil, 1<<32), 0, 1, 2))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/read", bytes.NewReader(body))
		decoded, err := decodeReadRequest(req)
		if err == nil {
			_, err = readQueries(decoded)
		}
		if err == nil {
			return
		}
		var re *readError
		require.ErrorAs(t, err, &re)
		require.True(t, re.status >= 400 && re.status < 500, "status %d for %q", re.status, err)
	})
}
