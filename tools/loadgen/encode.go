package main

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The remote-write 1.0 body (prompb.WriteRequest) is written by hand: a series' labels are encoded
// once when it is created, and each round only appends them with one new sample, so building a
// request costs a copy and a few bytes per series instead of a walk over prompb structs.
//
//	WriteRequest: 1 timeseries (TimeSeries, repeated)
//	TimeSeries:   1 labels (Label, repeated), 2 samples (Sample, repeated)
//	Label:        1 name (string), 2 value (string)
//	Sample:       1 value (double), 2 timestamp (int64)
//
// A tag is the field number shifted left by 3, then the wire type.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2

	tagField1Bytes = 1<<3 | wireBytes
	tagField2Bytes = 2<<3 | wireBytes
	tagField1Fixed = 1<<3 | wireFixed64
	tagField2Varnt = 2<<3 | wireVarint
)

func varintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// appendLabels appends ls as the labels field of a TimeSeries.
func appendLabels(b []byte, ls []label) []byte {
	for _, l := range ls {
		size := 1 + varintLen(uint64(len(l.name))) + len(l.name) + 1 + varintLen(uint64(len(l.value))) + len(l.value)
		b = append(b, tagField1Bytes)
		b = binary.AppendUvarint(b, uint64(size))
		b = append(b, tagField1Bytes)
		b = binary.AppendUvarint(b, uint64(len(l.name)))
		b = append(b, l.name...)
		b = append(b, tagField2Bytes)
		b = binary.AppendUvarint(b, uint64(len(l.value)))
		b = append(b, l.value...)
	}
	return b
}

// appendSeries appends one WriteRequest.timeseries entry: the pre-encoded labels and one sample.
func appendSeries(b, labels []byte, value float64, tsMillis int64) []byte {
	sampleSize := 1 + 8 + 1 + varintLen(uint64(tsMillis))
	seriesSize := len(labels) + 1 + varintLen(uint64(sampleSize)) + sampleSize
	b = append(b, tagField1Bytes)
	b = binary.AppendUvarint(b, uint64(seriesSize))
	b = append(b, labels...)
	b = append(b, tagField2Bytes)
	b = binary.AppendUvarint(b, uint64(sampleSize))
	b = append(b, tagField1Fixed)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(value))
	b = append(b, tagField2Varnt)
	return binary.AppendUvarint(b, uint64(tsMillis))
}
