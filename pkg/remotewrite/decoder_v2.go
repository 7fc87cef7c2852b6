package remotewrite

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-metrics/strata/pkg/util/pool"
)

// Field numbers of io.prometheus.write.v2.Request.
const (
	v2SymbolsField    = 4
	v2TimeseriesField = 5
)

// DecoderV2 decodes a remote-write 2.0 Request into the 1.0 shapes the rest of Strata validates and
// appends: each series' label references are resolved to strings of the symbols table, which point into
// the request's bytes as Decoder's do. What 2.0 adds beside that is kept apart: each series' metadata and
// each sample's start timestamp. Like Decoder, it reuses its slices from one request to the next.
//
// A series that cannot be resolved (a reference outside the symbols table, an odd number of label
// references) or that holds nothing is not returned but reported in Invalid: the 2.0 specification asks
// receivers to write the rest of the request and report those as a partial write.
type DecoderV2 struct {
	req          prompb.WriteRequest
	symbols      []string
	symbolFields []FieldRange
	seriesBytes  []seriesField // every timeseries field, in the decoded bytes
	labels       []prompb.Label
	samples      []prompb.Sample
	sampleStarts []int64 // each sample's start timestamp, 0 when it has none
	anyStart     bool
	spans        []seriesSpanV2
	fields       []FieldRange
	metadata     []SeriesMetadata
	invalid      []InvalidSeries
	refs         []uint32
	families     map[string]struct{} // MetricMetadata's, reused
}

// SeriesMetadata is what a 2.0 series says of its metric: type (a prompb.MetricMetadata type, whose
// numbering 2.0 keeps), help and unit.
type SeriesMetadata struct {
	Type       prompb.MetricMetadata_MetricType
	Help, Unit string
}

// Empty reports whether the series said nothing of its metric.
func (m SeriesMetadata) Empty() bool {
	return m.Type == prompb.MetricMetadata_UNKNOWN && m.Help == "" && m.Unit == ""
}

// InvalidSeries is a series Decode left out, with the samples and histograms it held.
type InvalidSeries struct {
	Err     error
	Samples int
}

type seriesSpanV2 struct {
	labelsStart, labelsEnd   int
	samplesStart, samplesEnd int
}

var decodersV2 = pool.NewFreeList(32, func() *DecoderV2 { return &DecoderV2{} })

// GetDecoderV2 returns a 2.0 decoder from a pool; Release returns it.
func GetDecoderV2() *DecoderV2 { return decodersV2.Get() }

// Release drops the decoder's references into the last request and returns it to the pool. Nothing
// Decode returned may be used afterwards.
func (d *DecoderV2) Release() {
	clear(d.symbols)
	clear(d.labels)
	clear(d.metadata)
	clear(d.invalid)
	clear(d.req.Metadata)
	clear(d.families)
	for i := range d.req.Timeseries {
		d.req.Timeseries[i] = prompb.TimeSeries{}
	}
	decodersV2.Put(d)
}

func (d *DecoderV2) reset() {
	d.req.Timeseries, d.req.Metadata = d.req.Timeseries[:0], d.req.Metadata[:0]
	d.symbols, d.symbolFields, d.seriesBytes = d.symbols[:0], d.symbolFields[:0], d.seriesBytes[:0]
	d.labels, d.samples, d.sampleStarts, d.anyStart = d.labels[:0], d.samples[:0], d.sampleStarts[:0], false
	d.spans, d.fields = d.spans[:0], d.fields[:0]
	d.metadata, d.invalid = d.metadata[:0], d.invalid[:0]
}

// Decode parses b, a 2.0 Request. The returned request (whose Metadata is empty: see SeriesMetadata) and
// every string in it are valid until the decoder's next use or Release, and only while b is unchanged.
// An error means b is not a Request at all; series that are wrong on their own are in Invalid.
func (d *DecoderV2) Decode(b []byte) (*prompb.WriteRequest, error) {
	return d.DecodeParts([][]byte{b})
}

