package distributor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// snappyBomb is a tiny snappy block whose header announces decodedLen bytes.
func snappyBomb(decodedLen uint64) []byte {
	b := binary.AppendUvarint(nil, decodedLen)
	// A literal of 4 bytes; the rest of the announced length never comes.
	return append(b, 0x0c, 'a', 'b', 'c', 'd')
}

func TestDecodeSnappyWriteRequest_RoundTrips(t *testing.T) {
	want := prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			series(lbls("__name__", "up", "job", "api"), 1000, 2000),
			series(lbls("__name__", "requests_total", "code", "200"), 1000),
		},
		Metadata: []prompb.MetricMetadata{{MetricFamilyName: "up", Type: prompb.MetricMetadata_GAUGE, Help: "Up."}},
	}
	body := encodeRequest(t, &want)
	for range 3 { // pooled buffers are reused between calls
		var got prompb.WriteRequest
		require.NoError(t, decodeSnappyInto(body, 1<<20, &got))
		require.Equal(t, want.Timeseries, got.Timeseries)
		require.Equal(t, want.Metadata, got.Metadata)
	}
}

func TestDecodeSnappyWriteRequest_DecodedStringsLastUntilRelease(t *testing.T) {
	first, err := decodeSnappyWriteRequest(encodeRequest(t, &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{series(lbls("__name__", "first", "job", "aaaa"), 1)},
	}), 1<<20, 1)
	require.NoError(t, err)
	// Other requests decoded and released meanwhile reuse pooled buffers, never the first one's.
	for range 10 {
		other, err := decodeSnappyWriteRequest(encodeRequest(t, &prompb.WriteRequest{
			Timeseries: []prompb.TimeSeries{series(lbls("__name__", "other", "job", "bbbb"), 1)},
		}), 1<<20, 1)
		require.NoError(t, err)
		other.body.Free()
	}
	require.Equal(t, "first", first.req.Timeseries[0].Labels[0].Value)
	require.Equal(t, "aaaa", first.req.Timeseries[0].Labels[1].Value)
	first.body.Free()
}

func TestDecodeSnappyWriteRequest_RefusesSnappyBombBeforeAllocating(t *testing.T) {
	const maxSize = 1 << 20
	body := snappyBomb(1 << 30)
	var req prompb.WriteRequest
	err := decodeSnappyInto(body, maxSize, &req)
	require.Error(t, err)
	require.Equal(t, http.StatusRequestEntityTooLarge, statusOf(err))

	// Only the error is allocated: a handful of small objects, never the announced gigabyte, nor even
	// the limit's megabyte.
	allocs := testing.AllocsPerRun(100, func() {
		_ = decodeSnappyInto(body, maxSize, &req)
	})
	require.LessOrEqual(t, allocs, 5.0)
	require.Less(t, bytesAllocatedPerRun(100, func() {
		_ = decodeSnappyInto(body, maxSize, &req)
	}), uint64(4096))
}

func TestDecodeSnappyWriteRequest_RefusesLengthTheBodyCannotExpandTo(t *testing.T) {
	// Within the default limit, 9 bytes announce 100 MiB: a lie snappy cannot tell before decoding.
	const maxSize = 100 << 20
	body := snappyBomb(100 << 20)
	var req prompb.WriteRequest
	err := decodeSnappyInto(body, maxSize, &req)
	require.Equal(t, http.StatusBadRequest, statusOf(err))
	require.ErrorContains(t, err, "cannot decompress to the 104857600 bytes its header announces")
	require.Less(t, bytesAllocatedPerRun(20, func() {
		_ = decodeSnappyInto(body, maxSize, &req)
	}), uint64(4096))
}

func TestDecodeSnappyWriteRequest_AcceptsMostCompressibleBody(t *testing.T) {
	// snappy's encoder packs long runs into 3-byte copies of 64 bytes, the ratio the bound allows.
	want := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "job", string(bytes.Repeat([]byte{'a'}, 1<<20))), 1000),
	}}
	body := encodeRequest(t, &want)
	require.Greater(t, (1<<20)/len(body), 20, "the body is as compressible as snappy gets")
	var got prompb.WriteRequest
	require.NoError(t, decodeSnappyInto(body, 2<<20, &got))
	require.Equal(t, want.Timeseries, got.Timeseries)
}

func TestDecodeWriteRequest_RefusesOversizedBodyBeforeReadingIt(t *testing.T) {
	const maxSize = 1 << 20
	// The body claims 64 MiB; nothing is read or allocated for it.
	r := httptest.NewRequest(http.MethodPost, "/api/v1/push", bytes.NewReader(nil))
	r.ContentLength = 64 << 20
	var req prompb.WriteRequest
	err := decodeHTTPInto(r, maxSize, &req)
	require.Equal(t, http.StatusRequestEntityTooLarge, statusOf(err))
	require.Less(t, bytesAllocatedPerRun(100, func() {
		_ = decodeHTTPInto(r, maxSize, &req)
	}), uint64(4096))
}

