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

// sliceStream is a stream of series already received whole (a unary answer), in label order.
func sliceStream(source string, series []*seriespb.Series) *seriesStream {
	s := &seriesStream{source: source, messages: make(chan streamMessage, 2), next: -1, cancel: func() {}}
	s.messages <- streamMessage{series: series}
	s.messages <- streamMessage{err: io.EOF}
	return s
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
				return ctx.Err()
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
// not the answers.
type mergedSeriesSet struct {
	ctx     context.Context
	streams streamHeap
	onFail  streamFailure
	started bool

	cur storage.Series
	err error
}

func newMergedSeriesSet(ctx context.Context, streams []*seriesStream, onFail streamFailure) *mergedSeriesSet {
	return &mergedSeriesSet{ctx: ctx, streams: streams, onFail: onFail}
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
		m.err = m.ctx.Err()
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
	m.cur, m.err = newChunkSeries(lset, chunks)
	return m.err == nil
}

func (m *mergedSeriesSet) At() storage.Series                { return m.cur }
func (m *mergedSeriesSet) Err() error                        { return m.err }
func (m *mergedSeriesSet) Warnings() annotations.Annotations { return nil }

// streamContexts are the contexts of a querier's streams, all canceled when the querier is closed: the
// engine may stop reading a series set before its end, and its streams must not outlive the query.
type streamContexts struct {
	mtx     sync.Mutex
	cancels []context.CancelFunc
	closed  bool
}

func (c *streamContexts) new(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if c.closed {
		cancel()
	} else {
		c.cancels = append(c.cancels, cancel)
	}
	return ctx
}

func (c *streamContexts) cancel() {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	c.closed = true
	for _, cancel := range c.cancels {
		cancel()
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
