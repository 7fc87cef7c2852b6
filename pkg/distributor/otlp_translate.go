package distributor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/strata-metrics/strata/pkg/validation"
)

// targetInfoName is the series the translator makes of each resource's attributes.
const targetInfoName = "target_info"

// errTranslatedTooLarge stops a translation whose remote-write request outgrows the size limit.
var errTranslatedTooLarge = errors.New("translated request too large")

// maxTargetInfoSamples bounds the target_info samples of one resource. The translator writes one every
// 2.5 minutes (half the lookback) from the resource's earliest point to its latest, so a single point
// stamped 1970 (an unset timestamp) beside a current one would otherwise cost 11 million samples and as
// many entries of the translator's map. 1000 covers points spread over 41 hours.
const maxTargetInfoSamples = 1000

// translation is the remote-write request made from one OTLP export, and what was lost on the way.
type translation struct {
	req prompb.WriteRequest
	// points counts the OTLP data points that became samples; target_info is not one of them.
	points int
	// errs are the translator's errors (metrics it skipped), warnings its annotations.
	errs     error
	warnings []string
	tooLarge bool
	// starts are each series' points' start times, when the tenant ingests them (nil otherwise).
	starts []pointStarts
}

// pointStarts are the start times of a series' samples and histograms, in their order; 0 is none.
type pointStarts struct {
	samples, histograms []int64
}

// translateOTLP turns md into a remote-write request with Prometheus' own OTLP translator, under the
// tenant's OTLP settings. The request may not be estimated larger than maxSize: OTLP is more compact
// than remote write (a resource's attributes become labels of each of its series, a classic histogram
// point becomes a series per bucket), so a small body can translate to many times its size.
func translateOTLP(ctx context.Context, md pmetric.Metrics, limits *validation.Limits, maxSize int) *translation {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	app := &writeRequestAppender{
		families:          map[string]struct{}{},
		maxSize:           maxSize,
		maxMetadataLength: limits.MaxMetadataLength,
		cancel:            cancel,
		keepStarts:        limits.OTelCreatedTimestampZeroIngestionEnabled,
	}
	conv := otlptranslator.NewPrometheusConverter(app)
	annots, errs := conv.FromMetrics(ctx, md, otlpSettings(limits))
	t := &translation{req: app.req, points: app.points, tooLarge: app.tooLarge}
	if app.anyStart {
		t.starts = app.starts
	}
	if !t.tooLarge {
		t.errs = errs
		t.warnings, _ = annots.AsStrings("", maxReportedErrors, 0)
	}
	return t
}

// otlpSettings are the translator's settings for a tenant: Prometheus' defaults for its OTLP receiver
// except where a limit says otherwise. Names are always escaped to the classic character set, which is
// what Strata's validation accepts.
func otlpSettings(l *validation.Limits) otlptranslator.Settings {
	return otlptranslator.Settings{
		AddMetricSuffixes:                    l.OTelMetricSuffixesEnabled,
		AllowUTF8:                            false,
		PromoteResourceAttributes:            promoteResourceAttributes(l.PromoteOTelResourceAttributes),
		KeepIdentifyingResourceAttributes:    l.OTelKeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:              l.OTelConvertHistogramsToNHCB,
		PromoteScopeMetadata:                 l.OTelPromoteScopeMetadata,
		AllowDeltaTemporality:                l.OTelNativeDeltaIngestion,
		LookbackDelta:                        defaultLookbackDelta,
		LabelNameUnderscoreSanitization:      true,
		LabelNamePreserveMultipleUnderscores: true,
	}
}

// defaultLookbackDelta is the PromQL lookback the translator spaces target_info samples by, so that
// target_info is present at every instant between a resource's first and last points.
const defaultLookbackDelta = 5 * time.Minute

