package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
)

// Operation label values of the strata_bucket_* metrics.
const (
	OpGet        = "get"
	OpGetRange   = "get_range"
	OpExists     = "exists"
	OpUpload     = "upload"
	OpDelete     = "delete"
	OpIter       = "iter"
	OpAttributes = "attributes"
)

var operations = []string{OpGet, OpGetRange, OpExists, OpUpload, OpDelete, OpIter, OpAttributes}

// operationMetrics are the collectors every instrumented bucket of one registerer shares; each bucket
// takes the children of its component.
type operationMetrics struct {
	total    *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newOperationMetrics(reg prometheus.Registerer) (*operationMetrics, error) {
	labels := []string{"operation", "component"}
	m := &operationMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_bucket_operations_total",
			Help: "Object storage operations started, by operation and component.",
		}, labels),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_bucket_operation_failures_total",
			Help: "Object storage operations that failed, by operation and component. " +
				"Object-not-found and cancelled requests are not failures.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "strata_bucket_operation_duration_seconds",
			Help: "Time object storage operations took, by operation and component; " +
				"for get and get_range until the reader is closed.",
			// 5ms (a small GET in the same region) to ~80s (a large block segment upload).
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}, labels),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.total, err = registerOrReuse(reg, m.total); err != nil {
		return nil, err
	}
	if m.failures, err = registerOrReuse(reg, m.failures); err != nil {
		return nil, err
	}
	if m.duration, err = registerOrReuse(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// registerOrReuse registers c, or returns the identical collector an earlier client registered, so
// that several components can build bucket clients on one registerer.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("register bucket metrics: %w", err)
}

// opMetrics are one operation's children for one component, resolved once so that calls do no
// label lookups.
type opMetrics struct {
	total    prometheus.Counter
	failures prometheus.Counter
	duration prometheus.Observer
}

// instrumentedBucket counts and times every operation of the bucket it wraps. It returns the wrapped
// bucket's errors unchanged: providers recognise their own errors (IsObjNotFoundErr) by type, which a
// wrapping error would hide from some of them.
type instrumentedBucket struct {
	bkt objstore.Bucket
	ops map[string]opMetrics
}

var _ objstore.Bucket = (*instrumentedBucket)(nil)

func newInstrumentedBucket(bkt objstore.Bucket, m *operationMetrics, component string) *instrumentedBucket {
	ops := make(map[string]opMetrics, len(operations))
	for _, op := range operations {
		// Creating every child up front exports zeros, so rate() and alerts work before the first failure.
		ops[op] = opMetrics{
			total:    m.total.WithLabelValues(op, component),
			failures: m.failures.WithLabelValues(op, component),
			duration: m.duration.WithLabelValues(op, component),
		}
	}
	return &instrumentedBucket{bkt: bkt, ops: ops}
}

// start counts an operation and returns the function that records its outcome.
func (b *instrumentedBucket) start(op string) func(err error) {
	m := b.ops[op]
	m.total.Inc()
	began := time.Now()
	return func(err error) {
		m.duration.Observe(time.Since(began).Seconds())
		if b.isFailure(err) {
			m.failures.Inc()
		}
	}
}

// isFailure tells a fault of the object store from an answer: a missing object is an answer (callers
// probe for markers that usually do not exist), and a cancelled request is the caller's choice.
func (b *instrumentedBucket) isFailure(err error) bool {
	return err != nil && !b.bkt.IsObjNotFoundErr(err) && !errors.Is(err, context.Canceled)
}

func (b *instrumentedBucket) Iter(ctx context.Context, dir string, f func(string) error, options ...objstore.IterOption) error {
	done := b.start(OpIter)
	cb := callbackErrors{}
	err := b.bkt.Iter(ctx, dir, func(name string) error { return cb.record(f(name)) }, options...)
	done(cb.bucketError(err))
	return err
}

func (b *instrumentedBucket) IterWithAttributes(ctx context.Context, dir string, f func(objstore.IterObjectAttributes) error, options ...objstore.IterOption) error {
	done := b.start(OpIter)
	cb := callbackErrors{}
	err := b.bkt.IterWithAttributes(ctx, dir, func(a objstore.IterObjectAttributes) error { return cb.record(f(a)) }, options...)
	done(cb.bucketError(err))
	return err
}

// callbackErrors remembers the error an Iter callback returned, so that the caller stopping the
// iteration is not counted as a bucket failure.
type callbackErrors struct {
	err error
}

func (c *callbackErrors) record(err error) error {
	if err != nil {
		c.err = err
	}
	return err
}

func (c *callbackErrors) bucketError(err error) error {
	if c.err != nil && errors.Is(err, c.err) {
		return nil
	}
	return err
}

func (b *instrumentedBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	done := b.start(OpGet)
	rc, err := b.bkt.Get(ctx, name)
	if err != nil {
		done(err)
		return nil, err
	}
	return &timedReader{rc: rc, done: done}, nil
}

func (b *instrumentedBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	done := b.start(OpGetRange)
	rc, err := b.bkt.GetRange(ctx, name, off, length)
	if err != nil {
		done(err)
		return nil, err
	}
	return &timedReader{rc: rc, done: done}, nil
}

func (b *instrumentedBucket) Exists(ctx context.Context, name string) (bool, error) {
	done := b.start(OpExists)
	ok, err := b.bkt.Exists(ctx, name)
	done(err)
	return ok, err
}

func (b *instrumentedBucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	done := b.start(OpAttributes)
	attrs, err := b.bkt.Attributes(ctx, name)
	done(err)
	return attrs, err
}

func (b *instrumentedBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	done := b.start(OpUpload)
	err := b.bkt.Upload(ctx, name, r, opts...)
	done(err)
	return err
}

func (b *instrumentedBucket) Delete(ctx context.Context, name string) error {
	done := b.start(OpDelete)
	err := b.bkt.Delete(ctx, name)
	done(err)
	return err
}

func (b *instrumentedBucket) SupportedIterOptions() []objstore.IterOptionType {
	return b.bkt.SupportedIterOptions()
}
func (b *instrumentedBucket) IsObjNotFoundErr(err error) bool  { return b.bkt.IsObjNotFoundErr(err) }
func (b *instrumentedBucket) IsAccessDeniedErr(err error) bool { return b.bkt.IsAccessDeniedErr(err) }
func (b *instrumentedBucket) Provider() objstore.ObjProvider   { return b.bkt.Provider() }
func (b *instrumentedBucket) Name() string                     { return b.bkt.Name() }
func (b *instrumentedBucket) Close() error                     { return b.bkt.Close() }

// timedReader ends a get or get_range operation when the reader is closed, because for large objects
// the transfer, not the request, is what takes time and what fails. A read error other than EOF
// counts as the operation's failure.
type timedReader struct {
	rc      io.ReadCloser
	done    func(error)
	readErr error
	once    sync.Once
}

func (r *timedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF && r.readErr == nil {
		r.readErr = err
	}
	return n, err
}

func (r *timedReader) Close() error {
	err := r.rc.Close()
	r.once.Do(func() { r.done(r.readErr) })
	return err
}

// ObjectSize passes on the size the provider knows, which objstore.TryToGetSize looks for.
func (r *timedReader) ObjectSize() (int64, error) {
	if s, ok := r.rc.(objstore.ObjectSizer); ok {
		return s.ObjectSize()
	}
	return 0, fmt.Errorf("object size unknown for %T", r.rc)
}
