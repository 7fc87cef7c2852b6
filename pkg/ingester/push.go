package ingester

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/remotewrite"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

var errStopping = status.Error(codes.Unavailable, "ingester is shutting down")

// maxReportedSampleErrors bounds how many rejected samples a Push error message describes.
const maxReportedSampleErrors = 5

// Push appends the request's samples, histograms and exemplars to the tenant's TSDB. Samples the TSDB
// refuses (out of order, too old, a different value for an existing timestamp) are counted and reported
// with InvalidArgument, while the rest of the request is still appended; any other failure rolls the
// request back and is Internal, so that the client retries.
func (i *Ingester) Push(ctx context.Context, req *ingesterpb.PushRequest) (*ingesterpb.PushResponse, error) {
	var v2 [][]byte
	if len(req.WriteRequestV2) > 0 {
		v2 = [][]byte{req.WriteRequestV2}
	}
	if err := i.push(ctx, [][]byte{req.WriteRequest}, v2); err != nil {
		return nil, err
	}
	return &ingesterpb.PushResponse{}, nil
}

// PushEncoded is Push for a distributor in the same process: the request's parts are decoded where they
// are, without a gRPC round trip or assembling them first. It implements client.Pusher.
func (i *Ingester) PushEncoded(ctx context.Context, req *ingesterpb.EncodedPushRequest) error {
	return i.push(ctx, req.Parts(), req.PartsV2())
}

