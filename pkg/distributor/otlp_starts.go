package distributor

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// OTLP start times (otel_created_timestamp_zero_ingestion_enabled) reach the ingesters as remote write
// 2.0's start timestamps, which 1.0 has no place for: the translation is encoded as a 2.0 request and
// pushed as a received 2.0 request is, and the ingesters write each start time as a zero sample.

// toWriteRequestV2 encodes wr's series as a 2.0 request, each sample and histogram with its start time
// from starts (one entry per series of wr). Metadata is left out: the 2.0 decoder's per-series metadata
// would name families otherwise than the translator did, so the caller keeps wr's entries.
func toWriteRequestV2(wr *prompb.WriteRequest, starts []pointStarts) (*writev2.Request, error) {
	if len(starts) != len(wr.Timeseries) {
		return nil, fmt.Errorf("start times of %d series for %d series", len(starts), len(wr.Timeseries))
	}
	symbols := writev2.NewSymbolTable()
	refs := func(ls []prompb.Label) []uint32 {
		out := make([]uint32, 0, 2*len(ls))
		for _, l := range ls {
			out = append(out, symbols.Symbolize(l.Name), symbols.Symbolize(l.Value))
		}
		return out
	}
	out := &writev2.Request{Timeseries: make([]writev2.TimeSeries, 0, len(wr.Timeseries))}
	for i, ts := range wr.Timeseries {
		st := starts[i]
		if len(st.samples) != len(ts.Samples) || len(st.histograms) != len(ts.Histograms) {
			return nil, fmt.Errorf("series %d: start times of %d samples and %d histograms for %d and %d", i, len(st.samples), len(st.histograms), len(ts.Samples), len(ts.Histograms))
		}
		series := writev2.TimeSeries{LabelsRefs: refs(ts.Labels)}
		for k, s := range ts.Samples {
			series.Samples = append(series.Samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp, StartTimestamp: st.samples[k]})
		}
		for k, h := range ts.Histograms {
			var v2h writev2.Histogram
			if h.IsFloatHistogram() {
				v2h = writev2.FromFloatHistogram(h.Timestamp, h.ToFloatHistogram())
			} else {
				v2h = writev2.FromIntHistogram(h.Timestamp, h.ToIntHistogram())
			}
			v2h.StartTimestamp = st.histograms[k]
			series.Histograms = append(series.Histograms, v2h)
		}
		for _, e := range ts.Exemplars {
			series.Exemplars = append(series.Exemplars, writev2.Exemplar{LabelsRefs: refs(e.Labels), Value: e.Value, Timestamp: e.Timestamp})
		}
		out.Timeseries = append(out.Timeseries, series)
	}
	out.Symbols = symbols.Symbols()
	return out, nil
}

// decodeTranslatedV2 encodes wr with its start times as a 2.0 request and decodes it as a received one,
// with wr's metadata entries.
func decodeTranslatedV2(wr *prompb.WriteRequest, starts []pointStarts) (*decodedRequest, error) {
	v2, err := toWriteRequestV2(wr, starts)
	if err != nil {
		return nil, err
	}
	size := v2.Size()
	buf := decompressedBuffers.Get()
	buf.Reset()
	buf.Grow(max(size, minBodyCapacity))
	raw := buf.Bytes()[:size]
	if _, err := v2.MarshalToSizedBuffer(raw); err != nil {
		putBuffer(decompressedBuffers, buf)
		return nil, fmt.Errorf("encode translated request: %w", err)
	}
	d, err := decodeRawWriteRequest(buf, raw, 2, 0)
	if err != nil {
		return nil, err
	}
	// Copied into the decoder's own slice, which it clears and reuses once the request is done.
	d.req.Metadata = append(d.req.Metadata[:0], wr.Metadata...)
	return d, nil
}

// pushWithStarts is pushCounted for a translation with start times: it goes to the ingesters as a 2.0
// request.
func (d *Distributor) pushWithStarts(ctx context.Context, wr *prompb.WriteRequest, starts []pointStarts) (writeStats, error) {
	return d.admitted(ctx, func() (writeStats, error) {
		decoded, err := decodeTranslatedV2(wr, starts)
		if err != nil {
			return writeStats{}, httpError(http.StatusInternalServerError, "%v", err)
		}
		size := int64(decoded.size)
		if err := d.instance.holdBytes(size); err != nil {
			decoded.body.Free()
			return writeStats{}, err
		}
		defer d.instance.releaseBytes(size)
		return d.push(ctx, decoded.req, decoded)
	})
}
