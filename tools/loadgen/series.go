package main

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// valueKind says how a series' value moves from one round to the next.
type valueKind uint8

const (
	kindCounter    valueKind = iota // float counter, e.g. CPU seconds
	kindIntCounter                  // integer counter, e.g. bytes or requests
	kindGauge                       // mean-reverting random walk around a centre
	kindHistBucket                  // cumulative `le` bucket of a classic histogram
	kindHistSum                     // _sum of a classic histogram
	kindHistCount                   // _count of a classic histogram
)

type label struct{ name, value string }

// seriesTemplate is one series every target exposes; the target adds its own labels.
type seriesTemplate struct {
	name   string
	labels []label // the family's labels, without __name__ and the target's labels
	kind   valueKind
	rate   float64 // counters: mean increase per second; gauges: centre of the walk
	spread float64 // gauges: relative amplitude of the walk
	hist   int     // histogram kinds: index into targetTemplate.hists
	le     int     // kindHistBucket: index into histBuckets
}

// histTemplate describes one classic histogram: its observation rate and latency distribution.
type histTemplate struct {
	rate   float64   // observations per second
	mean   float64   // mean observed value, for _sum
	cumul  []float64 // fraction of observations <= each bucket bound, non-decreasing, last is 1
	labels []label
}

// targetTemplate is what one scraped node_exporter-like target exposes.
type targetTemplate struct {
	series []seriesTemplate
	hists  []histTemplate
}

var histBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}

// nodeTemplate returns the series of a node_exporter plus a small HTTP service: about 84 series
// per target, counters, gauges and two classic histograms.
func nodeTemplate() *targetTemplate {
	t := &targetTemplate{}
	counter := func(kind valueKind, name string, rate float64, ls ...label) {
		t.series = append(t.series, seriesTemplate{name: name, labels: ls, kind: kind, rate: rate})
	}
	gauge := func(name string, centre, spread float64, ls ...label) {
		t.series = append(t.series, seriesTemplate{name: name, labels: ls, kind: kindGauge, rate: centre, spread: spread})
	}
	modes := map[string]float64{"idle": 0.7, "iowait": 0.02, "irq": 0.001, "nice": 0.001, "softirq": 0.01, "steal": 0.001, "system": 0.08, "user": 0.18}
	for cpu := range 4 {
		for _, mode := range slices.Sorted(maps.Keys(modes)) {
			counter(kindCounter, "node_cpu_seconds_total", modes[mode], label{"cpu", strconv.Itoa(cpu)}, label{"mode", mode})
		}
	}
	gauge("node_load1", 1.2, 0.8)
	gauge("node_load5", 1.1, 0.5)
	gauge("node_load15", 1.0, 0.3)
	gauge("node_memory_MemTotal_bytes", 8<<30, 0)
	gauge("node_memory_MemAvailable_bytes", 4<<30, 0.4)
	gauge("node_memory_Cached_bytes", 2<<30, 0.2)
	for _, dev := range []string{"eth0", "lo"} {
		counter(kindIntCounter, "node_network_receive_bytes_total", 2e5, label{"device", dev})
		counter(kindIntCounter, "node_network_transmit_bytes_total", 1e5, label{"device", dev})
	}
	for _, dev := range []string{"nvme0n1", "sda"} {
		counter(kindIntCounter, "node_disk_read_bytes_total", 5e5, label{"device", dev})
		counter(kindIntCounter, "node_disk_written_bytes_total", 8e5, label{"device", dev})
		counter(kindCounter, "node_disk_io_time_seconds_total", 0.05, label{"device", dev})
	}
	for _, fs := range [][3]string{{"/dev/nvme0n1p1", "ext4", "/"}, {"tmpfs", "tmpfs", "/run"}} {
		ls := []label{{"device", fs[0]}, {"fstype", fs[1]}, {"mountpoint", fs[2]}}
		gauge("node_filesystem_avail_bytes", 40<<30, 0.1, ls...)
		gauge("node_filesystem_size_bytes", 100<<30, 0, ls...)
	}
	for _, h := range []struct {
		handler, method string
		rate, median    float64
	}{{"/api/v1/push", "POST", 20, 0.04}, {"/metrics", "GET", 0.2, 0.004}} {
		ls := []label{{"handler", h.handler}, {"method", h.method}}
		idx := len(t.hists)
		t.hists = append(t.hists, newHistTemplate(h.rate, h.median, ls))
		for le := range histBuckets {
			t.series = append(t.series, seriesTemplate{name: "http_request_duration_seconds_bucket",
				labels: append(slices.Clone(ls), label{"le", formatLe(histBuckets[le])}), kind: kindHistBucket, hist: idx, le: le})
		}
		t.series = append(t.series,
			seriesTemplate{name: "http_request_duration_seconds_sum", labels: ls, kind: kindHistSum, hist: idx},
			seriesTemplate{name: "http_request_duration_seconds_count", labels: ls, kind: kindHistCount, hist: idx})
		counter(kindIntCounter, "http_requests_total", h.rate*0.99, append(slices.Clone(ls), label{"code", "200"})...)
		counter(kindIntCounter, "http_requests_total", h.rate*0.01, append(slices.Clone(ls), label{"code", "500"})...)
	}
	return t
}

