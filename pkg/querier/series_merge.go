package querier

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/seriespb"
)

// seriesStream is one answer of an ingester or a store-gateway: series in label order, received a message
// at a time. A goroutine receives ahead while the merge reads the current message, so the streams are
// decoded in parallel; each holds at most three messages (the current one, one queued, one being
// received).
type seriesStream struct {
	source   string // the instance, for error messages
	messages chan streamMessage

	batch []*seriespb.Series
	next  int           // batch[next] is the head
	lset  labels.Labels // the head's labels
	b     labels.ScratchBuilder
	// skipThrough drops series up to and including these labels: a stream that replaces a failed one
	// starts after what the failed one delivered.
	skipThrough labels.Labels
	// blocks are the blocks a store-gateway's stream answers for; cancel ends the stream early.
	blocks []string
	cancel context.CancelFunc
}

type streamMessage struct {
	series []*seriespb.Series
	err    error // io.EOF at the end of the stream
}

// newSeriesStream starts receiving with recv, which returns the series of the next message, until it
// fails, returns io.EOF, or ctx ends.
func newSeriesStream(ctx context.Context, source string, recv func() ([]*seriespb.Series, error)) *seriesStream {
	s := &seriesStream{source: source, messages: make(chan streamMessage, 1), next: -1, cancel: func() {}}
	go func() {
		for {
			series, err := recv()
			select {
			case s.messages <- streamMessage{series: series, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// recvSeries returns the function that receives the series of a stream's next message, for
// newSeriesStream, or err when the stream could not be opened.
func recvSeries[T any, PT interface {
	*T
	GetSeries() []*seriespb.Series
}](stream grpc.ServerStreamingClient[T], err error) (func() ([]*seriespb.Series, error), error) {
	if err != nil {
		return nil, err
	}
	return func() ([]*seriespb.Series, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return PT(msg).GetSeries(), nil
	}, nil
}

// advance moves the head to the next series; it returns io.EOF at the end of the stream.
func (s *seriesStream) advance(ctx context.Context) error {
	for {
		s.next++
		for s.next >= len(s.batch) {
			var msg streamMessage
			select {
			case msg = <-s.messages:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			if msg.err != nil {
				s.batch, s.next = nil, 0
				return msg.err
			}
			s.batch, s.next = msg.series, 0
		}
		s.lset = seriespb.ToLabels(&s.b, s.batch[s.next].Labels)
		if s.skipThrough.IsEmpty() || labels.Compare(s.lset, s.skipThrough) > 0 {
			s.skipThrough = labels.EmptyLabels()
			return nil
		}
	}
}

func (s *seriesStream) head() *seriespb.Series { return s.batch[s.next] }

// streamFailure decides what a stream's failure means for the merge: nil drops the stream (its replicas
// cover for it), replacement streams take over its part, or an error ends the merge.
type streamFailure func(failed *seriesStream, err error) ([]*seriesStream, error)

// mergedSeriesSet is the k-way merge of streams in label order: the series of equal labels from every
// stream become one series (replicas, or blocks of one series on several store-gateways), whose chunks
// newChunkSeries de-duplicates. Its memory is the streams' current messages and the series it returned,
// not the answers. A stream that stopped at one of the tenant's fetch limits ends the merge with that
// limit's error: it is the query's answer that is over the limit, which no other replica can change.
type mergedSeriesSet struct {
	ctx     context.Context
	streams streamHeap
	onFail  streamFailure
	limiter *fetchLimiter // nil: no fetch limits
	stats   *QueryStats   // nil: not counted
	started bool

	cur storage.Series
	err error
}

func newMergedSeriesSet(ctx context.Context, streams []*seriesStream, onFail streamFailure) *mergedSeriesSet {
	return &mergedSeriesSet{ctx: ctx, streams: streams, onFail: onFail, limiter: fetchLimiterFrom(ctx), stats: queryStatsFrom(ctx)}
}

// push advances s and puts it back in the heap, or handles its end or failure.
func (m *mergedSeriesSet) push(s *seriesStream) {
	err := s.advance(m.ctx)
	if err == nil {
		heap.Push(&m.streams, s)
		return
	}
	if errors.Is(err, io.EOF) {
		return
	}
	if m.ctx.Err() != nil {
		// The query's own cancellation, or a fetch limit crossed elsewhere in the query.
		m.err = context.Cause(m.ctx)
		return
	}
	if limitErr, ok := seriespb.LimitErrorOf(err); ok {
		m.err = m.limiter.exceeded(limitErr)
		return
	}
	replacements, err := m.onFail(s, err)
	if err != nil {
		m.err = err
		return
	}
	for _, r := range replacements {
		m.push(r)
	}
}

func (m *mergedSeriesSet) Next() bool {
	if !m.started {
		m.started = true
		streams := m.streams
		m.streams = nil
		for _, s := range streams {
			m.push(s)
		}
	}
	if m.err != nil || len(m.streams) == 0 {
		return false
	}
	first := heap.Pop(&m.streams).(*seriesStream)
	lset := first.lset
	chunks := first.head().Chunks
	m.push(first)
	for m.err == nil && len(m.streams) > 0 && labels.Equal(m.streams[0].lset, lset) {
		s := heap.Pop(&m.streams).(*seriesStream)
		chunks = append(chunks[:len(chunks):len(chunks)], s.head().Chunks...)
		m.push(s)
	}
	if m.err != nil {
		return false
	}
	var chunkBytes int
	m.cur, chunkBytes, m.err = newChunkSeries(lset, chunks)
	m.stats.addSeries(chunks)
	if m.err == nil && m.limiter != nil {
		m.err = m.limiter.addChunkBytes(chunkBytes)
	}
	return m.err == nil
}

func (m *mergedSeriesSet) At() storage.Series                { return m.cur }
func (m *mergedSeriesSet) Err() error                        { return m.err }
func (m *mergedSeriesSet) Warnings() annotations.Annotations { return nil }

// streamContexts are the contexts of streams that end together: a querier's, all canceled when the
// querier is closed (the engine may stop reading a series set before its end, and its streams must not
// outlive the query), and a query's, all canceled with the limit's error when it crosses a fetch limit.
type streamContexts struct {
	mtx     sync.Mutex
	cancels []context.CancelCauseFunc
	cause   error // set once canceled: contexts made afterwards start canceled
	closed  bool
}

func (c *streamContexts) new(parent context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(parent)
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if c.closed {
		cancel(c.cause)
	} else {
		c.cancels = append(c.cancels, cancel)
	}
	return ctx
}

// cancel ends every context with cause (context.Canceled when nil), and those made afterwards.
func (c *streamContexts) cancel(cause error) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if !c.closed {
		c.closed, c.cause = true, cause
	}
	for _, cancel := range c.cancels {
		cancel(c.cause)
	}
	c.cancels = nil
}

// streamHeap orders streams by their head's labels.
type streamHeap []*seriesStream

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return labels.Compare(h[i].lset, h[j].lset) < 0 }
func (h streamHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)        { *h = append(*h, x.(*seriesStream)) }
func (h *streamHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}