// DecodeParts is Decode of the concatenation of parts, each holding whole fields of a Request, without
// concatenating them. SeriesField is then where the series is in its part, and SymbolFields is not valid.
func (d *DecoderV2) DecodeParts(parts [][]byte) (*prompb.WriteRequest, error) {
	d.reset()
	// The symbols a series refers to may come after it: every part is scanned before any series is
	// decoded.
	for i, p := range parts {
		if err := d.scan(p, i); err != nil {
			return nil, err
		}
	}
	if len(d.symbols) > 0 && d.symbols[0] != "" {
		return nil, fmt.Errorf("the symbols table must start with the empty string, it starts with %q", d.symbols[0])
	}
	for _, f := range d.seriesBytes {
		b := parts[f.part]
		msg, _ := consumeFieldBytes(b[f.Start:f.End])
		if err := d.decodeOne(msg, f.FieldRange); err != nil {
			var invalid *invalidSeriesError
			if errors.As(err, &invalid) {
				d.invalid = append(d.invalid, InvalidSeries{Err: invalid.err, Samples: invalid.samples})
				continue
			}
			return nil, fmt.Errorf("time series %d: %w", len(d.req.Timeseries)+len(d.invalid), err)
		}
	}
	return d.attach(), nil
}

// seriesField is where a timeseries field is: a range of one of the decoded parts.
type seriesField struct {
	FieldRange
	part int
}

// scan reads the top-level fields of b, part i of the request: the symbols, and where each series is.
func (d *DecoderV2) scan(b []byte, i int) error {
	whole := len(b)
	for len(b) > 0 {
		start := whole - len(b)
		num, typ, v, n := nextField(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		end := whole - len(b)
		switch num {
		case v2SymbolsField:
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d has wire type %d, want bytes", num, typ)
			}
			d.symbols = append(d.symbols, unsafeString(v))
			if i > 0 {
				break // SymbolFields are of a request decoded whole
			}
			if k := len(d.symbolFields); k > 0 && d.symbolFields[k-1].End == start {
				d.symbolFields[k-1].End = end
			} else {
				d.symbolFields = append(d.symbolFields, FieldRange{Start: start, End: end})
			}
		case v2TimeseriesField:
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d has wire type %d, want bytes", num, typ)
			}
			d.seriesBytes = append(d.seriesBytes, seriesField{FieldRange: FieldRange{Start: start, End: end}, part: i})
		}
	}
	return nil
}

// nextField reads the field at the start of b: its number, wire type, value (the content of a bytes field,
// the encoded value of another) and length; a negative length if b is malformed.
func nextField(b []byte) (protowire.Number, protowire.Type, []byte, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, n
	}
	var (
		v []byte
		m int
	)
	switch typ {
	case protowire.BytesType:
		v, m = protowire.ConsumeBytes(b[n:])
	case protowire.VarintType:
		_, m = protowire.ConsumeVarint(b[n:])
	default:
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	}
	if m < 0 {
		return 0, 0, nil, m
	}
	if typ != protowire.BytesType {
		v = b[n : n+m]
	}
	return num, typ, v, n + m
}

// varintValue and fixed64Value read the value of a varint or fixed64 field as nextField returns it.
func varintValue(v []byte) uint64 {
	x, _ := protowire.ConsumeVarint(v)
	return x
}

func fixed64Value(v []byte) uint64 {
	x, _ := protowire.ConsumeFixed64(v)
	return x
}

// errNoSymbol is a label or exemplar reference outside the request's symbols table.
var errNoSymbol = errors.New("reference outside the symbols table")

func (d *DecoderV2) symbol(ref uint32) (string, error) {
	if int(ref) >= len(d.symbols) {
		return "", fmt.Errorf("%w (ref %d, %d symbols)", errNoSymbol, ref, len(d.symbols))
	}
	return d.symbols[ref], nil
}

// consumeFieldBytes returns the value of the one bytes field b holds.
func consumeFieldBytes(b []byte) ([]byte, int) {
	_, _, n := protowire.ConsumeTag(b)
	v, m := protowire.ConsumeBytes(b[n:])
	return v, n + m
}

type invalidSeriesError struct {
	err     error
	samples int
}

func (e *invalidSeriesError) Error() string { return e.err.Error() }

