package validation_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

func TestError_Message(t *testing.T) {
	tests := []struct {
		err  validation.Error
		want string
	}{
		{validation.Error{Reason: "r", Message: "series has 31 labels, limit is 30",
			Flag: "-validation.max-label-names-per-series", Series: `{__name__="up"}`},
			`series has 31 labels, limit is 30 (-validation.max-label-names-per-series): {__name__="up"} (err-strata-r)`},
		{validation.Error{Reason: "r", Message: "label name is invalid", Series: `{a="b"}`}, `label name is invalid: {a="b"} (err-strata-r)`},
		{validation.Error{Reason: "r", Message: "help too long", Flag: "-f"}, "help too long (-f) (err-strata-r)"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.err.Error())
	}
}

func TestReasonOf(t *testing.T) {
	err := validation.ValidateLabels(defaultLimits(t), series("job", "a"))
	wrapped := fmt.Errorf("push to tenant team-a: %w", err)
	reason, ok := validation.ReasonOf(wrapped)
	require.True(t, ok)
	require.Equal(t, validation.ReasonMissingMetricName, reason)

	_, ok = validation.ReasonOf(errors.New("connection refused"))
	require.False(t, ok)
	_, ok = validation.ReasonOf(nil)
	require.False(t, ok)
}

// TestError_SeriesIsShortened checks that a huge offending series yields a bounded, valid UTF-8 message.
func TestError_SeriesIsShortened(t *testing.T) {
	ls := series("__name__", "up")
	for i := range 29 {
		ls = append(ls, prompb.Label{Name: fmt.Sprintf("l%02d", i), Value: strings.Repeat("é", 1000)})
	}
	limits := defaultLimits(t)
	limits.MaxLabelValueLength = 100

	err := validation.ValidateLabels(limits, ls)
	requireReason(t, err, validation.ReasonLabelValueTooLong)
	var verr *validation.Error
	require.ErrorAs(t, err, &verr)
	require.LessOrEqual(t, len(verr.Series), 600)
	require.True(t, strings.HasPrefix(verr.Series, `{__name__="up", l00="éé`), verr.Series)
	require.True(t, strings.HasSuffix(verr.Series, "…"), verr.Series)
	require.True(t, utf8.ValidString(verr.Series))
	// The label name in the message is shown in full; a long one would be shortened like the series.
	require.Contains(t, verr.Message, `value of label "l00" is 2000 bytes long, limit is 100`)
}

func TestError_SeriesKeepsShortSeriesWhole(t *testing.T) {
	err := validation.ValidateLabels(defaultLimits(t), series("__name__", "up", "b", "1", "a", "2"))
	var verr *validation.Error
	require.ErrorAs(t, err, &verr)
	require.Equal(t, `{__name__="up", b="1", a="2"}`, verr.Series)
}

func TestError_LongNameInMessageIsShortened(t *testing.T) {
	name := strings.Repeat("n", 5000)
	err := validation.ValidateLabels(defaultLimits(t), series("__name__", "up", name, "x"))
	requireReason(t, err, validation.ReasonLabelNameTooLong)
	var verr *validation.Error
	require.ErrorAs(t, err, &verr)
	require.Equal(t, `label name "`+strings.Repeat("n", 64)+`…" is 5000 bytes long, limit is 1024`, verr.Message)
	require.Less(t, len(err.Error()), 1000)
}
