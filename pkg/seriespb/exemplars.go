package seriespb

import (
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// MaxExemplarMatcherSets bounds the matcher sets of one exemplar request, as the querier's API bounds a
// query's selectors: ingesters and store-gateways test every set against every series holding exemplars
// (in an ingester, while it holds its exemplar storage's lock, which appends of exemplars wait for:
// 5,000 sets against 10,000 series took 3 s).
const MaxExemplarMatcherSets = 100

// ToExemplarMatcherSets converts an exemplar request's matcher sets; its errors are InvalidArgument
// statuses. A set without matchers is refused: it would select every series, and the API never sends
// one, as a selector has a matcher.
func ToExemplarMatcherSets(sets []*LabelMatchers) ([][]*labels.Matcher, error) {
	if len(sets) > MaxExemplarMatcherSets {
		return nil, status.Errorf(codes.InvalidArgument, "the request has %d matcher sets, more than the %d an exemplar query may have", len(sets), MaxExemplarMatcherSets)
	}
	out := make([][]*labels.Matcher, 0, len(sets))
	for _, set := range sets {
		ms, err := ToLabelMatchers(set.Matchers)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid matcher: %v", err)
		}
		if len(ms) == 0 {
			return nil, status.Error(codes.InvalidArgument, "a matcher set has no matchers")
		}
		out = append(out, ms)
	}
	return out, nil
}