// decodeOne decodes one TimeSeries message. A series that is well-formed protobuf but wrong on its own
// is an *invalidSeriesError, and leaves nothing behind.
func (d *DecoderV2) decodeOne(b []byte, field FieldRange) error {
	ts := prompb.TimeSeries{}
	sp := seriesSpanV2{labelsStart: len(d.labels), samplesStart: len(d.samples)}
	var meta SeriesMetadata
	d.refs = d.refs[:0]
	var refErr error // the first reference outside the symbols table, of an exemplar or the metadata
	err := func() error {
		for len(b) > 0 {
			num, typ, v, n := nextField(b)
			if n < 0 {
				return errTruncated
			}
			b = b[n:]
			if num == 1 { // labels_refs, packed or not
				if typ != protowire.BytesType && typ != protowire.VarintType {
					return fmt.Errorf("labels_refs has wire type %d", typ)
				}
				if err := appendVarints(&d.refs, v); err != nil {
					return err
				}
				continue
			}
			if num < 2 || num > 5 {
				continue
			}
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d has wire type %d, want bytes", num, typ)
			}
			switch num {
			case 2:
				s, start, err := decodeSampleV2(v)
				if err != nil {
					return err
				}
				d.samples = append(d.samples, s)
				d.sampleStarts = append(d.sampleStarts, start)
				d.anyStart = d.anyStart || start != 0
			case 3:
				var h prompb.Histogram
				// Fields 1 to 16 of a 2.0 histogram are those of 1.0; the start timestamp (17) stays among
				// the unrecognized bytes, which encoding the histogram again keeps.
				if err := h.Unmarshal(v); err != nil {
					return fmt.Errorf("histogram: %w", err)
				}
				ts.Histograms = append(ts.Histograms, h)
			case 4:
				e, err := d.decodeExemplarV2(v)
				if errors.Is(err, errNoSymbol) {
					refErr = cmp.Or(refErr, fmt.Errorf("exemplar: %w", err))
					continue
				}
				if err != nil {
					return err
				}
				ts.Exemplars = append(ts.Exemplars, e)
			case 5:
				m, err := d.decodeMetadataV2(v)
				if errors.Is(err, errNoSymbol) {
					refErr = cmp.Or(refErr, fmt.Errorf("metadata: %w", err))
					continue
				}
				if err != nil {
					return err
				}
				meta = m
			}
		}
		return nil
	}()
	if err == nil {
		samples := len(d.samples) - sp.samplesStart + len(ts.Histograms)
		err = cmp.Or(refErr, d.resolveLabels(d.refs))
		// Senders must not send a series without samples, but Prometheus sends exemplars apart from
		// their samples, in series of their own: only a series with nothing at all is refused.
		if err == nil && samples == 0 && len(ts.Exemplars) == 0 {
			err = errors.New("a series must hold at least one sample, histogram or exemplar")
		}
		if err == nil {
			sp.labelsEnd, sp.samplesEnd = len(d.labels), len(d.samples)
			d.req.Timeseries = append(d.req.Timeseries, ts)
			d.spans = append(d.spans, sp)
			d.fields = append(d.fields, field)
			d.metadata = append(d.metadata, meta)
			return nil
		}
		err = &invalidSeriesError{err: err, samples: samples}
	}
	d.labels, d.samples, d.sampleStarts = d.labels[:sp.labelsStart], d.samples[:sp.samplesStart], d.sampleStarts[:sp.samplesStart]
	return err
}

// appendVarints appends the varints of b: one field's packed values, or the value of an unpacked one.
func appendVarints(dst *[]uint32, b []byte) error {
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		*dst = append(*dst, uint32(v))
	}
	return nil
}

// resolveLabels appends the labels that refs, name and value references in turn, name.
func (d *DecoderV2) resolveLabels(refs []uint32) error {
	if len(refs)%2 != 0 {
		return fmt.Errorf("labels_refs has an odd number (%d) of references", len(refs))
	}
	for i := 0; i < len(refs); i += 2 {
		name, err := d.symbol(refs[i])
		if err != nil {
			return fmt.Errorf("label name: %w", err)
		}
		value, err := d.symbol(refs[i+1])
		if err != nil {
			return fmt.Errorf("label value: %w", err)
		}
		d.labels = append(d.labels, prompb.Label{Name: name, Value: value})
	}
	return nil
}

func (d *DecoderV2) attach() *prompb.WriteRequest {
	for i := range d.req.Timeseries {
		sp := d.spans[i]
		d.req.Timeseries[i].Labels = d.labels[sp.labelsStart:sp.labelsEnd:sp.labelsEnd]
		d.req.Timeseries[i].Samples = d.samples[sp.samplesStart:sp.samplesEnd:sp.samplesEnd]
	}
	return &d.req
}

