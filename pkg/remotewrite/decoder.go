// Package remotewrite decodes Prometheus remote-write 1.0 and 2.0 requests for the distributor and the
// ingester.
package remotewrite

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-metrics/strata/pkg/util/pool"
)

// Decoder decodes a remote-write WriteRequest without copying label names and values: they point into
// the request's bytes, which the caller keeps unchanged until it calls Release. Callers copy what they
// keep beyond that (the TSDB builds its own label sets; metadata is decoded with copies). A Decoder's
// slices are reused from one request to the next, so a request costs no allocation per series or sample.
type Decoder struct {
	req     prompb.WriteRequest
	labels  []prompb.Label  // every series' labels, back to back
	samples []prompb.Sample // every series' samples, back to back
	spans   []seriesSpan    // where each series' labels and samples are in the two slices above
	fields  []FieldRange    // where each series' field is in the decoded bytes
}

// FieldRange is where one repeated field of a WriteRequest (its tag, length and message) is in the
// bytes given to Decode: a series that is passed on unchanged can be passed on as these bytes.
type FieldRange struct {
	Start, End int
}

type seriesSpan struct {
	labelsStart, labelsEnd   int
	samplesStart, samplesEnd int
}

// decoders keeps released decoders, with their grown slices, for the next requests. The distributor
// releases a decoder on whichever goroutine finishes the request's last replication.
var decoders = pool.NewFreeList(32, func() *Decoder { return &Decoder{} })

// GetDecoder returns a decoder from a pool; Release returns it.
func GetDecoder() *Decoder { return decoders.Get() }

// errTruncated reports a field that runs past the end of its message.
var errTruncated = errors.New("truncated or malformed protobuf")

// Release drops the decoder's references into the last request, so a pooled decoder does not keep that
// request's bytes alive, and returns it to the pool. Nothing Decode returned may be used afterwards.
func (d *Decoder) Release() {
	clear(d.labels)
	for i := range d.req.Timeseries {
		d.req.Timeseries[i] = prompb.TimeSeries{}
	}
	clear(d.req.Metadata)
	decoders.Put(d)
}

// Decode parses b. The returned request and every string in it are valid until the decoder's next use
// or Release, and only while b is unchanged.
func (d *Decoder) Decode(b []byte) (*prompb.WriteRequest, error) {
	d.reset()
	if err := d.decodeFields(b); err != nil {
		return nil, err
	}
	return d.attach(), nil
}

// DecodeParts parses the concatenation of parts, each holding whole fields of a WriteRequest, without
// concatenating them. The returned request is valid as Decode's is; SeriesField is not.
func (d *Decoder) DecodeParts(parts [][]byte) (*prompb.WriteRequest, error) {
	d.reset()
	for _, b := range parts {
		if err := d.decodeFields(b); err != nil {
			return nil, err
		}
	}
	return d.attach(), nil
}

func (d *Decoder) reset() {
	d.req.Timeseries = d.req.Timeseries[:0]
	d.req.Metadata = d.req.Metadata[:0]
	d.labels, d.samples, d.spans, d.fields = d.labels[:0], d.samples[:0], d.spans[:0], d.fields[:0]
}

// decodeFields appends the series and metadata of b, whole fields of a WriteRequest.
func (d *Decoder) decodeFields(b []byte) error {
	whole := len(b)
	for len(b) > 0 {
		start := whole - len(b)
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errTruncated
			}
			b = b[n:]
			if err := d.decodeSeries(v); err != nil {
				return fmt.Errorf("time series %d: %w", len(d.req.Timeseries), err)
			}
			d.fields = append(d.fields, FieldRange{Start: start, End: whole - len(b)})
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errTruncated
			}
			b = b[n:]
			var m prompb.MetricMetadata
			if err := m.Unmarshal(v); err != nil { // copies its strings: metadata outlives the request
				return fmt.Errorf("metadata: %w", err)
			}
			d.req.Metadata = append(d.req.Metadata, m)
		case num == 1 || num == 3:
			return fmt.Errorf("field %d has wire type %d, want bytes", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errTruncated
			}
			b = b[n:]
		}
	}
	return nil
}

