package ruletest

import (
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// Alert is a firing alert, or one a test expects: its labels (alertname included) and its annotations,
// templates expanded.
type Alert struct {
	Labels      labels.Labels
	Annotations labels.Labels
}

// AlertChange is an expected alert and the firing alert with the same labels but other annotations.
type AlertChange struct {
	Expected, Got Alert
}

// AlertDiff is how the firing alerts of one alertname differ from those expected. Alerts that match
// are left out.
type AlertDiff struct {
	Expected, Got int           // how many alerts were expected, and how many fired
	Missing       []Alert       // expected, and not firing
	Unexpected    []Alert       // firing, and not expected
	Changed       []AlertChange // firing with the expected labels, but other annotations
}

// Sample is one element of a query result, or one a test expects. Histogram is the load notation of a
// native histogram ({{...}}), "" for a float sample.
type Sample struct {
	Labels    labels.Labels
	Value     float64
	Histogram string
}

// SampleChange is an expected sample and the sample with the same labels but another value.
type SampleChange struct {
	Expected, Got Sample
}

// SampleDiff is how the result of an expression differs from the samples expected. Samples that match
// are left out.
type SampleDiff struct {
	Expected, Got int            // how many samples were expected, and how many the query returned
	Missing       []Sample       // expected, and not returned
	Unexpected    []Sample       // returned, and not expected
	Changed       []SampleChange // returned with the expected labels, but another value
}

// diffAlerts compares alerts as multisets: promtool sorts both lists and compares them element by
// element, which fails exactly when some alert cannot be paired with an equal one.
func diffAlerts(exp, got []Alert) *AlertDiff {
	sortAlerts(exp)
	sortAlerts(got)
	missing, unexpected, changed := diffMultisets(exp, got,
		func(a, b Alert) bool {
			return labels.Equal(a.Labels, b.Labels) && labels.Equal(a.Annotations, b.Annotations)
		},
		func(a, b Alert) bool { return labels.Equal(a.Labels, b.Labels) })
	if len(missing)+len(unexpected)+len(changed) == 0 {
		return nil
	}
	d := &AlertDiff{Expected: len(exp), Got: len(got), Missing: missing, Unexpected: unexpected}
	for _, c := range changed {
		d.Changed = append(d.Changed, AlertChange{Expected: c[0], Got: c[1]})
	}
	return d
}

func sortAlerts(as []Alert) {
	slices.SortStableFunc(as, func(a, b Alert) int {
		if c := labels.Compare(a.Labels, b.Labels); c != 0 {
			return c
		}
		return labels.Compare(a.Annotations, b.Annotations)
	})
}

// diffSamples compares samples as multisets, values with ==, or within one ulp when fuzzy (the
// file's fuzzy_compare), as promtool does. So NaN never equals NaN, as in promtool.
func diffSamples(exp, got []Sample, fuzzy bool) *SampleDiff {
	sortSamples(exp)
	sortSamples(got)
	missing, unexpected, changed := diffMultisets(exp, got,
		func(a, b Sample) bool {
			return labels.Equal(a.Labels, b.Labels) && a.Histogram == b.Histogram && floatsEqual(a.Value, b.Value, fuzzy)
		},
		func(a, b Sample) bool { return labels.Equal(a.Labels, b.Labels) })
	if len(missing)+len(unexpected)+len(changed) == 0 {
		return nil
	}
	d := &SampleDiff{Expected: len(exp), Got: len(got), Missing: missing, Unexpected: unexpected}
	for _, c := range changed {
		d.Changed = append(d.Changed, SampleChange{Expected: c[0], Got: c[1]})
	}
	return d
}

func sortSamples(ss []Sample) {
	slices.SortStableFunc(ss, func(a, b Sample) int { return labels.Compare(a.Labels, b.Labels) })
}

func floatsEqual(x, y float64, fuzzy bool) bool {
	return x == y || fuzzy && (math.Nextafter(x, math.Inf(-1)) == y || math.Nextafter(x, math.Inf(1)) == y)
}

// diffMultisets pairs each expected element with an equal one got; the rest it pairs by sameKey (the
// labels), as changed, and what remains unpaired is missing or unexpected. Quadratic, which the sizes
// of unit tests allow.
func diffMultisets[T any](exp, got []T, equal, sameKey func(a, b T) bool) (missing, unexpected []T, changed [][2]T) {
	usedGot := make([]bool, len(got))
	var unmatched []T
	for _, e := range exp {
		i := pairIndex(e, got, usedGot, equal)
		if i < 0 {
			unmatched = append(unmatched, e)
			continue
		}
		usedGot[i] = true
	}
	for _, e := range unmatched {
		i := pairIndex(e, got, usedGot, sameKey)
		if i < 0 {
			missing = append(missing, e)
			continue
		}
		usedGot[i] = true
		changed = append(changed, [2]T{e, got[i]})
	}
	for i, g := range got {
		if !usedGot[i] {
			unexpected = append(unexpected, g)
		}
	}
	return missing, unexpected, changed
}

func pairIndex[T any](e T, got []T, used []bool, match func(a, b T) bool) int {
	for i, g := range got {
		if !used[i] && match(e, g) {
			return i
		}
	}
	return -1
}