func TestDecodeWriteRequest_AllocatesAsTheBodyArrivesNotAsAnnounced(t *testing.T) {
	// Within the limit, the body announces 100 MiB and the connection then times out.
	const maxSize = 100 << 20
	r := httptest.NewRequest(http.MethodPost, "/api/v1/push", iotest.ErrReader(os.ErrDeadlineExceeded))
	r.ContentLength = 100 << 20
	var req prompb.WriteRequest
	err := decodeHTTPInto(r, maxSize, &req)
	require.Equal(t, http.StatusBadRequest, statusOf(err))
	require.Less(t, bytesAllocatedPerRun(20, func() {
		_ = decodeHTTPInto(r, maxSize, &req)
	}), uint64(2<<20))
}

// bytesAllocatedPerRun is the average heap allocated by one call of f.
func bytesAllocatedPerRun(runs int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f() // warm up pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestStatusOf_DefaultsToInternalServerError(t *testing.T) {
	require.Equal(t, http.StatusInternalServerError, statusOf(fmt.Errorf("boom")))
	require.Equal(t, http.StatusTeapot, statusOf(fmt.Errorf("wrapped: %w", httpError(http.StatusTeapot, "tea"))))
}

// FuzzDecodeWriteRequest feeds random bodies to the push decoder: it must never panic, every error must be
// the client's fault (400 or 413), and a body announcing more than the limit must be a 413.
func FuzzDecodeWriteRequest(f *testing.F) {
	const maxSize = 64 << 10
	valid, err := (&prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up", "job", "api"), 1000, 2000)},
		Metadata:   []prompb.MetricMetadata{{MetricFamilyName: "up", Type: prompb.MetricMetadata_GAUGE}},
	}).Marshal()
	require.NoError(f, err)
	f.Add(snappy.Encode(nil, valid))
	f.Add([]byte{})
	f.Add(snappyBomb(1 << 30))
	f.Add(snappyBomb(maxSize + 1))
	f.Add(snappyBomb(1 << 40))
	f.Add(snappy.Encode(nil, []byte("not a protobuf")))
	f.Add(valid) // protobuf without snappy

	f.Fuzz(func(t *testing.T, body []byte) {
		var req prompb.WriteRequest
		err := decodeSnappyInto(body, maxSize, &req)

		r := httptest.NewRequest(http.MethodPost, "/api/v1/push", bytes.NewReader(body))
		var viaHTTP prompb.WriteRequest
		httpErr := decodeHTTPInto(r, maxSize, &viaHTTP)
		require.Equal(t, err == nil, httpErr == nil, "HTTP and raw decoding agree")

		if announced, n := binary.Uvarint(body); n > 0 && announced > maxSize {
			require.Error(t, err)
			require.Equal(t, http.StatusRequestEntityTooLarge, statusOf(err), err.Error())
			return
		}
		if err != nil {
			require.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, statusOf(err), err.Error())
			return
		}
		// What decoded must survive a round trip.
		raw, err := req.Marshal()
		require.NoError(t, err)
		var again prompb.WriteRequest
		require.NoError(t, decodeSnappyInto(snappy.Encode(nil, raw), maxSize, &again))
		require.Equal(t, len(req.Timeseries), len(again.Timeseries))
	})
}

// benchmarkRequest is a realistic remote-write request: series with 10 labels, one sample each.
func benchmarkRequest(seriesCount int, timestamp int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, seriesCount)}
	for i := range seriesCount {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "http_requests_total"},
				{Name: "cluster", Value: "eu-west-1"},
				{Name: "code", Value: fmt.Sprint(200 + i%5)},
				{Name: "handler", Value: fmt.Sprintf("/api/v1/handler/%d", i%50)},
				{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9090", i/250, i%250)},
				{Name: "job", Value: "api-server"},
				{Name: "method", Value: "GET"},
				{Name: "namespace", Value: "production"},
				{Name: "pod", Value: fmt.Sprintf("api-server-%d", i)},
				{Name: "series", Value: fmt.Sprint(i)},
			},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: timestamp}},
		})
	}
	return req
}

func BenchmarkDecodeWriteRequest(b *testing.B) {
	const seriesCount = 1000
	body := encodeRequest(b, benchmarkRequest(seriesCount, testNow.UnixMilli()))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		decoded, err := decodeSnappyWriteRequest(body, 1<<20, 1)
		if err != nil {
			b.Fatal(err)
		}
		decoded.body.Free()
	}
	b.ReportMetric(float64(b.N*seriesCount)/b.Elapsed().Seconds(), "samples/s")
}

// decodeSnappyInto decodes body and copies the request into dst, so tests can keep it after the decoder's
// buffers are recycled.
func decodeSnappyInto(body []byte, maxSize int, dst *prompb.WriteRequest) error {
	decoded, err := decodeSnappyWriteRequest(body, maxSize, 1)
	if err != nil {
		return err
	}
	defer decoded.body.Free()
	return copyRequest(decoded.req, dst)
}

// decodeHTTPInto is decodeSnappyInto for an HTTP request.
func decodeHTTPInto(r *http.Request, maxSize int, dst *prompb.WriteRequest) error {
	decoded, err := decodeWriteRequest(r, maxSize)
	if err != nil {
		return err
	}
	defer decoded.body.Free()
	return copyRequest(decoded.req, dst)
}

func copyRequest(src, dst *prompb.WriteRequest) error {
	raw, err := src.Marshal()
	if err != nil {
		return err
	}
	return dst.Unmarshal(raw)
}