func promoteResourceAttributes(attrs []string) *otlptranslator.PromoteResourceAttributes {
	if len(attrs) == 0 {
		return nil
	}
	return otlptranslator.NewPromoteResourceAttributes(config.OTLPConfig{PromoteResourceAttributes: attrs})
}

// writeRequestAppender collects the translator's appends into a remote-write request: one series per
// run of appends with the same labels, and one metadata entry per metric family.
type writeRequestAppender struct {
	req               prompb.WriteRequest
	last              labels.Labels // of the last series in req
	labelSlab         []prompb.Label
	sampleSlab        []prompb.Sample
	families          map[string]struct{}
	points            int
	size, maxSize     int
	maxMetadataLength int
	tooLarge          bool
	cancel            context.CancelFunc
	// keepStarts records the start time of every point in starts, one entry per series of req.
	keepStarts bool
	starts     []pointStarts
	anyStart   bool
}

// Append adds one sample. Its start time st is kept only when the tenant ingests start times, and only
// for cumulative values (counters, histograms, a summary's sum and count): a zero at a gauge's or a
// quantile's start time would be a value it never had.
func (a *writeRequestAppender) Append(_ storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if a.tooLarge {
		return 0, errTranslatedTooLarge
	}
	n := len(a.req.Timeseries)
	if n == 0 || !labels.Equal(a.last, ls) {
		a.req.Timeseries = append(a.req.Timeseries, prompb.TimeSeries{Labels: prompb.FromLabels(ls, a.labelsBuffer(ls.Len()))})
		if h == nil && fh == nil {
			// Most series get one sample: give it room from a slab too; a second one moves it out.
			a.req.Timeseries[n].Samples = a.sampleBuffer()
		}
		a.last = ls
		a.size += int(ls.ByteSize()) + 4*ls.Len()
		n++
		if a.keepStarts {
			a.starts = append(a.starts, pointStarts{})
		}
	}
	ts := &a.req.Timeseries[n-1]
	if opts.MetricFamilyName == targetInfoName && len(ts.Samples) >= maxTargetInfoSamples {
		// The translator stops this resource's target_info at the error; its points are kept.
		return 0, fmt.Errorf("target_info of %s cut at %d samples: the resource's points span more than %s", ls.String(), maxTargetInfoSamples, time.Duration(maxTargetInfoSamples)*defaultLookbackDelta/2)
	}
	switch {
	case fh != nil:
		ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(t, fh))
		a.size += histogramSize(len(fh.PositiveBuckets)+len(fh.NegativeBuckets)+len(fh.CustomValues), len(fh.PositiveSpans)+len(fh.NegativeSpans))
	case h != nil:
		ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(t, h))
		a.size += histogramSize(len(h.PositiveBuckets)+len(h.NegativeBuckets)+len(h.CustomValues), len(h.PositiveSpans)+len(h.NegativeSpans))
	default:
		ts.Samples = append(ts.Samples, prompb.Sample{Value: v, Timestamp: t})
		a.size += 16
	}
	if a.keepStarts {
		switch opts.Metadata.Type {
		case model.MetricTypeCounter, model.MetricTypeHistogram:
		case model.MetricTypeSummary:
			if ls.Has(model.QuantileLabel) {
				st = 0 // a quantile is no count
			}
		default:
			st = 0
		}
		ps := &a.starts[n-1]
		if h != nil || fh != nil {
			ps.histograms = append(ps.histograms, st)
		} else {
			ps.samples = append(ps.samples, st)
		}
		a.anyStart = a.anyStart || (st != 0 && st < t)
		a.size += 8
	}
	for _, e := range opts.Exemplars {
		ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts})
		a.size += int(e.Labels.ByteSize()) + 16
	}
	a.countPoint(ls, h != nil || fh != nil, opts)
	a.addMetadata(opts)
	if a.size > a.maxSize {
		// The translator goes on to its next metric after an error; the cancelled context stops it.
		a.tooLarge = true
		a.cancel()
		return 0, errTranslatedTooLarge
	}
	return 0, nil
}