// Invalid returns the series the last Decode left out.
func (d *DecoderV2) Invalid() []InvalidSeries { return d.invalid }

// SeriesField returns where the i-th returned series is in the bytes given to Decode.
func (d *DecoderV2) SeriesField(i int) FieldRange { return d.fields[i] }

// SymbolFields returns where the symbols table is in the bytes given to Decode: the ranges, in order, that
// a Request made of some of its series must also hold.
func (d *DecoderV2) SymbolFields() []FieldRange { return d.symbolFields }

// Metadata returns what the i-th returned series says of its metric.
func (d *DecoderV2) Metadata(i int) SeriesMetadata { return d.metadata[i] }

// SampleStart returns the start timestamp of the j-th sample of the i-th returned series, 0 if none.
func (d *DecoderV2) SampleStart(i, j int) int64 {
	if !d.anyStart {
		return 0
	}
	return d.sampleStarts[d.spans[i].samplesStart+j]
}

// HistogramStart returns the start timestamp of a histogram Decode returned, 0 if none.
func HistogramStart(h *prompb.Histogram) int64 {
	b := h.XXX_unrecognized
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == 17 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0
			}
			return int64(v)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0
		}
		b = b[n:]
	}
	return 0
}

func decodeSampleV2(b []byte) (prompb.Sample, int64, error) {
	var (
		s     prompb.Sample
		start int64
	)
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 {
			return s, 0, errTruncated
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			s.Value = math.Float64frombits(fixed64Value(v))
		case num == 2 && typ == protowire.VarintType:
			s.Timestamp = int64(varintValue(v))
		case num == 3 && typ == protowire.VarintType:
			start = int64(varintValue(v))
		case num >= 1 && num <= 3:
			return s, 0, fmt.Errorf("sample field %d has wire type %d", num, typ)
		}
	}
	return s, start, nil
}

func (d *DecoderV2) decodeExemplarV2(b []byte) (prompb.Exemplar, error) {
	var (
		e    prompb.Exemplar
		refs []uint32
	)
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 {
			return e, errTruncated
		}
		b = b[n:]
		switch {
		case num == 1 && (typ == protowire.BytesType || typ == protowire.VarintType):
			if err := appendVarints(&refs, v); err != nil {
				return e, err
			}
		case num == 2 && typ == protowire.Fixed64Type:
			e.Value = math.Float64frombits(fixed64Value(v))
		case num == 3 && typ == protowire.VarintType:
			e.Timestamp = int64(varintValue(v))
		case num >= 1 && num <= 3:
			return e, fmt.Errorf("exemplar field %d has wire type %d", num, typ)
		}
	}
	if len(refs)%2 != 0 {
		return e, fmt.Errorf("%w: odd number (%d) of label references", errNoSymbol, len(refs))
	}
	// Exemplars are few next to samples: each gets a slice of its own (its strings still point into the
	// request).
	e.Labels = make([]prompb.Label, 0, len(refs)/2)
	for i := 0; i < len(refs); i += 2 {
		name, err := d.symbol(refs[i])
		if err != nil {
			return e, err
		}
		value, err := d.symbol(refs[i+1])
		if err != nil {
			return e, err
		}
		e.Labels = append(e.Labels, prompb.Label{Name: name, Value: value})
	}
	return e, nil
}

func (d *DecoderV2) decodeMetadataV2(b []byte) (SeriesMetadata, error) {
	var m SeriesMetadata
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 {
			return m, errTruncated
		}
		b = b[n:]
		if num != 1 && num != 3 && num != 4 {
			continue
		}
		if typ != protowire.VarintType {
			return m, fmt.Errorf("metadata field %d has wire type %d", num, typ)
		}
		x := varintValue(v)
		if num == 1 {
			m.Type = prompb.MetricMetadata_MetricType(x)
			continue
		}
		s, err := d.symbol(uint32(x))
		if err != nil {
			return m, err
		}
		if num == 3 {
			m.Help = s
		} else {
			m.Unit = s
		}
	}
	return m, nil
}