// attach gives the decoded series their labels and samples. It runs once all fields are decoded: appends
// may move the backing arrays until then.
func (d *Decoder) attach() *prompb.WriteRequest {
	for i := range d.req.Timeseries {
		sp := d.spans[i]
		d.req.Timeseries[i].Labels = d.labels[sp.labelsStart:sp.labelsEnd:sp.labelsEnd]
		d.req.Timeseries[i].Samples = d.samples[sp.samplesStart:sp.samplesEnd:sp.samplesEnd]
	}
	return &d.req
}

// SeriesField returns where the i-th time series of the last decoded request is in the bytes given to
// Decode.
func (d *Decoder) SeriesField(i int) FieldRange { return d.fields[i] }

func (d *Decoder) decodeSeries(b []byte) error {
	ts := prompb.TimeSeries{}
	sp := seriesSpan{labelsStart: len(d.labels), samplesStart: len(d.samples)}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if num >= 1 && num <= 4 {
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d has wire type %d, want bytes", num, typ)
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errTruncated
			}
			b = b[n:]
			switch num {
			case 1:
				l, err := decodeLabel(v)
				if err != nil {
					return err
				}
				d.labels = append(d.labels, l)
			case 2:
				s, err := decodeSample(v)
				if err != nil {
					return err
				}
				d.samples = append(d.samples, s)
			case 3:
				e, err := decodeExemplar(v)
				if err != nil {
					return err
				}
				ts.Exemplars = append(ts.Exemplars, e)
			case 4:
				var h prompb.Histogram
				if err := h.Unmarshal(v); err != nil {
					return fmt.Errorf("histogram: %w", err)
				}
				ts.Histograms = append(ts.Histograms, h)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
	}
	sp.labelsEnd, sp.samplesEnd = len(d.labels), len(d.samples)
	d.req.Timeseries = append(d.req.Timeseries, ts)
	d.spans = append(d.spans, sp)
	return nil
}

func decodeLabel(b []byte) (prompb.Label, error) {
	var l prompb.Label
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return l, errTruncated
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return l, errTruncated
			}
			b = b[n:]
			if num == 1 {
				l.Name = unsafeString(v)
			} else {
				l.Value = unsafeString(v)
			}
			continue
		}
		if num == 1 || num == 2 {
			return l, fmt.Errorf("label field %d has wire type %d, want bytes", num, typ)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return l, errTruncated
		}
		b = b[n:]
	}
	return l, nil
}

func decodeSample(b []byte) (prompb.Sample, error) {
	var s prompb.Sample
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, errTruncated
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return s, errTruncated
			}
			b = b[n:]
			s.Value = math.Float64frombits(v)
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return s, errTruncated
			}
			b = b[n:]
			s.Timestamp = int64(v)
		case num == 1 || num == 2:
			return s, fmt.Errorf("sample field %d has wire type %d", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return s, errTruncated
			}
			b = b[n:]
		}
	}
	return s, nil
}

func decodeExemplar(b []byte) (prompb.Exemplar, error) {
	var e prompb.Exemplar
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return e, errTruncated
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return e, errTruncated
			}
			b = b[n:]
			l, err := decodeLabel(v)
			if err != nil {
				return e, err
			}
			e.Labels = append(e.Labels, l)
		case num == 2 && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return e, errTruncated
			}
			b = b[n:]
			e.Value = math.Float64frombits(v)
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return e, errTruncated
			}
			b = b[n:]
			e.Timestamp = int64(v)
		case num >= 1 && num <= 3:
			return e, fmt.Errorf("exemplar field %d has wire type %d", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return e, errTruncated
			}
			b = b[n:]
		}
	}
	return e, nil
}

// unsafeString views b as a string without copying; b must not change while the string is used.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