// labelsBuffer returns room for n labels, cut from a slab shared by many series: one allocation per
// slab instead of a growing slice per series.
func (a *writeRequestAppender) labelsBuffer(n int) []prompb.Label {
	if cap(a.labelSlab)-len(a.labelSlab) < n {
		a.labelSlab = make([]prompb.Label, 0, max(n, 4096))
	}
	start := len(a.labelSlab)
	a.labelSlab = a.labelSlab[:start+n]
	return a.labelSlab[start : start : start+n]
}

// sampleBuffer returns room for one sample, cut from a slab.
func (a *writeRequestAppender) sampleBuffer() []prompb.Sample {
	if len(a.sampleSlab) == cap(a.sampleSlab) {
		a.sampleSlab = make([]prompb.Sample, 0, 1024)
	}
	start := len(a.sampleSlab)
	a.sampleSlab = a.sampleSlab[:start+1]
	return a.sampleSlab[start : start : start+1]
}

func histogramSize(buckets, spans int) int { return 48 + 8*buckets + 8*spans }

// countPoint counts the OTLP data points translated: a classic histogram or summary point becomes
// several series, of which its _count series is the one that every such point has.
func (a *writeRequestAppender) countPoint(ls labels.Labels, native bool, opts storage.AOptions) {
	if opts.MetricFamilyName == targetInfoName {
		return
	}
	if !native && (opts.Metadata.Type == model.MetricTypeHistogram || opts.Metadata.Type == model.MetricTypeSummary) {
		name := ls.Get(model.MetricNameLabel)
		if len(name) != len(opts.MetricFamilyName)+len("_count") || !strings.HasSuffix(name, "_count") {
			return
		}
	}
	a.points++
}

// addMetadata records the type, unit and help of a metric family the first time it appears. Help
// texts are cut to the tenant's metadata length limit: an OTLP description is free text, and one too
// long should not cost the family its metadata.
func (a *writeRequestAppender) addMetadata(opts storage.AOptions) {
	if opts.MetricFamilyName == "" || opts.Metadata.IsEmpty() {
		return
	}
	if _, ok := a.families[opts.MetricFamilyName]; ok {
		return
	}
	// The translator reuses the name's bytes after Append returns.
	name := strings.Clone(opts.MetricFamilyName)
	a.families[name] = struct{}{}
	a.req.Metadata = append(a.req.Metadata, prompb.MetricMetadata{
		Type:             prompb.FromMetadataType(opts.Metadata.Type),
		MetricFamilyName: name,
		Help:             truncateUTF8(opts.Metadata.Help, a.maxMetadataLength),
		Unit:             opts.Metadata.Unit,
	})
	a.size += len(name) + len(opts.Metadata.Help) + len(opts.Metadata.Unit)
}

// Commit and Rollback do nothing: the request is pushed once the translation is complete.
func (a *writeRequestAppender) Commit() error   { return nil }
func (a *writeRequestAppender) Rollback() error { return nil }

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// deltaMetrics returns the names of up to max metrics of md with delta temporality, and how many there
// are in all.
func deltaMetrics(md pmetric.Metrics, max int) ([]string, int) {
	var names []string
	count := 0
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				temporality := pmetric.AggregationTemporalityUnspecified
				switch m.Type() {
				case pmetric.MetricTypeSum:
					temporality = m.Sum().AggregationTemporality()
				case pmetric.MetricTypeHistogram:
					temporality = m.Histogram().AggregationTemporality()
				case pmetric.MetricTypeExponentialHistogram:
					temporality = m.ExponentialHistogram().AggregationTemporality()
				}
				if temporality != pmetric.AggregationTemporalityDelta {
					continue
				}
				count++
				if len(names) < max {
					names = append(names, fmt.Sprintf("%q", m.Name()))
				}
			}
		}
	}
	return names, count
}
