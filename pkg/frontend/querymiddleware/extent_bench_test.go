package querymiddleware

import (
	"math/rand"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-metrics/strata/pkg/cache"
)

// benchmarkExtent is one cached part of a dashboard query: 100 series over one day at a 1m step. Values
// are shaped like the answers that fill caches: rates of counters scraped every 15s (fractions with
// many digits, the worst case for compression) or gauges holding integers (byte counts).
func benchmarkExtent(rates bool) *extent {
	const (
		seriesCount = 100
		points      = 24 * 60
		step        = 60_000
		start       = 1740787200000 // a UTC midnight
	)
	rng := rand.New(rand.NewSource(1))
	e := &extent{start: start, end: start + (points-1)*step}
	for i := range seriesCount {
		s := &series{Metric: labels.FromStrings("__name__", "http_requests_total", "job", "checkout", "namespace", "prod",
			"pod", "checkout-7d9f8b6c5-"+strconv.Itoa(10000+i), "code", "200", "method", "GET")}
		if !rates {
			s.Metric = labels.FromStrings("__name__", "container_memory_working_set_bytes", "namespace", "prod", "pod", "checkout-7d9f8b6c5-"+strconv.Itoa(10000+i))
		}
		counter := make([]float64, points*4+20) // 15s scrapes, 5m before the first step
		for j := 1; j < len(counter); j++ {
			counter[j] = counter[j-1] + float64(rng.Intn(40))
		}
		memory := float64(200<<20 + rng.Intn(100<<20))
		for p := range points {
			v := (counter[p*4+20] - counter[p*4]) / 300 // rate(x[5m])
			if !rates {
				memory += float64(rng.Intn(1<<16) - 1<<15)
				v = float64(int64(memory) &^ 4095) // pages
			}
			s.Floats = append(s.Floats, floatPoint{T: e.start + int64(p)*step, F: v})
		}
		e.series = append(e.series, s)
	}
	return e
}

// BenchmarkExtent reports what one cached extent of 100 series x 1 day at 1m costs: bytes/extent is the
// encoded entry, cache-bytes/extent what the in-memory backend counts for it (key and bookkeeping
// included), json-bytes/extent the API's JSON of the same points. Its time is an encode and a decode.
//
//	go test -run '^$' -bench BenchmarkExtent -benchtime 20x ./pkg/frontend/querymiddleware/
func BenchmarkExtent(b *testing.B) {
	for _, kind := range []struct {
		name  string
		rates bool
	}{{"rates", true}, {"gauges", false}} {
		b.Run(kind.name, func(b *testing.B) {
			e := benchmarkExtent(kind.rates)
			fullKey, key := partKeys("tenant-1", "sum by (pod) (rate(http_requests_total[5m]))", &rangeQuery{step: 60_000}, 86400_000, 20148)
			encoded := encodeEntry(fullKey, []*extent{e})
			points := 0
			for _, s := range e.series {
				points += len(s.Floats)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				data := encodeEntry(fullKey, []*extent{e})
				if _, err := decodeEntry(fullKey, data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(encoded)), "bytes/extent")
			b.ReportMetric(float64(len(encoded))/float64(points), "bytes/point")
			b.ReportMetric(float64(len(encoded)+len(key)+cache.InMemoryEntryOverheadBytes), "cache-bytes/extent")
			b.ReportMetric(float64(len(appendAnswer(nil, e.series, nil, nil))), "json-bytes/extent")
		})
	}
}

// BenchmarkDecodeAnswer measures reading a querier's answer for one part (100 series x 1 day at 1m),
// which every part fetched for the cache or for merging goes through.
func BenchmarkDecodeAnswer(b *testing.B) {
	e := benchmarkExtent(true)
	body := appendAnswer(nil, e.series, nil, nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeAnswer(body, e.start, e.end); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAnswer measures writing the merged answer of the same size.
func BenchmarkAppendAnswer(b *testing.B) {
	e := benchmarkExtent(true)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAnswer(buf[:0], e.series, nil, nil)
	}
	b.SetBytes(int64(len(buf)))
}
