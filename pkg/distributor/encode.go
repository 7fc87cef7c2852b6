package distributor

import (
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/remotewrite"
)

// Field numbers of prometheus.WriteRequest.
const (
	writeRequestTimeseriesField = 1
	writeRequestMetadataField   = 3
)

// encodedEntries holds every series and metadata entry of a request in its protobuf encoding, from which
// the request for each ingester is assembled: a WriteRequest's repeated fields are just their elements'
// tags, lengths and bytes one after another. A series passed on unchanged keeps the bytes it arrived in
// (a range of the received body); the others are encoded once, whatever the replication factor. A 2.0
// series passed on unchanged goes in the ingester request's 2.0 part, with the symbols table it refers
// to; a changed one is encoded as a 1.0 series, with its labels as strings.
type encodedEntries struct {
	body    mem.Buffer // the received body; nil when the request did not arrive encoded
	own     []byte     // the entries encoded here
	parts   []ingesterpb.EncodedPart
	symbols []ingesterpb.EncodedPart
}

// receivedV2 is what encodeEntries needs of a received 2.0 request: where its symbols table is, and the
// series that lost a label (an HA replica's) or samples stamped after maxT (too far in the future), which
// are encoded again as 2.0 series without them.
type receivedV2 struct {
	symbols      []remotewrite.FieldRange
	decoder      *remotewrite.DecoderV2
	body         []byte
	relabelled   []relabelledSeries
	droppedLabel string
	maxT         int64
}

// relabelledSeries is a series at index accepted of those encodeEntries gets, and received in the decoded
// request; dropLabel says whether it lost receivedV2.droppedLabel.
type relabelledSeries struct {
	accepted, received int
	dropLabel          bool
}

// encodeEntries encodes series and metadata. received, when not nil, gives for each series where it is
// in body as it arrived, or an empty range for a series the distributor changed; v2 is set when body is
// a 2.0 request.
func encodeEntries(body mem.Buffer, series []prompb.TimeSeries, received []remotewrite.FieldRange, v2 *receivedV2, metadata []prompb.MetricMetadata) (*encodedEntries, error) {
	e := &encodedEntries{body: body, parts: make([]ingesterpb.EncodedPart, len(series)+len(metadata))}
	if v2 != nil {
		for _, r := range v2.symbols {
			e.symbols = append(e.symbols, ingesterpb.EncodedPart{Start: r.Start, End: r.End})
		}
	}
	type pending struct {
		part  int
		field protowire.Number
		msg   sizedMarshaler
		size  int
	}
	var toEncode []pending
	total := 0
	add := func(part int, field protowire.Number, m sizedMarshaler) {
		size := m.Size()
		toEncode = append(toEncode, pending{part: part, field: field, msg: m, size: size})
		total += protowire.SizeTag(field) + protowire.SizeBytes(size)
	}
	relabelled := 0
	for i := range series {
		if received != nil && received[i].End > received[i].Start {
			e.parts[i] = ingesterpb.EncodedPart{Start: received[i].Start, End: received[i].End, V2: v2 != nil}
			continue
		}
		if v2 != nil && relabelled < len(v2.relabelled) && v2.relabelled[relabelled].accepted == i {
			relabelled++
			continue // encoded below
		}
		add(i, writeRequestTimeseriesField, &series[i])
	}
	for i := range metadata {
		add(len(series)+i, writeRequestMetadataField, &metadata[i])
	}
	own := make([]byte, 0, total)
	for _, p := range toEncode {
		start := len(own)
		own = protowire.AppendTag(own, p.field, protowire.BytesType)
		own = protowire.AppendVarint(own, uint64(p.size))
		msgStart := len(own)
		own = own[:msgStart+p.size]
		if _, err := p.msg.MarshalToSizedBuffer(own[msgStart:]); err != nil {
			return nil, err
		}
		e.parts[p.part] = ingesterpb.EncodedPart{Start: start, End: len(own), InOwn: true}
	}
	if v2 != nil {
		for _, r := range v2.relabelled {
			start := len(own)
			label := ""
			if r.dropLabel {
				label = v2.droppedLabel
			}
			own = v2.decoder.AppendSeriesRewritten(own, v2.body, r.received, label, v2.maxT)
			e.parts[r.accepted] = ingesterpb.EncodedPart{Start: start, End: len(own), InOwn: true, V2: true}
		}
	}
	e.own = own
	return e, nil
}

// sizedMarshaler is what gogo-generated messages offer to encode into a caller's buffer.
type sizedMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// request is the push request holding the entries at indexes.
func (e *encodedEntries) request(indexes []int) *ingesterpb.EncodedPushRequest {
	r := &ingesterpb.EncodedPushRequest{Body: e.body, Own: e.own, Symbols: e.symbols}
	for _, i := range indexes {
		r.Add(e.parts[i])
	}
	return r
}