// MetricMetadata sets the returned request's Metadata to what its series say of their metrics, as the 1.0
// entries Strata keeps metadata in: one per metric family, whose name is the series' metric name without
// the suffixes its type adds (a histogram's _bucket, _sum and _count series are one family).
func (d *DecoderV2) MetricMetadata() []prompb.MetricMetadata {
	if d.families == nil {
		d.families = map[string]struct{}{}
	}
	clear(d.families)
	d.req.Metadata = d.req.Metadata[:0]
	for i, m := range d.metadata {
		if m.Empty() {
			continue
		}
		family := familyName(metricName(d.req.Timeseries[i].Labels), m.Type)
		if family == "" {
			continue
		}
		if _, seen := d.families[family]; seen {
			continue
		}
		d.families[family] = struct{}{}
		d.req.Metadata = append(d.req.Metadata, prompb.MetricMetadata{Type: m.Type, MetricFamilyName: family, Help: m.Help, Unit: m.Unit})
	}
	return d.req.Metadata
}

func metricName(ls []prompb.Label) string {
	for _, l := range ls {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}

// familyName is the metric family a series of the given type belongs to. Counters keep their name: in the
// text format their family is named with its _total.
func familyName(name string, typ prompb.MetricMetadata_MetricType) string {
	var suffixes []string
	switch typ {
	case prompb.MetricMetadata_HISTOGRAM, prompb.MetricMetadata_GAUGEHISTOGRAM:
		suffixes = []string{"_bucket", "_sum", "_count", "_created"}
	case prompb.MetricMetadata_SUMMARY:
		suffixes = []string{"_sum", "_count", "_created"}
	}
	for _, s := range suffixes {
		if trimmed, ok := strings.CutSuffix(name, s); ok && trimmed != "" {
			return trimmed
		}
	}
	return name
}

// AppendSeriesRewritten appends to dst the i-th returned series as a timeseries field of a 2.0 request
// that has the same symbols table, without its label named dropLabel (none when empty) and without the
// samples and histograms stamped after maxT: the series' references less that label's, then its other
// fields as they are (the kept samples and histograms with their start timestamps, exemplars,
// metadata). body is the bytes given to Decode.
func (d *DecoderV2) AppendSeriesRewritten(dst, body []byte, i int, dropLabel string, maxT int64) []byte {
	f := d.fields[i]
	msg, _ := consumeFieldBytes(body[f.Start:f.End])
	d.refs = d.refs[:0]
	var other []byte
	for b := msg; len(b) > 0; {
		num, typ, v, n := nextField(b)
		switch {
		case num == 1 && (typ == protowire.BytesType || typ == protowire.VarintType):
			_ = appendVarints(&d.refs, v) // Decode has read them already
		case num == 2 && typ == protowire.BytesType && sampleTimestampV2(v) > maxT,
			num == 3 && typ == protowire.BytesType && histogramTimestamp(v) > maxT:
			// Left out.
		default:
			other = append(other, b[:n]...)
		}
		b = b[n:]
	}
	var packed []byte
	for j := 0; j+1 < len(d.refs); j += 2 {
		if dropLabel == "" || d.symbols[d.refs[j]] != dropLabel {
			packed = protowire.AppendVarint(packed, uint64(d.refs[j]))
			packed = protowire.AppendVarint(packed, uint64(d.refs[j+1]))
		}
	}
	size := protowire.SizeTag(1) + protowire.SizeBytes(len(packed)) + len(other)
	dst = protowire.AppendTag(dst, v2TimeseriesField, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendBytes(dst, packed)
	return append(dst, other...)
}

// sampleTimestampV2 is the timestamp of an encoded 2.0 sample, which Decode has checked.
func sampleTimestampV2(b []byte) int64 {
	s, _, _ := decodeSampleV2(b)
	return s.Timestamp
}

// histogramTimestampField is the timestamp's field in 1.0 and 2.0 histograms.
const histogramTimestampField = 15

// histogramTimestamp is the timestamp of an encoded histogram, which Decode has checked.
func histogramTimestamp(b []byte) int64 {
	var ts int64
	for len(b) > 0 {
		num, typ, v, n := nextField(b)
		if n < 0 {
			break
		}
		if num == histogramTimestampField && typ == protowire.VarintType {
			ts = int64(varintValue(v))
		}
		b = b[n:]
	}
	return ts
}
