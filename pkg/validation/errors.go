package validation

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"
)

// Reasons for discarding input. Each is the reason label of strata_discarded_samples_total (or
// strata_discarded_metadata_total), so the values are stable snake_case strings.
const (
	// ReasonMaxLabelNamesPerSeries: the series has more labels than -validation.max-label-names-per-series.
	ReasonMaxLabelNamesPerSeries = "max_label_names_per_series"
	// ReasonMissingMetricName: the series has no __name__ label, or an empty one.
	ReasonMissingMetricName = "missing_metric_name"
	// ReasonInvalidMetricName: the metric name is not a classic Prometheus metric name.
	ReasonInvalidMetricName = "invalid_metric_name"
	// ReasonInvalidLabelName: a label name is not a classic Prometheus label name.
	ReasonInvalidLabelName = "invalid_label_name"
	// ReasonLabelNameTooLong: a label name is longer than -validation.max-length-label-name.
	ReasonLabelNameTooLong = "label_name_too_long"
	// ReasonLabelValueEmpty: a label has an empty value, which Prometheus treats as an absent label.
	ReasonLabelValueEmpty = "label_value_empty"
	// ReasonLabelValueTooLong: a label value is longer than -validation.max-length-label-value.
	ReasonLabelValueTooLong = "label_value_too_long"
	// ReasonInvalidLabelValue: a label value is not valid UTF-8.
	ReasonInvalidLabelValue = "invalid_label_value"
	// ReasonLabelsNotSorted: label names are not in increasing byte order.
	ReasonLabelsNotSorted = "labels_not_sorted"
	// ReasonDuplicateLabelNames: a label name appears twice.
	ReasonDuplicateLabelNames = "duplicate_label_names"
	// ReasonTooFarInFuture: a sample is later than now plus -validation.create-grace-period.
	ReasonTooFarInFuture = "too_far_in_future"
	// ReasonInvalidSeries: a remote write 2.0 series refers to a symbol its request does not have, has an
	// odd number of label references, or holds no sample.
	ReasonInvalidSeries = "invalid_series"

	// ReasonMetadataMissingMetricName: metric metadata without a metric family name.
	ReasonMetadataMissingMetricName = "metadata_missing_metric_name"
	// ReasonMetricMetadataTooLong: a metadata field is longer than -validation.max-metadata-length.
	ReasonMetricMetadataTooLong = "metric_metadata_too_long"

	// Reasons the ingester reports when its TSDB head refuses a sample.

	// ReasonSampleOutOfOrder: the sample is older than the series' latest sample.
	ReasonSampleOutOfOrder = "sample_out_of_order"
	// ReasonSampleTooOld: the sample is older than the out-of-order window allows.
	ReasonSampleTooOld = "sample_too_old"
	// ReasonSampleDuplicateTimestamp: the series already has a different value at this timestamp.
	ReasonSampleDuplicateTimestamp = "sample_duplicate_timestamp"
	// ReasonSampleOutOfBounds: the sample is outside the time range the head can still accept.
	ReasonSampleOutOfBounds = "sample_out_of_bounds"
	// ReasonInvalidNativeHistogram: a native histogram is malformed (bad schema, spans or counts).
	ReasonInvalidNativeHistogram = "invalid_native_histogram"
	// ReasonIngestionRate: the request would take the tenant over its ingestion rate.
	ReasonIngestionRate = "ingestion_rate"
	// ReasonHAMaxClusters: the series come from a new HA cluster beyond the tenant's ha_max_clusters.
	ReasonHAMaxClusters = "ha_max_clusters"
	// ReasonMaxGlobalSeriesPerUser: a new series would take the tenant over its series limit.
	ReasonMaxGlobalSeriesPerUser = "max_global_series_per_user"
	// ReasonMaxGlobalMetadataPerUser: metadata of a new metric family would take the tenant over its limit.
	ReasonMaxGlobalMetadataPerUser = "max_global_metadata_per_user"
	// ReasonMaxGlobalMetadataPerMetric: a new metadata entry would take its family over the limit.
	ReasonMaxGlobalMetadataPerMetric = "max_global_metadata_per_metric"
	// ReasonMaxGlobalSeriesPerMetric: a new series would take its metric over the per-metric series limit.
	ReasonMaxGlobalSeriesPerMetric = "max_global_series_per_metric"
)

