package ingesterpb

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// EncodedPushRequest is a PushRequest whose write_request (and write_request_v2) is the concatenation of
// already encoded request fields (each a tag, a length and a message). A distributor passes on most series
// as the bytes it received them in; with PushCodec, gRPC writes those bytes to the connection without
// copying them into one message first, holding a reference to Body until they are written.
type EncodedPushRequest struct {
	// Body is the reference-counted buffer that most parts are ranges of; nil if none is.
	Body mem.Buffer
	// Own holds the entries encoded for this request (series the distributor changed, metadata).
	Own []byte
	// Symbols are the ranges of Body that hold a remote-write 2.0 request's symbols table, which the
	// request's 2.0 series refer to.
	Symbols []EncodedPart
	parts   []EncodedPart // of write_request
	partsV2 []EncodedPart // series of write_request_v2
	size    int
	sizeV2  int
}

// EncodedPart is a range of the request's Body or, when InOwn is set, of Own. V2 parts are 2.0 series,
// the others 1.0 series or metadata.
type EncodedPart struct {
	Start, End int
	InOwn      bool
	V2         bool
}

// Add appends a part; a part that continues the previous one's range is merged with it.
func (r *EncodedPushRequest) Add(p EncodedPart) {
	parts, size := &r.parts, &r.size
	if p.V2 {
		parts, size = &r.partsV2, &r.sizeV2
	}
	*size += p.End - p.Start
	if n := len(*parts); n > 0 && (*parts)[n-1].InOwn == p.InOwn && (*parts)[n-1].End == p.Start {
		(*parts)[n-1].End = p.End
		return
	}
	*parts = append(*parts, p)
}

// Len is the size of the encoded 1.0 WriteRequest.
func (r *EncodedPushRequest) Len() int { return r.size }

// WriteRequest returns the encoded 1.0 WriteRequest as one slice, for a caller that is done with it before
// the body is recycled (a push that has returned): the body itself when the request is one range of it,
// else a new slice.
func (r *EncodedPushRequest) WriteRequest() []byte {
	if len(r.parts) == 1 {
		return r.bytes(r.parts[0])
	}
	out := make([]byte, 0, r.size)
	for _, p := range r.parts {
		out = append(out, r.bytes(p)...)
	}
	return out
}

// Parts returns the encoded 1.0 WriteRequest as the slices it is made of, in order, for a caller that is
// done with them before the body is recycled.
func (r *EncodedPushRequest) Parts() [][]byte {
	out := make([][]byte, len(r.parts))
	for i, p := range r.parts {
		out[i] = r.bytes(p)
	}
	return out
}

// PartsV2 is Parts of the 2.0 request: its symbols, then its series; nil when it has no series.
func (r *EncodedPushRequest) PartsV2() [][]byte {
	if len(r.partsV2) == 0 {
		return nil
	}
	out := make([][]byte, 0, len(r.Symbols)+len(r.partsV2))
	for _, p := range r.Symbols {
		out = append(out, r.bytes(p))
	}
	for _, p := range r.partsV2 {
		out = append(out, r.bytes(p))
	}
	return out
}

func (r *EncodedPushRequest) bytes(p EncodedPart) []byte {
	if p.InOwn {
		return r.Own[p.Start:p.End]
	}
	return r.Body.ReadOnlyData()[p.Start:p.End]
}

// marshal returns the PushRequest's encoding as buffers for gRPC to write and then free: views of Body
// (each holding a reference) and of Own.
func (r *EncodedPushRequest) marshal() mem.BufferSlice {
	out := make(mem.BufferSlice, 0, 2+len(r.parts)+len(r.Symbols)+len(r.partsV2))
	if r.size > 0 || r.sizeV2 == 0 {
		out = append(out, fieldHeader(1, r.size))
		out = r.appendParts(out, r.parts)
	}
	if r.sizeV2 > 0 {
		size := r.sizeV2
		for _, p := range r.Symbols {
			size += p.End - p.Start
		}
		out = append(out, fieldHeader(2, size))
		out = r.appendParts(out, r.Symbols)
		out = r.appendParts(out, r.partsV2)
	}
	return out
}

func fieldHeader(num protowire.Number, size int) mem.Buffer {
	header := protowire.AppendTag(make([]byte, 0, 1+protowire.SizeVarint(uint64(size))), num, protowire.BytesType)
	return mem.SliceBuffer(protowire.AppendVarint(header, uint64(size)))
}

func (r *EncodedPushRequest) appendParts(out mem.BufferSlice, parts []EncodedPart) mem.BufferSlice {
	for _, p := range parts {
		if p.InOwn {
			out = append(out, mem.SliceBuffer(r.Own[p.Start:p.End]))
		} else {
			out = append(out, r.Body.Slice(p.Start, p.End))
		}
	}
	return out
}

// PushCodec is gRPC's protobuf codec that also sends an *EncodedPushRequest as the PushRequest it
// encodes. It keeps the codec's name, so the server decodes with its usual codec.
var PushCodec encoding.CodecV2 = pushCodec{proto: encoding.GetCodecV2(proto.Name)}

type pushCodec struct {
	proto encoding.CodecV2
}

func (c pushCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*EncodedPushRequest); ok {
		return r.marshal(), nil
	}
	return c.proto.Marshal(v)
}

func (c pushCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c pushCodec) Name() string { return c.proto.Name() }
