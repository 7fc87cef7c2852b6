package seriespb

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
)

// FromLabelMatchers converts PromQL matchers to their wire form.
func FromLabelMatchers(matchers []*labels.Matcher) []*LabelMatcher {
	out := make([]*LabelMatcher, 0, len(matchers))
	for _, m := range matchers {
		var t MatchType
		switch m.Type {
		case labels.MatchEqual:
			t = MatchType_EQUAL
		case labels.MatchNotEqual:
			t = MatchType_NOT_EQUAL
		case labels.MatchRegexp:
			t = MatchType_REGEX_MATCH
		case labels.MatchNotRegexp:
			t = MatchType_REGEX_NO_MATCH
		}
		out = append(out, &LabelMatcher{Type: t, Name: m.Name, Value: m.Value})
	}
	return out
}

// ToLabelMatchers converts wire matchers back to PromQL matchers; a bad regular expression is an error.
func ToLabelMatchers(matchers []*LabelMatcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(matchers))
	for _, m := range matchers {
		var t labels.MatchType
		switch m.Type {
		case MatchType_EQUAL:
			t = labels.MatchEqual
		case MatchType_NOT_EQUAL:
			t = labels.MatchNotEqual
		case MatchType_REGEX_MATCH:
			t = labels.MatchRegexp
		case MatchType_REGEX_NO_MATCH:
			t = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("unknown matcher type %d", m.Type)
		}
		lm, err := labels.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			return nil, fmt.Errorf("matcher %s: %w", m.Name, err)
		}
		out = append(out, lm)
	}
	return out, nil
}

// FromLabels converts a label set to its wire form.
func FromLabels(ls labels.Labels) []*Label {
	out := make([]*Label, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		out = append(out, &Label{Name: l.Name, Value: l.Value})
	})
	return out
}

// ToLabels builds a label set from its wire form, reusing b's memory between calls.
func ToLabels(b *labels.ScratchBuilder, ls []*Label) labels.Labels {
	b.Reset()
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}
