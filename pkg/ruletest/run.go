package ruletest

import (
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// Exit statuses of Run, those of `promtool test rules`.
const (
	ExitPassed = 0 // every test of every file passed
	ExitFailed = 1 // a test failed, or a file could not be read, parsed or loaded
)

// Options change how test files are run.
type Options struct {
	// Run, when not empty, selects the test groups whose name matches at least one of these.
	Run []*regexp.Regexp
	// IgnoreUnknownFields lets rule files hold fields Prometheus does not know (the test files
	// themselves are always strict, as in promtool).
	IgnoreUnknownFields bool
	// Parser parses rule expressions and expected samples; nil is Prometheus' default parser.
	Parser parser.Parser
}

// Kind says what part of a test group failed.
type Kind int

const (
	// KindSetup is a test group that could not run: invalid input series, rule files that do not load,
	// an alert test without alertname.
	KindSetup Kind = iota
	// KindRuleEval is a rule that failed to evaluate; the test group stops there, as in promtool.
	KindRuleEval
	// KindAlert is an alert test whose firing alerts differ from those expected.
	KindAlert
	// KindExpr is an expression test whose result differs from the samples expected, or whose query
	// or expected samples are invalid.
	KindExpr
)

// Failure is one thing that went wrong in a test group.
type Failure struct {
	TestGroup string // the test group's name, "" when it has none
	Index     int    // the test group's position in the file's tests, from 0
	Kind      Kind
	// Name is the alertname (KindAlert), the expression (KindExpr) or the rule (KindRuleEval).
	Name string
	// EvalTime is the test's eval_time, or when the rule failed (KindRuleEval), from the test's start.
	EvalTime time.Duration
	Err      error       // what failed, for KindSetup, KindRuleEval, and KindExpr when the query failed
	Alerts   *AlertDiff  // KindAlert
	Samples  *SampleDiff // KindExpr when the query ran
}

// FileResult is the outcome of one test file.
type FileResult struct {
	File string
	// Err is why the file could not be tested at all (unreadable, invalid YAML, unknown fields).
	Err        error
	Warnings   []string
	TestGroups []TestGroupRef // the test groups that ran
	Failures   []*Failure
}

// TestGroupRef names a test group of a file.
type TestGroupRef struct {
	Index int    // its position in the file's tests, from 0
	Name  string // its name, "" when it has none
}

// Passed reports whether the file was tested and every test passed.
func (r *FileResult) Passed() bool { return r.Err == nil && len(r.Failures) == 0 }

// TestFile runs the tests of the file at path.
func TestFile(path string, opts Options) *FileResult {
	if opts.Parser == nil {
		opts.Parser = parser.NewParser(parser.Options{})
	}
	res := &FileResult{File: path}
	tf, warnings, err := readTestFile(path)
	res.Warnings = warnings
	if err != nil {
		res.Err = err
		return res
	}
	order := make(map[string]int, len(tf.GroupEvalOrder))
	for i, name := range tf.GroupEvalOrder {
		if _, dup := order[name]; dup {
			res.Err = fmt.Errorf("group_eval_order names rule group %q twice", name)
			return res
		}
		order[name] = i
	}
	for i, tg := range tf.Tests {
		if !selected(tg.Name, opts.Run) {
			continue
		}
		res.TestGroups = append(res.TestGroups, TestGroupRef{Index: i, Name: tg.Name})
		g := &groupRun{file: &tf, index: i, tg: tg, order: order, opts: opts}
		g.run()
		res.Failures = append(res.Failures, g.failures...)
	}
	return res
}

func selected(name string, run []*regexp.Regexp) bool {
	if len(run) == 0 {
		return true
	}
	for _, re := range run {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// Run tests each file, writes a report of each to w (see WriteReport) and a summary, and returns the
// results and the exit status: ExitPassed when every file passed, ExitFailed otherwise.
func Run(w io.Writer, opts Options, files ...string) ([]*FileResult, int) {
	results := make([]*FileResult, 0, len(files))
	failed := 0
	for _, f := range files {
		res := TestFile(f, opts)
		results = append(results, res)
		WriteReport(w, res)
		if !res.Passed() {
			failed++
		}
	}
	if failed > 0 {
		_, _ = fmt.Fprintf(w, "\n%d of %d test files failed\n", failed, len(files))
		return results, ExitFailed
	}
	_, _ = fmt.Fprintf(w, "\nall %d test files passed\n", len(files))
	return results, ExitPassed
}
