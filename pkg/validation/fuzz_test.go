package validation_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// FuzzValidateLabels feeds label sets encoded as "name=value" lines: validation never panics, an accepted
// series is sorted with a metric name, and a rejection always has a reason and a valid UTF-8 rendering.
func FuzzValidateLabels(f *testing.F) {
	for _, seed := range []string{"__name__=up\njob=a", "job=a", "__name__=1x", "__name__=up\n=x", "a=\xff\n__name__=up",
		"__name__=up\nb=1\na=2", "__name__=up\na=1\na=2"} {
		f.Add(seed)
	}
	limits := defaultLimits(f)
	limits.MaxLabelNameLength, limits.MaxLabelValueLength = 16, 32
	f.Fuzz(func(t *testing.T, encoded string) {
		var ls []prompb.Label
		for line := range strings.SplitSeq(encoded, "\n") {
			name, value, _ := strings.Cut(line, "=")
			ls = append(ls, prompb.Label{Name: name, Value: value})
		}
		err := validation.ValidateLabels(limits, ls)
		if err != nil {
			reason, ok := validation.ReasonOf(err)
			require.True(t, ok)
			require.NotEmpty(t, reason)
			require.True(t, utf8.ValidString(err.Error()), "%q", err.Error())
			return
		}
		hasName := false
		for i, l := range ls {
			hasName = hasName || (l.Name == "__name__" && l.Value != "")
			require.True(t, utf8.ValidString(l.Value))
			require.LessOrEqual(t, len(l.Value), limits.MaxLabelValueLength)
			if i > 0 {
				require.Less(t, ls[i-1].Name, l.Name)
			}
		}
		require.True(t, hasName)
	})
}
