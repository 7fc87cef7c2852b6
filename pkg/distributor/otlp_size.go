package distributor

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// OTLP's decoder allocates an object for every message of a request, and a message can be encoded in
// two bytes: a body of empty data points takes about 70 times its size once decoded (measured with
// pdata 1.60: 28 MB for 400 kB). Before decoding, the objects are counted so that such a body is
// refused, and the rest are held in the distributor's in-flight bytes at the size they will take.
const (
	// decodedMessageSize is what pdata allocates per message, a little above the 141 bytes measured for
	// a data point (its object and its share of the slice that holds it).
	decodedMessageSize = 160
	// maxDecodedExpansion bounds the estimated decoded size of a request to this many times
	// -distributor.max-recv-msg-size. Real exports decode to about 10 times their size (a point with
	// seven attributes: 15 messages in 200 bytes).
	maxDecodedExpansion = 16
	// maxScannedDepth bounds the recursion into nested messages; OTLP's deepest legitimate nesting
	// (attribute values in lists in key-value lists) stays far below it.
	maxScannedDepth = 32
)

// decodedSize estimates the memory an OTLP body takes once decoded: its strings and bytes, plus an
// object per message.
func decodedSize(body []byte, json bool) int {
	var messages int
	if json {
		messages = jsonObjects(body)
	} else {
		// A body that does not parse counts what was read before the error; decoding reports it.
		messages, _ = protoMessages(body, 0)
	}
	return len(body) + messages*decodedMessageSize
}

// protoMessages counts the messages nested in the protobuf message b without knowing its schema: a
// length-delimited field whose bytes parse as a message counts as one, and its own fields are counted
// in turn. A string that happens to parse as a message is counted too, which errs on the side of
// refusing. ok is false when b does not parse as a message.
func protoMessages(b []byte, depth int) (n int, ok bool) {
	for len(b) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return n, false
		}
		b = b[tagLen:]
		var valueLen int
		if typ == protowire.BytesType {
			var v []byte
			v, valueLen = protowire.ConsumeBytes(b)
			if valueLen >= 0 && depth < maxScannedDepth {
				if m, ok := protoMessages(v, depth+1); ok {
					n += 1 + m
				}
			}
		} else {
			valueLen = protowire.ConsumeFieldValue(num, typ, b)
		}
		if valueLen < 0 {
			return n, false
		}
		b = b[valueLen:]
	}
	return n, true
}

// jsonObjects counts the objects and arrays of a JSON body by their opening brackets, those inside
// strings included: an upper bound, as protoMessages is.
func jsonObjects(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '{' || c == '[' {
			n++
		}
	}
	return n
}
