package ingester

import (
	"math"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// The TSDB head checks a sample against the samples already committed, not against those appended earlier
// in the same (uncommitted) batch: a request whose samples of one series are not in time order (unsorted
// samples, or the series sent twice) passes every Append, and Commit then drops the offending samples
// without telling anyone. requestOrder remembers the newest sample appended for each series of the request
// so that Push rejects those samples itself, with a reason and a discard count, like any other rejection.

// sampleValue is a float sample's value or one of a histogram sample's two forms.
type sampleValue struct {
	f  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// equals reports whether the head would take b as an exact duplicate of a at the same timestamp.
func (a sampleValue) equals(b sampleValue) bool {
	switch {
	case a.h != nil:
		return b.h != nil && a.h.Equals(b.h)
	case a.fh != nil:
		return b.fh != nil && a.fh.Equals(b.fh)
	default:
		return b.h == nil && b.fh == nil && math.Float64bits(a.f) == math.Float64bits(b.f)
	}
}

// lastSample is the newest sample appended for a series in the current request.
type lastSample struct {
	set bool
	t   int64
	v   sampleValue
}

// conflict returns the error the head would have reported for a sample at t with value v, had the earlier
// samples of this request been committed: a different value at the same timestamp, or (without an
// out-of-order window, which the head then applies at commit) an older timestamp.
func (l *lastSample) conflict(t int64, v sampleValue, outOfOrderAllowed bool) error {
	switch {
	case !l.set || t > l.t:
		return nil
	case t == l.t:
		if l.v.equals(v) {
			return nil
		}
		return storage.ErrDuplicateSampleForTimestamp
	case outOfOrderAllowed:
		return nil
	default:
		return storage.ErrOutOfOrderSample
	}
}

func (l *lastSample) update(t int64, v sampleValue) {
	if !l.set || t >= l.t {
		*l = lastSample{set: true, t: t, v: v}
	}
}

// requestOrder maps each series of a request (by label hash) to its newest appended sample.
type requestOrder struct {
	series map[uint64]orderEntry
}

type orderEntry struct {
	lset labels.Labels
	last lastSample
}

// lastOf returns the newest sample appended so far for lset, whose hash is h, in this request.
func (o *requestOrder) lastOf(h uint64, lset labels.Labels) lastSample {
	if e, ok := o.series[h]; ok && labels.Equal(e.lset, lset) {
		return e.last
	}
	return lastSample{}
}

// remember records the newest sample of lset after its samples of one time series entry were appended.
// On a hash collision between two series the second is not tracked: the head then behaves as before.
func (o *requestOrder) remember(h uint64, lset labels.Labels, last lastSample) {
	if !last.set {
		return
	}
	if e, ok := o.series[h]; ok && !labels.Equal(e.lset, lset) {
		return
	}
	o.series[h] = orderEntry{lset: lset, last: last}
}

var requestOrderPool = sync.Pool{New: func() any { return &requestOrder{series: map[uint64]orderEntry{}} }}

func getRequestOrder() *requestOrder { return requestOrderPool.Get().(*requestOrder) }

// putRequestOrder recycles o unless one huge request made its map too big to keep around.
func putRequestOrder(o *requestOrder) {
	if len(o.series) > 1<<16 {
		return
	}
	clear(o.series)
	requestOrderPool.Put(o)
}
