package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// The two answers of remote read. Prometheus' storage/remote package has helpers for both, but importing
// it brings the OpenTelemetry collector's modules (its OTLP write handler) into Strata's build; the
// protocol's part of them is short, and prompb has the messages.

// readSamples answers with every query's samples in one snappy prompb.ReadResponse. Decoded samples take
// about ten times the memory of the chunks they come from, so the whole request is bounded by
// -querier.max-samples, as one PromQL query is (Prometheus bounds this answer the same way, by its
// --storage.remote.read-sample-limit).
func (a *PrometheusAPI) readSamples(ctx context.Context, w http.ResponseWriter, q storage.Querier, queries []readQuery) {
	resp := prompb.ReadResponse{Results: make([]*prompb.QueryResult, len(queries))}
	budget := sampleBudget{max: a.cfg.MaxSamples}
	for i, rq := range queries {
		result, err := queryResult(q.Select(ctx, false, rq.hints, rq.matchers...), &budget)
		if err != nil {
			if errors.Is(err, errSampleBudget) {
				writeReadError(w, newReadError(http.StatusBadRequest, "remote read would return more than %d samples (-querier.max-samples); narrow its time range or matchers, or accept STREAMED_XOR_CHUNKS answers, which it does not bound", a.cfg.MaxSamples))
				return
			}
			a.failRead(w, a.readFailure(ctx, err))
			return
		}
		resp.Results[i] = result
	}
	raw, err := resp.Marshal()
	if err != nil {
		a.failRead(w, newReadError(http.StatusInternalServerError, "encode remote read response: %v", err))
		return
	}
	w.Header().Set("Content-Type", readContentType)
	w.Header().Set("Content-Encoding", "snappy")
	_, _ = w.Write(snappy.Encode(nil, raw))
}

// sampleBudget counts the samples of an answer against max (0: no bound).
type sampleBudget struct {
	max, used int
}

var errSampleBudget = errors.New("sample budget exceeded")

func (b *sampleBudget) take() error {
	b.used++
	if b.max > 0 && b.used > b.max {
		return errSampleBudget
	}
	return nil
}

// queryResult reads a query's series and samples, float and histogram.
func queryResult(set storage.SeriesSet, budget *sampleBudget) (*prompb.QueryResult, error) {
	result := &prompb.QueryResult{}
	var it chunkenc.Iterator
	for set.Next() {
		series := set.At()
		ts := &prompb.TimeSeries{Labels: prompb.FromLabels(series.Labels(), nil)}
		it = series.Iterator(it)
		for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
			if err := budget.take(); err != nil {
				return nil, err
			}
			switch typ {
			case chunkenc.ValFloat:
				t, v := it.At()
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
			case chunkenc.ValHistogram:
				t, h := it.AtHistogram(nil)
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(t, h))
			case chunkenc.ValFloatHistogram:
				t, fh := it.AtFloatHistogram(nil)
				ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(t, fh))
			default:
				return nil, fmt.Errorf("series %s: unknown sample type %s", series.Labels(), typ)
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		result.Timeseries = append(result.Timeseries, ts)
	}
	return result, set.Err()
}

// streamReadChunks answers with the queries' series as chunks in frames of prompb.ChunkedReadResponse,
// each query's series sorted by labels, at most one series per frame and about maxReadFrameBytes of
// chunks in one. The querier merges replicas and sources sample by sample, so its series are encoded
// into chunks again, of up to 120 samples as Prometheus cuts them.
func (a *PrometheusAPI) streamReadChunks(ctx context.Context, w http.ResponseWriter, q storage.Querier, queries []readQuery) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		flusher = noFlush{} // the querier worker's recorder: the query-frontend sends the answer whole
	}
	out := &heldWriter{w: w, flusher: flusher, limit: heldReadBytes}
	frames := &frameWriter{w: out}
	for i, rq := range queries {
		hints := rq.hints
		if hints.Func == "series" {
			// The "series" function asks for label sets without samples, and Prometheus' TSDB honours it
			// when it answers samples only: its chunk querier, which streamed answers read, sends the
			// chunks. So does Strata, or Prometheus' series and label APIs would find nothing here.
			withSamples := *hints
			withSamples.Func = ""
			hints = &withSamples
		}
		err := frames.streamQuery(int64(i), q.Select(ctx, true, hints, rq.matchers...))
		if err == nil {
			continue
		}
		failure := a.readFailure(ctx, err)
		if !out.sent {
			a.failRead(w, failure)
			return
		}
		// The client has a 200 and some frames. Ending the stream here would pass a truncated answer off
		// as whole; the message, which is no valid frame, makes the client's reader fail instead, as it
		// does when Prometheus' own read handler fails mid-stream.
		a.logReadFailure(failure)
		_, _ = io.WriteString(w, "\n"+failure.Error()+"\n")
		return
	}
	if err := out.send(); err != nil {
		a.logReadFailure(newReadError(http.StatusInternalServerError, "send remote read answer: %v", err))
	}
}