// push decodes the 1.0 WriteRequest that is the concatenation of parts, and the 2.0 Request that is the
// concatenation of partsV2, and appends both.
func (i *Ingester) push(ctx context.Context, parts, partsV2 [][]byte) error {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	if err := i.begin(); err != nil {
		return err
	}
	defer i.end()
	if err := i.instanceLimits.startPush(); err != nil {
		return err
	}
	defer i.instanceLimits.endPush()

	// The decoded strings point into the parts, which the caller does not reuse while push runs.
	decoder := remotewrite.GetDecoder()
	defer decoder.Release()
	wr, err := decoder.DecodeParts(parts)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "decode write request: %v", err)
	}
	samples := countSamples(wr)
	var (
		decoderV2 *remotewrite.DecoderV2
		wrV2      *prompb.WriteRequest
	)
	if len(partsV2) > 0 {
		decoderV2 = remotewrite.GetDecoderV2()
		defer decoderV2.Release()
		if wrV2, err = decoderV2.DecodeParts(partsV2); err != nil {
			return status.Errorf(codes.InvalidArgument, "decode remote write 2.0 request: %v", err)
		}
		samples += countSamples(wrV2)
	}
	if err := i.instanceLimits.allowSamples(samples); err != nil {
		return err
	}
	t, release, err := i.acquireTenantDB(tenantID, true)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Error(codes.Internal, err.Error())
	}
	defer release()
	t.touch(i.now())
	settings := i.applyLimits(tenantID, t)

	limits := i.limits.For(tenantID)
	order := getRequestOrder()
	defer putRequestOrder(order)
	app := t.db.Appender(ctx)
	a := &requestAppender{
		ingester:   i,
		app:        app,
		limits:     limits,
		outOfOrder: settings.outOfOrderWindow > 0,
		exemplars:  settings.maxExemplars > 0,
		// The gRPC port takes pushes from any client, not only distributors: the ingester refuses what a
		// distributor would, or one bad series (a sample a year ahead moves the head past every other
		// write) spoils the tenant's TSDB.
		latest:   validation.LatestSampleTimestamp(limits, i.now()),
		order:    order,
		rejected: sampleRejections{tenant: tenantID, ingester: i},
	}
	a.getRef, _ = app.(storage.GetRef)
	for j := range wr.Timeseries {
		if err := a.appendSeries(&wr.Timeseries[j], nil); err != nil {
			return i.abort(app, tenantID, err)
		}
	}
	if wrV2 != nil {
		for _, invalid := range decoderV2.Invalid() {
			a.rejected.addInvalid(&validation.Error{Reason: validation.ReasonInvalidSeries, Message: "remote write 2.0 series left out: " + invalid.Err.Error()}, invalid.Samples, 0)
		}
		for j := range wrV2.Timeseries {
			if err := a.appendSeries(&wrV2.Timeseries[j], func(k int) int64 { return decoderV2.SampleStart(j, k) }); err != nil {
				return i.abort(app, tenantID, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		return status.Errorf(codes.Internal, "commit samples of tenant %s: %v", tenantID, err)
	}
	i.metrics.ingestedSamples.Add(float64(a.appended))
	ingesters, rf := i.ringShare()
	maxFamilies := validation.LocalLimit(limits.MaxGlobalMetadataPerUser, rf, ingesters)
	// A family's metadata all goes to the same ingesters (sharded by family name): each holds all of it.
	maxPerMetric := limits.MaxGlobalMetadataPerMetric
	rejected := &a.rejected
	for _, m := range wr.Metadata {
		err := validation.ValidateMetadata(limits, &m)
		if err == nil {
			err = t.metadata.add(m, maxFamilies, maxPerMetric)
		}
		if err != nil {
			rejected.addInvalid(err, 0, 0)
		}
	}
	if err := rejected.err(); err != nil {
		return err
	}
	return nil
}

// requestAppender appends the series of one push to a tenant's TSDB.
type requestAppender struct {
	ingester   *Ingester
	app        storage.Appender
	getRef     storage.GetRef
	limits     *validation.Limits
	outOfOrder bool
	exemplars  bool
	latest     int64
	order      *requestOrder
	rejected   sampleRejections
	builder    labels.ScratchBuilder
	scratch    labels.Labels
	appended   int
}

// appendSeries appends one series. sampleStart, when not nil, gives the start timestamp (remote write
// 2.0) of the series' k-th float sample, 0 if none: a zero sample is appended there first, as Prometheus
// does for its own scrapes with created timestamps. An error is one that fails the whole push.
func (a *requestAppender) appendSeries(ts *prompb.TimeSeries, sampleStart func(k int) int64) error {
	a.builder.Reset()
	for _, l := range ts.Labels {
		a.builder.Add(l.Name, l.Value)
	}
	a.builder.Sort()
	// Most series exist already: look them up with labels built in a reused buffer, and build labels of
	// their own (which the head keeps) only for new series.
	var (
		ref  storage.SeriesRef
		lset labels.Labels
	)
	a.builder.Overwrite(&a.scratch)
	hash := a.scratch.Hash()
	if a.getRef != nil {
		ref, lset = a.getRef.GetRef(a.scratch, hash)
	}
	if ref == 0 {
		// Existing series passed this when they were created: only new ones pay for it.
		if err := validation.ValidateLabels(a.limits, ts.Labels); err != nil {
			a.rejected.addInvalid(err, len(ts.Samples), len(ts.Histograms))
			return nil
		}
		lset = a.builder.Labels()
	}
	last := a.order.lastOf(hash, lset)

	for k, s := range ts.Samples {
		if s.Timestamp > a.latest {
			a.rejected.addInvalid(validation.ValidateSampleTimestamp(a.limits, a.ingester.now(), s.Timestamp, ts.Labels), 1, 0)
			continue
		}
		if sampleStart != nil {
			if st := sampleStart(k); st != 0 && st < s.Timestamp {
				// Refused zero samples (one already there, out of order) are expected: each request
				// repeats the start timestamp of its series.
				if newRef, err := a.app.AppendSTZeroSample(ref, lset, s.Timestamp, st); err == nil {
					ref = newRef
				}
			}
		}
		v := sampleValue{f: s.Value}
		err := last.conflict(s.Timestamp, v, a.outOfOrder)
		if err == nil {
			var newRef storage.SeriesRef
			if newRef, err = a.app.Append(ref, lset, s.Timestamp, s.Value); err == nil {
				ref = newRef
				last.update(s.Timestamp, v)
				a.appended++
				continue
			}
		}
		if !a.rejected.add(err, s.Timestamp, lset, false) {
			return err
		}
	}
	for k := range ts.Histograms {
		h := &ts.Histograms[k]
		if h.Timestamp > a.latest {
			a.rejected.addInvalid(validation.ValidateSampleTimestamp(a.limits, a.ingester.now(), h.Timestamp, ts.Labels), 0, 1)
			continue
		}
		var v sampleValue
		if h.IsFloatHistogram() {
			v.fh = h.ToFloatHistogram()
		} else {
			v.h = h.ToIntHistogram()
		}
		if sampleStart != nil {
			if st := remotewrite.HistogramStart(h); st != 0 && st < h.Timestamp {
				if newRef, err := a.app.AppendHistogramSTZeroSample(ref, lset, h.Timestamp, st, v.h, v.fh); err == nil {
					ref = newRef
				}
			}
		}
		err := last.conflict(h.Timestamp, v, a.outOfOrder)
		if err == nil {
			var newRef storage.SeriesRef
			if newRef, err = a.app.AppendHistogram(ref, lset, h.Timestamp, v.h, v.fh); err == nil {
				ref = newRef
				last.update(h.Timestamp, v)
				a.appended++
				continue
			}
		}
		if !a.rejected.add(err, h.Timestamp, lset, true) {
			return err
		}
	}
	a.order.remember(hash, lset, last)
	if a.exemplars && ref != 0 {
		for _, e := range ts.Exemplars {
			// A rejected exemplar never fails the push: exemplars are best effort, as in Prometheus.
			_, _ = a.app.AppendExemplar(ref, lset, exemplar.Exemplar{
				Labels: exemplarLabels(&a.builder, e.Labels),
				Value:  e.Value,
				Ts:     e.Timestamp,
				HasTs:  true,
			})
		}
	}
	return nil
}

func (i *Ingester) abort(app storage.Appender, tenantID string, err error) error {
	if rbErr := app.Rollback(); rbErr != nil {
		i.logger.Warn("rollback failed", "tenant", tenantID, "err", rbErr)
	}
	if errors.Is(err, errInstanceSeriesLimit) {
		return instanceLimitError("max-series", "this ingester holds %d series, its limit (-ingester.instance-limits.max-series)", i.cfg.InstanceLimits.MaxSeries)
	}
	return status.Errorf(codes.Internal, "append to TSDB of tenant %s: %v", tenantID, err)
}

// countSamples returns the samples and histograms of wr.
func countSamples(wr *prompb.WriteRequest) int {
	n := 0
	for _, ts := range wr.Timeseries {
		n += len(ts.Samples) + len(ts.Histograms)
	}
	return n
}

func exemplarLabels(b *labels.ScratchBuilder, ls []prompb.Label) labels.Labels {
	b.Reset()
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// sampleRejections collects the samples the TSDB refused as bad input.
type sampleRejections struct {
	tenant   string
	ingester *Ingester
	count    int // samples and histograms rejected
	// histograms of count, reported apart for the remote write 2.0 Written headers.
	histograms int
	// rejections counts every rejection, of metadata too, which has no samples.
	rejections int
	messages   []string
}

// add records err if it is a per-sample (or, histogram, per-histogram) rejection and reports whether it
// was one.
func (r *sampleRejections) add(err error, ts int64, lset labels.Labels, histogram bool) bool {
	reason := rejectionReason(err)
	if reason == "" {
		return false
	}
	r.ingester.metrics.discarded.WithLabelValues(reason, r.tenant).Inc()
	r.count++
	if histogram {
		r.histograms++
	}
	r.rejections++
	if len(r.messages) < maxReportedSampleErrors {
		r.messages = append(r.messages, fmt.Sprintf("%s (%s) at timestamp %d for series %s", err, validation.ErrorID(reason), ts, lset))
	}
	return true
}

// addInvalid records input that failed validation: samples and histograms of one series, or metadata
// when both are 0.
func (r *sampleRejections) addInvalid(err error, samples, histograms int) {
	reason, _ := validation.ReasonOf(err)
	n := samples + histograms
	if n > 0 {
		r.ingester.metrics.discarded.WithLabelValues(reason, r.tenant).Add(float64(n))
	}
	r.count += n
	r.histograms += histograms
	r.rejections++
	if len(r.messages) < maxReportedSampleErrors {
		r.messages = append(r.messages, err.Error())
	}
}

func (r *sampleRejections) err() error {
	if r.rejections == 0 {
		return nil
	}
	if r.count == 0 {
		return status.Errorf(codes.InvalidArgument, "metadata rejected: %s", strings.Join(r.messages, "; "))
	}
	st := status.Newf(codes.InvalidArgument, "%d samples rejected: %s", r.count, strings.Join(r.messages, "; "))
	if detailed, err := st.WithDetails(&ingesterpb.PushRejected{Samples: int64(r.count - r.histograms), Histograms: int64(r.histograms)}); err == nil {
		st = detailed
	}
	return st.Err()
}

// rejectionReason maps a TSDB append error caused by the sample itself to its discard reason, or "" for
// errors that are the ingester's own fault.
func rejectionReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return validation.ReasonSampleOutOfOrder
	case errors.Is(err, storage.ErrTooOldSample):
		return validation.ReasonSampleTooOld
	case errors.Is(err, storage.ErrOutOfBounds):
		return validation.ReasonSampleOutOfBounds
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return validation.ReasonSampleDuplicateTimestamp
	case isHistogramValidationError(err):
		return validation.ReasonInvalidNativeHistogram
	}
	var limitErr *seriesLimitError
	if errors.As(err, &limitErr) {
		return limitErr.reason
	}
	return ""
}

func isHistogramValidationError(err error) bool {
	var herr histogram.Error
	return errors.As(err, &herr)
}
