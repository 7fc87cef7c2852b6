package validation

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"
)

const metricNameLabel = "__name__"

// Character classes of classic Prometheus names, as bit flags in a byte table so the checks below are a
// lookup per byte. Strata uses the classic character sets on purpose, whatever validation scheme the
// Prometheus libraries are globally configured with: series written now must stay queryable by every
// PromQL client.
const (
	nameStart   = 1 << iota // [a-zA-Z_]
	nameRest                // [a-zA-Z0-9_]
	metricExtra             // ':' is allowed anywhere in a metric name, never in a label name
)

var nameChars = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = nameStart | nameRest
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = nameStart | nameRest
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = nameRest
	}
	t['_'] = nameStart | nameRest
	t[':'] = metricExtra
	return t
}()

// isLegacyMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func isLegacyMetricName(s string) bool {
	if s == "" || nameChars[s[0]]&(nameStart|metricExtra) == 0 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if nameChars[s[i]]&(nameRest|metricExtra) == 0 {
			return false
		}
	}
	return true
}

// isLegacyLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func isLegacyLabelName(s string) bool {
	if s == "" || nameChars[s[0]]&nameStart == 0 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if nameChars[s[i]]&nameRest == 0 {
			return false
		}
	}
	return true
}

// ValidateLabels checks the label set of one series as decoded from a remote-write request and returns an
// *Error for the first rule it breaks, checked in this order: number of labels, presence and syntax of the
// metric name, then label by label the name's syntax and length, the value's presence, length and UTF-8
// encoding, and that names are strictly increasing (sorted, no duplicates). It does not allocate when the
// series is valid, as it runs for every series of every push.
func ValidateLabels(l *Limits, ls []prompb.Label) error {
	if len(ls) > l.MaxLabelNamesPerSeries {
		return newSeriesError(ReasonMaxLabelNamesPerSeries,
			fmt.Sprintf("series has %d labels, limit is %d", len(ls), l.MaxLabelNamesPerSeries),
			FlagOf("max_label_names_per_series"), ls)
	}

	// Look at every label: in byte order "__name__" sorts after upper-case names, so it need not be first.
	metricName := ""
	for i := range ls {
		if ls[i].Name == metricNameLabel {
			metricName = ls[i].Value
			break
		}
	}
	if metricName == "" {
		return newSeriesError(ReasonMissingMetricName,
			"series has no metric name (a non-empty __name__ label)", "", ls)
	}
	if !isLegacyMetricName(metricName) {
		return newSeriesError(ReasonInvalidMetricName,
			fmt.Sprintf("metric name %s is invalid, it must match [a-zA-Z_:][a-zA-Z0-9_:]*", quoted(metricName)), "", ls)
	}

	for i := range ls {
		name, value := ls[i].Name, ls[i].Value
		switch {
		case !isLegacyLabelName(name):
			return newSeriesError(ReasonInvalidLabelName,
				fmt.Sprintf("label name %s is invalid, it must match [a-zA-Z_][a-zA-Z0-9_]*", quoted(name)), "", ls)
		case len(name) > l.MaxLabelNameLength:
			return newSeriesError(ReasonLabelNameTooLong,
				fmt.Sprintf("label name %s is %d bytes long, limit is %d", quoted(name), len(name), l.MaxLabelNameLength),
				FlagOf("max_label_name_length"), ls)
		case value == "":
			return newSeriesError(ReasonLabelValueEmpty,
				fmt.Sprintf("label %s has an empty value, leave the label out instead", quoted(name)), "", ls)
		case len(value) > l.MaxLabelValueLength:
			return newSeriesError(ReasonLabelValueTooLong,
				fmt.Sprintf("value of label %s is %d bytes long, limit is %d", quoted(name), len(value), l.MaxLabelValueLength),
				FlagOf("max_label_value_length"), ls)
		case !utf8.ValidString(value):
			return newSeriesError(ReasonInvalidLabelValue,
				fmt.Sprintf("value of label %s is not valid UTF-8", quoted(name)), "", ls)
		}
		if i == 0 {
			continue
		}
		// Remote write requires sorted labels; checking beats re-sorting on the hot path, and it also
		// finds duplicates, which sit next to each other once sorted.
		if prev := ls[i-1].Name; name == prev {
			return newSeriesError(ReasonDuplicateLabelNames,
				fmt.Sprintf("label name %s appears more than once", quoted(name)), "", ls)
		} else if name < prev {
			return newSeriesError(ReasonLabelsNotSorted,
				fmt.Sprintf("labels are not sorted: %s comes after %s, send label names in increasing byte order",
					quoted(name), quoted(prev)), "", ls)
		}
	}
	return nil
}

// LatestSampleTimestamp is the newest sample timestamp, in milliseconds, that ValidateSampleTimestamp
// accepts at now: the tenant's creation_grace_period ahead of the clock.
func LatestSampleTimestamp(l *Limits, now time.Time) int64 {
	return now.Add(time.Duration(l.CreationGracePeriod)).UnixMilli()
}

// ValidateSampleTimestamp rejects a sample of series ls whose timestamp (in milliseconds since the epoch)
// is later than now plus the creation grace period.
func ValidateSampleTimestamp(l *Limits, now time.Time, tsMillis int64, ls []prompb.Label) error {
	if tsMillis <= LatestSampleTimestamp(l, now) {
		return nil
	}
	ahead := "more than 290 years"
	if aheadMillis := tsMillis - now.UnixMilli(); aheadMillis <= math.MaxInt64/int64(time.Millisecond) {
		ahead = (time.Duration(aheadMillis) * time.Millisecond).String()
	}
	return newSeriesError(ReasonTooFarInFuture,
		fmt.Sprintf("sample timestamp %s (%d ms) is %s ahead of this server's clock, limit is %s",
			time.UnixMilli(tsMillis).UTC().Format(time.RFC3339Nano), tsMillis, ahead, l.CreationGracePeriod),
		FlagOf("creation_grace_period"), ls)
}
