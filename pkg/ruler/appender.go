package ruler

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// Pusher writes series for the tenant in ctx (tenant.FromContext), validating them as a remote write
// would be. The distributor's push path fits it.
type Pusher interface {
	Push(ctx context.Context, req *prompb.WriteRequest) error
}

// PusherAppendable returns, for each tenant, an Appendable whose appenders send what one rule
// evaluation appended as one push under that tenant.
func PusherAppendable(p Pusher) func(tenantID string) storage.Appendable {
	return func(tenantID string) storage.Appendable {
		return pushAppendable{pusher: p, tenantID: tenantID}
	}
}

type pushAppendable struct {
	pusher   Pusher
	tenantID string
}

// Appender implements storage.Appendable.
func (a pushAppendable) Appender(ctx context.Context) storage.Appender {
	return &pushAppender{ctx: tenant.NewContext(ctx, a.tenantID), pusher: a.pusher}
}

// errAppenderDone is returned by an appender used after Commit or Rollback.
var errAppenderDone = errors.New("appender already committed or rolled back")

// pushAppender collects one rule's results (its samples, or the ALERTS and ALERTS_FOR_STATE samples
// of an alerting rule, and staleness markers) until Commit. Each append is its own series: a rule
// evaluation gives every series one sample, so there is nothing to merge.
type pushAppender struct {
	ctx    context.Context
	pusher Pusher
	series []prompb.TimeSeries
	done   bool
}

var _ storage.Appender = (*pushAppender)(nil)

// Append implements storage.Appender.
func (a *pushAppender) Append(_ storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if a.done {
		return 0, errAppenderDone
	}
	a.series = append(a.series, prompb.TimeSeries{
		Labels:  prompb.FromLabels(l, nil),
		Samples: []prompb.Sample{{Timestamp: t, Value: v}},
	})
	return 0, nil
}

// AppendHistogram implements storage.Appender.
func (a *pushAppender) AppendHistogram(_ storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if a.done {
		return 0, errAppenderDone
	}
	var ph prompb.Histogram
	switch {
	case h != nil:
		ph = prompb.FromIntHistogram(t, h)
	case fh != nil:
		ph = prompb.FromFloatHistogram(t, fh)
	default:
		return 0, errors.New("append histogram: no histogram given")
	}
	a.series = append(a.series, prompb.TimeSeries{
		Labels:     prompb.FromLabels(l, nil),
		Histograms: []prompb.Histogram{ph},
	})
	return 0, nil
}

// Commit pushes everything appended in one request.
func (a *pushAppender) Commit() error {
	if a.done {
		return errAppenderDone
	}
	a.done = true
	if len(a.series) == 0 {
		return nil
	}
	req := &prompb.WriteRequest{Timeseries: a.series}
	a.series = nil
	return a.pusher.Push(a.ctx, req)
}

// Rollback drops everything appended.
func (a *pushAppender) Rollback() error {
	a.done = true
	a.series = nil
	return nil
}

// SetOptions implements storage.Appender; rule results are always in order, nothing to set.
func (a *pushAppender) SetOptions(*storage.AppendOptions) {}

// AppendExemplar implements storage.Appender; rule results have no exemplars, so none are sent.
func (a *pushAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, nil
}

// UpdateMetadata implements storage.Appender; rules give no metadata.
func (a *pushAppender) UpdateMetadata(storage.SeriesRef, labels.Labels, metadata.Metadata) (storage.SeriesRef, error) {
	return 0, nil
}

// AppendSTZeroSample implements storage.Appender; rule results have no start timestamps.
func (a *pushAppender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, nil
}

// AppendHistogramSTZeroSample implements storage.Appender; rule results have no start timestamps.
func (a *pushAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, nil
}
