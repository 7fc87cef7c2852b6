package ruletest

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// WriteReport writes the outcome of a test file: "PASS  <file>", or "FAIL  <file>" followed by each
// failure under its test group, showing only the alerts and samples that differ.
func WriteReport(w io.Writer, res *FileResult) {
	if res.Passed() {
		_, _ = fmt.Fprintf(w, "PASS  %s (%d test groups)\n", res.File, len(res.TestGroups))
		writeWarnings(w, res.Warnings)
		return
	}
	if res.Err != nil {
		_, _ = fmt.Fprintf(w, "FAIL  %s: cannot test: %s\n", res.File, indent(res.Err.Error(), "  "))
		writeWarnings(w, res.Warnings)
		return
	}
	_, _ = fmt.Fprintf(w, "FAIL  %s\n", res.File)
	writeWarnings(w, res.Warnings)
	group := -1
	for _, f := range res.Failures {
		if f.Index != group {
			group = f.Index
			_, _ = fmt.Fprintf(w, "  %s:\n", f.testGroupName())
		}
		_, _ = fmt.Fprintf(w, "    %s\n", indent(f.String(), "    "))
	}
}

func writeWarnings(w io.Writer, warnings []string) {
	for _, warning := range warnings {
		_, _ = fmt.Fprintf(w, "  warning: %s\n", warning)
	}
}

func (f *Failure) testGroupName() string {
	return "test group " + TestGroupRef{Index: f.Index, Name: f.TestGroup}.String()
}

// String is how reports name the test group: `"name" (tests[i])`, or `tests[i]` without a name.
func (r TestGroupRef) String() string {
	if r.Name == "" {
		return fmt.Sprintf("tests[%d]", r.Index)
	}
	return fmt.Sprintf("%q (tests[%d])", r.Name, r.Index)
}

// String describes the failure, without its test group, on one or more lines: a heading naming the
// test and eval time, then what differs.
func (f *Failure) String() string {
	var b strings.Builder
	evalTime := model.Duration(f.EvalTime)
	switch f.Kind {
	case KindSetup:
		fmt.Fprintf(&b, "error: %v", f.Err)
	case KindRuleEval:
		fmt.Fprintf(&b, "rule %q failed to evaluate at eval_time %s: %v", f.Name, evalTime, f.Err)
	case KindAlert:
		d := f.Alerts
		fmt.Fprintf(&b, "alertname %q, eval_time %s: expected %s, got %d firing", f.Name, evalTime, plural(d.Expected, "firing alert"), d.Got)
		writeAlertDiff(&b, d)
	case KindExpr:
		fmt.Fprintf(&b, "expr %q, eval_time %s: ", f.Name, evalTime)
		if f.Err != nil {
			fmt.Fprintf(&b, "error: %v", f.Err)
			break
		}
		d := f.Samples
		fmt.Fprintf(&b, "expected %s, got %d", plural(d.Expected, "sample"), d.Got)
		writeSampleDiff(&b, d)
	}
	return b.String()
}

func writeAlertDiff(b *strings.Builder, d *AlertDiff) {
	if len(d.Missing) > 0 {
		b.WriteString("\n  missing (expected, not firing):")
		for _, a := range d.Missing {
			writeAlert(b, a)
		}
	}
	if len(d.Unexpected) > 0 {
		b.WriteString("\n  unexpected (firing, not expected):")
		for _, a := range d.Unexpected {
			writeAlert(b, a)
		}
	}
	for _, c := range d.Changed {
		fmt.Fprintf(b, "\n  other annotations for %s:", c.Got.Labels)
		for _, line := range annotationDiff(c.Expected.Annotations, c.Got.Annotations) {
			b.WriteString("\n    " + line)
		}
	}
}

func writeAlert(b *strings.Builder, a Alert) {
	fmt.Fprintf(b, "\n    %s", a.Labels)
	if !a.Annotations.IsEmpty() {
		fmt.Fprintf(b, "\n      annotations %s", a.Annotations)
	}
}

// annotationDiff lists, by name, the annotations whose values differ.
func annotationDiff(exp, got labels.Labels) []string {
	var names []string
	exp.Range(func(l labels.Label) { names = append(names, l.Name) })
	got.Range(func(l labels.Label) { names = append(names, l.Name) })
	slices.Sort(names)
	var lines []string
	for _, name := range slices.Compact(names) {
		e, g := exp.Has(name), got.Has(name)
		ev, gv := exp.Get(name), got.Get(name)
		switch {
		case e && !g:
			lines = append(lines, fmt.Sprintf("%s: expected %q, got none", name, ev))
		case !e && g:
			lines = append(lines, fmt.Sprintf("%s: expected none, got %q", name, gv))
		case ev != gv:
			lines = append(lines, fmt.Sprintf("%s: expected %q, got %q", name, ev, gv))
		}
	}
	return lines
}

func writeSampleDiff(b *strings.Builder, d *SampleDiff) {
	for _, c := range d.Changed {
		fmt.Fprintf(b, "\n  other value for %s: expected %s, got %s", c.Got.Labels, sampleValue(c.Expected), sampleValue(c.Got))
	}
	for _, s := range d.Missing {
		fmt.Fprintf(b, "\n  missing: %s %s", s.Labels, sampleValue(s))
	}
	for _, s := range d.Unexpected {
		fmt.Fprintf(b, "\n  unexpected: %s %s", s.Labels, sampleValue(s))
	}
}

func sampleValue(s Sample) string {
	if s.Histogram != "" {
		if s.Value != 0 {
			// promtool compares the value of a histogram sample too (always 0 in a query result).
			return s.Histogram + " (value " + strconv.FormatFloat(s.Value, 'g', -1, 64) + ")"
		}
		return s.Histogram
	}
	return strconv.FormatFloat(s.Value, 'g', -1, 64)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// indent prefixes every line of s but the first.
func indent(s, prefix string) string {
	return strings.ReplaceAll(s, "\n", "\n"+prefix)
}