// heldReadBytes is how much of a streamed answer is held back before it is sent, so that a failure
// within it, most often a tenant's limit crossed as the series arrive, is still answered with its status
// and message. A failure past it can only break the stream.
const heldReadBytes = 4 << 20

// heldWriter holds the start of a streamed answer, up to limit bytes, then streams the rest.
type heldWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	limit   int
	held    bytes.Buffer
	sent    bool // the status and what was held are sent
}

func (h *heldWriter) Write(p []byte) (int, error) {
	if h.sent {
		return h.w.Write(p)
	}
	h.held.Write(p)
	if h.held.Len() >= h.limit {
		return len(p), h.send()
	}
	return len(p), nil
}

// send sends the status and what is held.
func (h *heldWriter) send() error {
	if h.sent {
		return nil
	}
	h.sent = true
	h.w.Header().Set("Content-Type", streamedReadContentType)
	_, err := h.w.Write(h.held.Bytes())
	h.held = bytes.Buffer{}
	h.flusher.Flush()
	return err
}

func (h *heldWriter) Flush() {
	if h.sent {
		h.flusher.Flush()
	}
}

// frameWriter writes the frames of a streamed answer. A frame is the message's length as a uvarint, the
// CRC-32 (Castagnoli) of the message, big-endian, and the marshalled message.
type frameWriter struct {
	w      *heldWriter
	buf    []byte
	chunks []prompb.Chunk
	labels []prompb.Label
	it     chunks.Iterator
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// streamQuery writes the frames of one query's series.
func (f *frameWriter) streamQuery(queryIndex int64, set storage.SeriesSet) error {
	for set.Next() {
		series := storage.NewSeriesToChunkEncoder(withoutStartTimes{set.At()})
		f.labels = prompb.FromLabels(series.Labels(), f.labels)
		labelBytes := 0
		for _, l := range f.labels {
			labelBytes += l.Size()
		}
		f.it = series.Iterator(f.it)
		frameBytes := labelBytes
		for more := f.it.Next(); more; {
			c := f.it.At()
			f.chunks = append(f.chunks, prompb.Chunk{
				MinTimeMs: c.MinTime,
				MaxTimeMs: c.MaxTime,
				Type:      prompb.Chunk_Encoding(c.Chunk.Encoding()),
				Data:      c.Chunk.Bytes(),
			})
			frameBytes += f.chunks[len(f.chunks)-1].Size()
			if more = f.it.Next(); more && frameBytes < maxReadFrameBytes {
				continue
			}
			err := f.writeFrame(&prompb.ChunkedReadResponse{
				ChunkedSeries: []*prompb.ChunkedSeries{{Labels: f.labels, Chunks: f.chunks}},
				QueryIndex:    queryIndex,
			})
			if err != nil {
				return err
			}
			f.chunks = f.chunks[:0]
			frameBytes = labelBytes
		}
		if err := f.it.Err(); err != nil {
			return err
		}
	}
	return set.Err()
}

func (f *frameWriter) writeFrame(msg *prompb.ChunkedReadResponse) error {
	size := msg.Size()
	need := binary.MaxVarintLen64 + 4 + size
	if cap(f.buf) < need {
		f.buf = make([]byte, need)
	}
	n := binary.PutUvarint(f.buf, uint64(size))
	body := f.buf[n+4 : n+4+size]
	if _, err := msg.MarshalToSizedBuffer(body); err != nil {
		return fmt.Errorf("marshal remote read frame: %w", err)
	}
	binary.BigEndian.PutUint32(f.buf[n:], crc32.Checksum(body, castagnoli))
	if _, err := f.w.Write(f.buf[:n+4+size]); err != nil {
		return fmt.Errorf("write remote read frame: %w", err)
	}
	f.w.Flush()
	return nil
}

type noFlush struct{}

func (noFlush) Flush() {}

// withoutStartTimes hides samples' start times from the chunk encoder: with them it would cut XOR2
// chunks, which STREAMED_XOR_CHUNKS clients do not know.
type withoutStartTimes struct{ storage.Series }

func (s withoutStartTimes) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if w, ok := it.(noStartTimeIterator); ok {
		it = w.Iterator
	}
	return noStartTimeIterator{s.Series.Iterator(it)}
}

type noStartTimeIterator struct{ chunkenc.Iterator }

func (noStartTimeIterator) AtST() int64 { return 0 }
