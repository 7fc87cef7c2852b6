package validation_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// series builds a label set from name, value pairs, in the order given.
func series(nameValues ...string) []prompb.Label {
	ls := make([]prompb.Label, 0, len(nameValues)/2)
	for i := 0; i+1 < len(nameValues); i += 2 {
		ls = append(ls, prompb.Label{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return ls
}

// seriesWithLabels returns up{l00="v", l01="v", ...} with n labels in total, sorted.
func seriesWithLabels(n int) []prompb.Label {
	ls := series("__name__", "up")
	for i := 1; i < n; i++ {
		ls = append(ls, prompb.Label{Name: fmt.Sprintf("l%02d", i), Value: "v"})
	}
	return ls
}

func TestValidateLabels(t *testing.T) {
	const (
		flagLabels      = "(-validation.max-label-names-per-series)"
		flagNameLength  = "(-validation.max-length-label-name)"
		flagValueLength = "(-validation.max-length-label-value)"
	)
	tests := []struct {
		name       string
		ls         []prompb.Label
		wantReason string // "" when the series is valid
		wantMsg    string // substring of the error message
	}{
		{name: "valid", ls: series("__name__", "up", "instance", "host:9100", "job", "node")},
		{name: "metric name only", ls: series("__name__", "up")},
		{name: "recording rule name with colons", ls: series("__name__", "job:http_requests:rate5m", "job", "api")},
		{name: "metric name starting with colon", ls: series("__name__", ":x")},
		{name: "upper-case label sorts before __name__", ls: series("Zone", "eu", "__name__", "up", "a", "b")},
		{name: "underscore label name", ls: series("_", "x", "__name__", "up")},
		{name: "unicode value", ls: series("__name__", "up", "city", "Zürich 🏔")},
		{name: "value with spaces and quotes", ls: series("__name__", "up", "q", `say "hi"`)},

		{name: "too many labels", ls: seriesWithLabels(31), wantReason: validation.ReasonMaxLabelNamesPerSeries,
			wantMsg: "series has 31 labels, limit is 30 " + flagLabels + `: {__name__="up", l01="v", l02="v"`},
		{name: "too many labels is checked first", ls: append(seriesWithLabels(31)[1:], prompb.Label{Name: "a"}),
			wantReason: validation.ReasonMaxLabelNamesPerSeries, wantMsg: flagLabels},

		{name: "no labels", ls: nil, wantReason: validation.ReasonMissingMetricName,
			wantMsg: "series has no metric name (a non-empty __name__ label): {}"},
		{name: "no metric name", ls: series("job", "a"), wantReason: validation.ReasonMissingMetricName,
			wantMsg: `series has no metric name (a non-empty __name__ label): {job="a"}`},
		{name: "empty metric name", ls: series("__name__", "", "job", "a"), wantReason: validation.ReasonMissingMetricName},
		{name: "missing name is checked before label rules", ls: series("b", "1", "a", ""),
			wantReason: validation.ReasonMissingMetricName},

		{name: "metric name starting with digit", ls: series("__name__", "1up"), wantReason: validation.ReasonInvalidMetricName,
			wantMsg: `metric name "1up" is invalid, it must match [a-zA-Z_:][a-zA-Z0-9_:]*: {__name__="1up"}`},
		{name: "metric name with hyphen", ls: series("__name__", "up-time"), wantReason: validation.ReasonInvalidMetricName},
		{name: "metric name with dot (UTF-8 names are not accepted)", ls: series("__name__", "http.requests"),
			wantReason: validation.ReasonInvalidMetricName},
		{name: "metric name with space", ls: series("__name__", "up time"), wantReason: validation.ReasonInvalidMetricName},
		{name: "unicode metric name", ls: series("__name__", "ümlaut"), wantReason: validation.ReasonInvalidMetricName},
		{name: "metric name checked before label names", ls: series("__name__", "1up", "a-b", "x"),
			wantReason: validation.ReasonInvalidMetricName},

		{name: "label name starting with digit", ls: series("__name__", "up", "1a", "x"),
			wantReason: validation.ReasonInvalidLabelName, wantMsg: `label name "1a" is invalid, it must match [a-zA-Z_][a-zA-Z0-9_]*`},
		{name: "label name with colon", ls: series("__name__", "up", "a:b", "x"), wantReason: validation.ReasonInvalidLabelName},
		{name: "label name with hyphen", ls: series("__name__", "up", "a-b", "x"), wantReason: validation.ReasonInvalidLabelName},
		{name: "empty label name", ls: series("", "x", "__name__", "up"), wantReason: validation.ReasonInvalidLabelName,
			wantMsg: `label name "" is invalid`},
		{name: "unicode label name", ls: series("__name__", "up", "ü", "x"), wantReason: validation.ReasonInvalidLabelName},
		{name: "control character in label name is quoted", ls: series("__name__", "up", "a\nb", "x"),
			wantReason: validation.ReasonInvalidLabelName, wantMsg: `{__name__="up", "a\nb"="x"}`},

		{name: "label name too long", ls: series("__name__", "up", strings.Repeat("a", 1025), "x"),
			wantReason: validation.ReasonLabelNameTooLong, wantMsg: "is 1025 bytes long, limit is 1024 " + flagNameLength},

		{name: "empty label value", ls: series("__name__", "up", "job", ""), wantReason: validation.ReasonLabelValueEmpty,
			wantMsg: `label "job" has an empty value, leave the label out instead: {__name__="up", job=""}`},

		{name: "label value too long", ls: series("__name__", "up", "job", strings.Repeat("v", 2049)),
			wantReason: validation.ReasonLabelValueTooLong,
			wantMsg:    `value of label "job" is 2049 bytes long, limit is 2048 ` + flagValueLength},
		{name: "metric name too long", ls: series("__name__", strings.Repeat("m", 2049)),
			wantReason: validation.ReasonLabelValueTooLong,
			wantMsg:    `value of label "__name__" is 2049 bytes long, limit is 2048 ` + flagValueLength},

		{name: "invalid UTF-8 value", ls: series("__name__", "up", "job", "a\xffb"), wantReason: validation.ReasonInvalidLabelValue,
			wantMsg: `value of label "job" is not valid UTF-8: {__name__="up", job="a\xffb"}`},

		{name: "not sorted", ls: series("__name__", "up", "job", "a", "instance", "b"), wantReason: validation.ReasonLabelsNotSorted,
			wantMsg: `labels are not sorted: "instance" comes after "job", send label names in increasing byte order`},
		{name: "__name__ after lower-case label", ls: series("a", "1", "__name__", "up"), wantReason: validation.ReasonLabelsNotSorted},
		{name: "duplicate label", ls: series("__name__", "up", "job", "a", "job", "b"), wantReason: validation.ReasonDuplicateLabelNames,
			wantMsg: `label name "job" appears more than once: {__name__="up", job="a", job="b"}`},
		{name: "duplicate metric name", ls: series("__name__", "up", "__name__", "down"), wantReason: validation.ReasonDuplicateLabelNames},
		{name: "per-label rules come before order of later labels", ls: series("__name__", "up", "b", "x", "a", ""),
			wantReason: validation.ReasonLabelValueEmpty},
	}
	limits := defaultLimits(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validation.ValidateLabels(limits, tc.ls)
			if tc.wantReason == "" {
				require.NoError(t, err)
				return
			}
			requireReason(t, err, tc.wantReason)
			require.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

// requireReason checks err is a *validation.Error with the given reason, and that the message names a
// flag exactly when the error carries one.
func requireReason(t *testing.T, err error, reason string) {
	t.Helper()
	require.Error(t, err)
	got, ok := validation.ReasonOf(err)
	require.True(t, ok, "not a validation error: %v", err)
	require.Equal(t, reason, got, err.Error())
	var verr *validation.Error
	require.ErrorAs(t, err, &verr)
	if verr.Flag != "" {
		require.Contains(t, err.Error(), "("+verr.Flag+")")
	}
}

// TestValidateLabels_AtLimits checks that a series exactly at every limit is accepted, and that lowering
// the limits by one rejects it with the limit's flag in the message.
func TestValidateLabels_AtLimits(t *testing.T) {
	limits := &validation.Limits{MaxLabelNamesPerSeries: 5, MaxLabelNameLength: 12, MaxLabelValueLength: 20}
	ls := series(
		"__name__", strings.Repeat("m", 20),
		"a", strings.Repeat("v", 20),
		strings.Repeat("b", 12), "x",
		"c", "ü"+strings.Repeat("v", 18), // 20 bytes, 19 characters: limits count bytes
		"d", "y",
	)
	require.NoError(t, validation.ValidateLabels(limits, ls))

	for _, tc := range []struct {
		modify     func(*validation.Limits)
		wantReason string
		wantFlag   string
	}{
		{func(l *validation.Limits) { l.MaxLabelNamesPerSeries-- }, validation.ReasonMaxLabelNamesPerSeries,
			"-validation.max-label-names-per-series"},
		{func(l *validation.Limits) { l.MaxLabelNameLength-- }, validation.ReasonLabelNameTooLong,
			"-validation.max-length-label-name"},
		{func(l *validation.Limits) { l.MaxLabelValueLength-- }, validation.ReasonLabelValueTooLong,
			"-validation.max-length-label-value"},
	} {
		t.Run(tc.wantReason, func(t *testing.T) {
			lower := *limits
			tc.modify(&lower)
			err := validation.ValidateLabels(&lower, ls)
			requireReason(t, err, tc.wantReason)
			require.Contains(t, err.Error(), "("+tc.wantFlag+")")
		})
	}
}

func TestValidateSampleTimestamp(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ls := series("__name__", "up", "job", "a")
	limits := defaultLimits(t)
	tests := []struct {
		name    string
		ts      int64
		wantMsg string // "" when the sample is accepted
	}{
		{name: "now", ts: now.UnixMilli()},
		{name: "old", ts: now.Add(-365 * 24 * time.Hour).UnixMilli()},
		{name: "zero", ts: 0},
		{name: "negative", ts: math.MinInt64},
		{name: "exactly at the grace period", ts: now.Add(10 * time.Minute).UnixMilli()},
		{name: "one millisecond past the grace period", ts: now.Add(10*time.Minute).UnixMilli() + 1,
			wantMsg: "sample timestamp 2026-11-01T10:10:00.001Z (1793527800001 ms) is 10m0.001s ahead of this server's clock, " +
				`limit is 10m (-validation.create-grace-period): {__name__="up", job="a"}`},
		{name: "an hour ahead", ts: now.Add(time.Hour).UnixMilli(), wantMsg: "is 1h0m0s ahead"},
		{name: "far future does not overflow", ts: math.MaxInt64, wantMsg: "is more than 290 years ahead"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validation.ValidateSampleTimestamp(limits, now, tc.ts, ls)
			if tc.wantMsg == "" {
				require.NoError(t, err)
				return
			}
			requireReason(t, err, validation.ReasonTooFarInFuture)
			require.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

// BenchmarkValidateLabels measures the success path on a typical 10-label series; it must not allocate.
func BenchmarkValidateLabels(b *testing.B) {
	limits := defaultLimits(b)
	ls := series(
		"__name__", "http_request_duration_seconds_bucket",
		"cluster", "prod-eu-west-1",
		"container", "api",
		"instance", "10.42.3.17:8080",
		"job", "kubernetes-pods",
		"le", "0.25",
		"method", "GET",
		"namespace", "checkout",
		"pod", "api-7c9f8d6b5-x2k4p",
		"status_code", "200",
	)
	require.NoError(b, validation.ValidateLabels(limits, ls))
	b.ReportAllocs()
	for b.Loop() {
		if err := validation.ValidateLabels(limits, ls); err != nil {
			b.Fatal(err)
		}
	}
}

func TestValidateLabels_DoesNotAllocate(t *testing.T) {
	limits := defaultLimits(t)
	ls := seriesWithLabels(10)
	allocs := testing.AllocsPerRun(100, func() {
		if err := validation.ValidateLabels(limits, ls); err != nil {
			t.Fatal(err)
		}
		if err := validation.ValidateSampleTimestamp(limits, time.Now(), 0, ls); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}