// newHistTemplate spreads observations log-normally around median (sigma 1).
func newHistTemplate(rate, median float64, ls []label) histTemplate {
	h := histTemplate{rate: rate, mean: median * math.Exp(0.5), labels: ls}
	for _, le := range histBuckets {
		f := 1.0
		if !math.IsInf(le, 1) {
			f = 0.5 * math.Erfc(-(math.Log(le)-math.Log(median))/math.Sqrt2)
		}
		h.cumul = append(h.cumul, f)
	}
	return h
}

func formatLe(le float64) string {
	if math.IsInf(le, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(le, 'g', -1, 64)
}

// target is one scraped instance: the live state of its series.
type target struct {
	id     int
	scale  float64  // machine size: multiplies rates and gauge centres
	labels [][]byte // encoded remote-write labels per series; may be shorter than the template
	values []float64
	walk   []float64 // gauges: position of the walk in [-1, 1]
	hists  []histState
	ids    []int32   // tracker ids per series; nil unless writes are tracked
	sets   [][]label // label sets per series, made when first asked for (remote write 2.0)
}

// labelSet returns the labels of the target's j-th series.
func (t *target) labelSet(tpl *targetTemplate, j int) []label {
	if t.sets == nil {
		t.sets = make([][]label, len(t.labels))
	}
	if t.sets[j] == nil {
		t.sets[j] = seriesLabels(&tpl.series[j], t.id)
	}
	return t.sets[j]
}

type histState struct{ count, sum float64 }

// targetLabels are the labels the "scrape" adds: 6 of them, so series have 7 to 11 labels.
func targetLabels(id int) []label {
	regions := []string{"eu-west-1", "us-east-1", "ap-south-1"}
	region := regions[id%len(regions)]
	env := "prod"
	if id%5 == 4 {
		env = "staging"
	}
	return []label{
		{"cluster", fmt.Sprintf("%s-%d", env, id%4)},
		{"env", env},
		{"instance", fmt.Sprintf("10.%d.%d.%d:9100", (id>>16)&255, (id>>8)&255, id&255)},
		{"job", "node"},
		{"region", region},
		{"zone", region + string(rune('a'+id%3))},
	}
}

// seriesLabels returns the sorted label set of template series s on target id.
func seriesLabels(s *seriesTemplate, id int) []label {
	ls := append([]label{{"__name__", s.name}}, s.labels...)
	ls = append(ls, targetLabels(id)...)
	slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	return ls
}

// tenantSeries holds one tenant's active series, laid out as consecutive targets.
type tenantSeries struct {
	name      string
	tpl       *targetTemplate
	n         int // active series
	targets   []*target
	nextID    int
	rng       *rand.Rand
	churnOwed float64 // series due to be replaced
	churnPos  int     // next target slot to replace
	records   *tenantRecords
}

func newTenantSeries(name string, n int, seed uint64, records *tenantRecords) *tenantSeries {
	ts := &tenantSeries{name: name, tpl: nodeTemplate(), n: n, rng: rand.New(rand.NewPCG(seed, 0x5eed)), records: records}
	per := len(ts.tpl.series)
	for lo := 0; lo < n; lo += per {
		ts.targets = append(ts.targets, ts.newTarget(min(per, n-lo), false))
	}
	return ts
}

// newTarget starts a target with its first size template series. A fresh target is a process that
// just started, its counters at zero; otherwise counters carry up to 30 days of history.
func (ts *tenantSeries) newTarget(size int, fresh bool) *target {
	id := ts.nextID
	ts.nextID++
	t := &target{id: id, scale: float64(1 + id%8), labels: make([][]byte, size),
		values: make([]float64, size), walk: make([]float64, size), hists: make([]histState, len(ts.tpl.hists))}
	uptime := 0.0
	if !fresh {
		uptime = 3600 + ts.rng.Float64()*30*86400
	}
	for h := range t.hists {
		t.hists[h].count = math.Round(ts.tpl.hists[h].rate * t.scale * uptime)
		t.hists[h].sum = t.hists[h].count * ts.tpl.hists[h].mean
	}
	if ts.records != nil {
		t.ids = make([]int32, size)
	}
	for j := range size {
		s := &ts.tpl.series[j]
		ls := seriesLabels(s, id)
		t.labels[j] = appendLabels(nil, ls)
		if ts.records != nil {
			t.ids[j] = ts.records.add(ls)
		}
		switch s.kind {
		case kindCounter:
			t.values[j] = s.rate * t.scale * uptime
		case kindIntCounter:
			t.values[j] = math.Round(s.rate * t.scale * uptime)
		case kindGauge:
			t.walk[j] = ts.rng.Float64()*2 - 1
		}
	}
	t.advance(ts.tpl, ts.rng, 0)
	return t
}

// advance moves every series of the target dt seconds forward.
func (t *target) advance(tpl *targetTemplate, rng *rand.Rand, dt float64) {
	for h := range t.hists {
		inc := math.Round(tpl.hists[h].rate * t.scale * dt * (0.5 + rng.Float64()))
		t.hists[h].count += inc
		t.hists[h].sum += inc * tpl.hists[h].mean * (0.8 + 0.4*rng.Float64())
	}
	for j := range t.values {
		s := &tpl.series[j]
		switch s.kind {
		case kindCounter:
			t.values[j] += s.rate * t.scale * dt * (0.5 + rng.Float64())
		case kindIntCounter:
			t.values[j] += math.Round(s.rate * t.scale * dt * (0.5 + rng.Float64()))
		case kindGauge:
			t.walk[j] = max(-1, min(1, 0.95*t.walk[j]+(rng.Float64()-0.5)*0.3))
			v := s.rate * t.scale * (1 + s.spread*t.walk[j])
			if s.rate >= 1024 {
				v = math.Round(v) // byte gauges are whole numbers
			}
			t.values[j] = v
		case kindHistBucket:
			t.values[j] = math.Floor(t.hists[s.hist].count * tpl.hists[s.hist].cumul[s.le])
		case kindHistSum:
			t.values[j] = t.hists[s.hist].sum
		case kindHistCount:
			t.values[j] = t.hists[s.hist].count
		}
	}
}

// advance moves the tenant's series dt seconds forward, first replacing whole targets (new
// instance, counters from zero) as -churn-per-minute asks. It returns how many series it replaced.
func (ts *tenantSeries) advance(dt, churnPerMinute float64) int {
	churned := 0
	ts.churnOwed += churnPerMinute * dt / 60
	for len(ts.targets) > 0 {
		size := len(ts.targets[ts.churnPos].labels)
		if ts.churnOwed < float64(size) {
			break
		}
		ts.churnOwed -= float64(size)
		ts.targets[ts.churnPos] = ts.newTarget(size, true)
		ts.churnPos = (ts.churnPos + 1) % len(ts.targets)
		churned += size
	}
	for _, t := range ts.targets {
		t.advance(ts.tpl, ts.rng, dt)
	}
	return churned
}

// series calls f for active series i..j-1 in layout order.
func (ts *tenantSeries) series(lo, hi int, f func(t *target, j int)) {
	per := len(ts.tpl.series)
	for i := lo; i < hi; {
		t := ts.targets[i/per]
		end := min(hi-i+i%per, len(t.labels))
		for j := i % per; j < end; j++ {
			f(t, j)
		}
		i += end - i%per
	}
}
