package seriespb

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestMatchersRoundTrip(t *testing.T) {
	in := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"),
		labels.MustNewMatcher(labels.MatchNotEqual, "job", "a"),
		labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-.*"),
		labels.MustNewMatcher(labels.MatchNotRegexp, "zone", "eu|us"),
	}
	out, err := ToLabelMatchers(FromLabelMatchers(in))
	require.NoError(t, err)
	require.Equal(t, len(in), len(out))
	for i := range in {
		require.Equal(t, in[i].String(), out[i].String())
	}
}

func TestToLabelMatchers_RejectsBadInput(t *testing.T) {
	_, err := ToLabelMatchers([]*LabelMatcher{{Type: MatchType(9), Name: "a"}})
	require.ErrorContains(t, err, "unknown matcher type 9")
	_, err = ToLabelMatchers([]*LabelMatcher{{Type: MatchType_REGEX_MATCH, Name: "a", Value: "("}})
	require.ErrorContains(t, err, "matcher a")
}

func TestLabelsRoundTrip(t *testing.T) {
	in := labels.FromStrings("__name__", "up", "job", "a")
	var b labels.ScratchBuilder
	require.Equal(t, in, ToLabels(&b, FromLabels(in)))
}
