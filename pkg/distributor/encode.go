package distributor

import (
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of prometheus.WriteRequest.
const (
	writeRequestTimeseriesField = 1
	writeRequestMetadataField   = 3
)

// encodedEntries holds every series and metadata entry of a request encoded once, back to back, so the
// request for each ingester is a concatenation of the entries it gets: a WriteRequest's repeated fields
// are just their elements' tags and bytes one after another.
type encodedEntries struct {
	buf     []byte
	offsets []int // entry i is buf[offsets[i]:offsets[i+1]], series first, then metadata
}

func encodeEntries(series []prompb.TimeSeries, metadata []prompb.MetricMetadata) (*encodedEntries, error) {
	entries := make([]sizedMarshaler, 0, len(series)+len(metadata))
	fields := make([]protowire.Number, 0, cap(entries))
	for i := range series {
		entries, fields = append(entries, &series[i]), append(fields, writeRequestTimeseriesField)
	}
	for i := range metadata {
		entries, fields = append(entries, &metadata[i]), append(fields, writeRequestMetadataField)
	}
	sizes := make([]int, len(entries))
	total := 0
	for i, m := range entries {
		sizes[i] = m.Size()
		total += protowire.SizeTag(fields[i]) + protowire.SizeBytes(sizes[i])
	}
	e := &encodedEntries{buf: make([]byte, 0, total), offsets: make([]int, 0, len(entries)+1)}
	for i, m := range entries {
		e.offsets = append(e.offsets, len(e.buf))
		e.buf = protowire.AppendTag(e.buf, fields[i], protowire.BytesType)
		e.buf = protowire.AppendVarint(e.buf, uint64(sizes[i]))
		start := len(e.buf)
		e.buf = e.buf[:start+sizes[i]]
		if _, err := m.MarshalToSizedBuffer(e.buf[start:]); err != nil {
			return nil, err
		}
	}
	e.offsets = append(e.offsets, len(e.buf))
	return e, nil
}

// sizedMarshaler is what gogo-generated messages offer to encode into a caller's buffer.
type sizedMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// request is the encoded WriteRequest holding the entries at indexes.
func (e *encodedEntries) request(indexes []int) []byte {
	size := 0
	for _, i := range indexes {
		size += e.offsets[i+1] - e.offsets[i]
	}
	out := make([]byte, 0, size)
	for _, i := range indexes {
		out = append(out, e.buf[e.offsets[i]:e.offsets[i+1]]...)
	}
	return out
}