// Error is a rejection of remote-write input: the client sent something Strata does not accept, so it is a
// 4xx error and retrying the same data will not help.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Message says what was wrong, and with which limit when a limit applies.
	Message string
	// Flag is the flag of the limit that was exceeded (with its leading dash), or "" when the rule is
	// not a configurable limit.
	Flag string
	// Series is the offending series rendered like {__name__="up", job="a"}, shortened when long, or ""
	// when the input was not a series.
	Series string
}

// Error renders e as "<message> (<flag>): <series> (<error ID>)", leaving out the parts that are empty.
// The error ID comes last so that the series, which may be cut short, cannot hide it.
func (e *Error) Error() string {
	id := ErrorID(e.Reason)
	var b strings.Builder
	b.Grow(len(e.Message) + len(e.Flag) + len(e.Series) + len(id) + 8)
	b.WriteString(e.Message)
	if e.Flag != "" {
		b.WriteString(" (")
		b.WriteString(e.Flag)
		b.WriteByte(')')
	}
	if e.Series != "" {
		b.WriteString(": ")
		b.WriteString(e.Series)
	}
	b.WriteString(" (")
	b.WriteString(id)
	b.WriteByte(')')
	return b.String()
}

// ReasonOf returns the reason of a validation error anywhere in err's chain, and false when err is not one.
func ReasonOf(err error) (string, bool) {
	var verr *Error
	if errors.As(err, &verr) {
		return verr.Reason, true
	}
	return "", false
}

// newSeriesError builds an error for series ls. The series is rendered now, because ls usually points into
// a pooled request buffer that is reused once the request is done.
func newSeriesError(reason, message, flagName string, ls []prompb.Label) *Error {
	e := &Error{Reason: reason, Message: message, Series: formatSeries(ls)}
	if flagName != "" {
		e.Flag = "-" + flagName
	}
	return e
}

const (
	// maxRenderedSeries bounds the rendered series: enough to recognise it in a log line, while a
	// series of 30 labels of 2 KiB each cannot turn one error into 60 KiB.
	maxRenderedSeries = 512
	// maxRenderedName bounds a name or value quoted inside a message.
	maxRenderedName = 64
	ellipsis        = "…"
)

// formatSeries renders ls like Prometheus prints a label set, {__name__="up", job="a"}, in the order
// given, cut at maxRenderedSeries bytes.
func formatSeries(ls []prompb.Label) string {
	b := make([]byte, 0, 128)
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ", "...)
		}
		if isLegacyLabelName(l.Name) {
			b = append(b, l.Name...)
		} else {
			// Quoted so that control characters or a stray '=' in a bad name cannot garble the message.
			b = strconv.AppendQuote(b, shorten(l.Name, maxRenderedSeries))
		}
		b = append(b, '=')
		b = strconv.AppendQuote(b, shorten(l.Value, maxRenderedSeries))
		if len(b) > maxRenderedSeries {
			return string(truncateUTF8(b, maxRenderedSeries)) + ellipsis
		}
	}
	return string(append(b, '}'))
}

// quoted returns s as a Go-quoted string, shortened to maxRenderedName bytes, for use inside a message.
func quoted(s string) string {
	return strconv.Quote(shorten(s, maxRenderedName))
}

// shorten cuts s to at most n bytes, at a UTF-8 boundary, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncateUTF8(s, n) + ellipsis
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence: a cut at n splits one when
// s[n] is a continuation byte, so it steps back to where that rune starts.
func truncateUTF8[T ~string | ~[]byte](s T, n int) T {
	if len(s) <= n {
		return s
	}
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n] // not UTF-8 around the cut; any cut is as good as another
}
