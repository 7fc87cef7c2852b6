package main

import (
	"encoding/binary"
	"math"
)

// The remote-write 2.0 body (io.prometheus.write.v2.Request) is written by hand too. Its label strings
// live once per request in a symbols table, so unlike 1.0 a series' labels cannot be encoded once for
// all rounds: each request references its own table.
//
//	Request:    4 symbols (string, repeated), 5 timeseries (TimeSeries, repeated)
//	TimeSeries: 1 labels_refs (packed uint32), 2 samples (Sample, repeated), 5 metadata (Metadata)
//	Sample:     1 value (double), 2 timestamp (int64)
//	Metadata:   1 type (enum), 3 help_ref (uint32)
const (
	tagV2Symbols    = 4<<3 | wireBytes
	tagV2Timeseries = 5<<3 | wireBytes
	tagV2Metadata   = 5<<3 | wireBytes
	tagField1Varint = 1<<3 | wireVarint
	tagField3Varint = 3<<3 | wireVarint
)

// Metric types of 2.0's Metadata.
const (
	metricTypeCounter   = 1
	metricTypeGauge     = 2
	metricTypeHistogram = 3
)

// v2Encoder builds one 2.0 request at a time: reset, appendSeries for each series, then request.
type v2Encoder struct {
	refs    map[string]uint32
	symbols []byte // the encoded symbols fields
	series  []byte // the encoded timeseries fields
	msg     []byte // one series' message, reused
	refBuf  []byte
	sample  []byte
	meta    []byte
}

func newV2Encoder() *v2Encoder { return &v2Encoder{refs: map[string]uint32{}} }

func (e *v2Encoder) reset() {
	clear(e.refs)
	e.symbols, e.series = e.symbols[:0], e.series[:0]
	e.ref("") // the table starts with the empty string
}

// ref returns s's index in the request's symbols table, adding it when new.
func (e *v2Encoder) ref(s string) uint32 {
	if r, ok := e.refs[s]; ok {
		return r
	}
	r := uint32(len(e.refs))
	e.refs[s] = r
	e.symbols = append(e.symbols, tagV2Symbols)
	e.symbols = binary.AppendUvarint(e.symbols, uint64(len(s)))
	e.symbols = append(e.symbols, s...)
	return r
}

// appendSeries adds a series with one sample and its metadata (type and help, as Prometheus sends with
// every 2.0 series).
func (e *v2Encoder) appendSeries(ls []label, metricType uint64, help string, value float64, tsMillis int64) {
	e.refBuf = e.refBuf[:0]
	for _, l := range ls {
		e.refBuf = binary.AppendUvarint(e.refBuf, uint64(e.ref(l.name)))
		e.refBuf = binary.AppendUvarint(e.refBuf, uint64(e.ref(l.value)))
	}
	e.sample = append(e.sample[:0], tagField1Fixed)
	e.sample = binary.LittleEndian.AppendUint64(e.sample, math.Float64bits(value))
	e.sample = append(e.sample, tagField2Varnt)
	e.sample = binary.AppendUvarint(e.sample, uint64(tsMillis))
	e.meta = append(e.meta[:0], tagField1Varint)
	e.meta = binary.AppendUvarint(e.meta, metricType)
	e.meta = append(e.meta, tagField3Varint)
	e.meta = binary.AppendUvarint(e.meta, uint64(e.ref(help)))

	e.msg = appendBytesField(e.msg[:0], tagField1Bytes, e.refBuf)
	e.msg = appendBytesField(e.msg, tagField2Bytes, e.sample)
	e.msg = appendBytesField(e.msg, tagV2Metadata, e.meta)
	e.series = appendBytesField(e.series, tagV2Timeseries, e.msg)
}

// request appends the whole request to dst: the symbols, then the series.
func (e *v2Encoder) request(dst []byte) []byte {
	return append(append(dst, e.symbols...), e.series...)
}

func appendBytesField(b []byte, tag byte, v []byte) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// metricTypeOf is the 2.0 metadata type of a series kind.
func metricTypeOf(k valueKind) uint64 {
	switch k {
	case kindCounter, kindIntCounter:
		return metricTypeCounter
	case kindGauge:
		return metricTypeGauge
	}
	return metricTypeHistogram
}
