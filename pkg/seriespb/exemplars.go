package seriespb

import (
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
)

// exemplarFixedBytes is what an exemplar costs on the wire besides its labels: value and timestamp.
const exemplarFixedBytes = 16

// ExemplarBatcher gathers series' exemplars into messages of about maxBytes of labels and values, and
// hands each full one to send. A series whose exemplars do not fit in one message (a tenant's whole
// exemplar buffer can belong to one series) goes on in the next under the same labels.
type ExemplarBatcher struct {
	maxBytes int
	send     func([]*SeriesExemplars) error
	series   []*SeriesExemplars
	bytes    int
}

// NewExemplarBatcher returns a batcher sending messages of about maxBytes with send.
func NewExemplarBatcher(maxBytes int, send func([]*SeriesExemplars) error) *ExemplarBatcher {
	return &ExemplarBatcher{maxBytes: maxBytes, send: send}
}

// Add appends a series and its exemplars, sending every message it fills.
func (b *ExemplarBatcher) Add(lset labels.Labels, exemplars []exemplar.Exemplar) error {
	if len(exemplars) == 0 {
		return nil
	}
	seriesLabels := FromLabels(lset)
	out := &SeriesExemplars{Labels: seriesLabels}
	b.series = append(b.series, out)
	b.bytes += labelsBytes(seriesLabels)
	for i, e := range exemplars {
		ex := &Exemplar{Labels: FromLabels(e.Labels), Value: e.Value, TimestampMs: e.Ts}
		out.Exemplars = append(out.Exemplars, ex)
		b.bytes += labelsBytes(ex.Labels) + exemplarFixedBytes
		if b.bytes >= b.maxBytes {
			if err := b.Flush(); err != nil {
				return err
			}
			if i < len(exemplars)-1 {
				out = &SeriesExemplars{Labels: seriesLabels}
				b.series = append(b.series, out)
				b.bytes += labelsBytes(seriesLabels)
			}
		}
	}
	return nil
}

// Flush sends what was added since the last message, if anything.
func (b *ExemplarBatcher) Flush() error {
	if len(b.series) == 0 {
		return nil
	}
	series := b.series
	b.series, b.bytes = nil, 0
	return b.send(series)
}

// labelsBytes is the size of a label set's names and values.
func labelsBytes(ls []*Label) int {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value)
	}
	return n
}
