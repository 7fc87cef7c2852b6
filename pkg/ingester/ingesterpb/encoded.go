package ingesterpb

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// EncodedPushRequest is a PushRequest whose write_request is the concatenation of already encoded
// WriteRequest fields (each a tag, a length and a message). A distributor passes on most series as the
// bytes it received them in; with PushCodec, gRPC writes those bytes to the connection without copying
// them into one message first, holding a reference to Body until they are written.
type EncodedPushRequest struct {
	// Body is the reference-counted buffer that most parts are ranges of; nil if none is.
	Body  mem.Buffer
	parts []EncodedPart
	size  int
}

// EncodedPart is a range of the request's Body or, when Bytes is not nil, bytes of its own.
type EncodedPart struct {
	Start, End int
	Bytes      []byte
}

// Add appends a part; consecutive ranges of Body are merged.
func (r *EncodedPushRequest) Add(p EncodedPart) {
	if p.Bytes != nil {
		r.size += len(p.Bytes)
		r.parts = append(r.parts, p)
		return
	}
	r.size += p.End - p.Start
	if n := len(r.parts); n > 0 && r.parts[n-1].Bytes == nil && r.parts[n-1].End == p.Start {
		r.parts[n-1].End = p.End
		return
	}
	r.parts = append(r.parts, p)
}

// Len is the size of the encoded WriteRequest.
func (r *EncodedPushRequest) Len() int { return r.size }

// WriteRequest returns the encoded WriteRequest as one slice, for a caller that is done with it before
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

func (r *EncodedPushRequest) bytes(p EncodedPart) []byte {
	if p.Bytes != nil {
		return p.Bytes
	}
	return r.Body.ReadOnlyData()[p.Start:p.End]
}

// marshal returns the PushRequest's encoding as buffers for gRPC to write and then free: views of Body
// (each holding a reference) and parts of their own.
func (r *EncodedPushRequest) marshal() mem.BufferSlice {
	header := protowire.AppendTag(make([]byte, 0, 1+protowire.SizeVarint(uint64(r.size))), 1, protowire.BytesType)
	header = protowire.AppendVarint(header, uint64(r.size))
	out := make(mem.BufferSlice, 0, 1+len(r.parts))
	out = append(out, mem.SliceBuffer(header))
	for _, p := range r.parts {
		if p.Bytes != nil {
			out = append(out, mem.SliceBuffer(p.Bytes))
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
