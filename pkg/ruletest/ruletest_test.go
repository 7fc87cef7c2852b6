package ruletest

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeFiles writes files (name → content) into a new directory and returns its path.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return dir
}

// runFile tests dir/name and returns the result and the report Run writes.
func runFile(t *testing.T, dir, name string, opts Options) (*FileResult, string, int) {
	t.Helper()
	path := filepath.Join(dir, name)
	res := TestFile(path, opts)
	var out strings.Builder
	_, status := Run(&out, opts, path)
	return res, out.String(), status
}

const alertRules = `
groups:
  - name: availability
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 2m
        labels:
          severity: page
        annotations:
          summary: 'Instance {{ $labels.instance }} of {{ $labels.job }} is down'
          value: '{{ $value }}'
          dashboard: '{{ $externalURL }}/d/up?cluster={{ $externalLabels.cluster }}'
      - alert: AlwaysFiring
        expr: vector(1)
`

func TestFile_SeriesNotation(t *testing.T) {
	dir := writeFiles(t, map[string]string{"test.yml": `
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '1 _ 1 stale'
      - series: 'counter{job="a"}'
        values: '0+10x3'
      - series: 'gauge{job="a"}'
        values: '100-25x2'
      - series: 'flat{job="a"}'
        values: '7x2'
      - series: 'gaps{job="a"}'
        values: '1 _x3 5'
      - series: 'hist'
        values: '{{schema:0 sum:5 count:4 buckets:[1 2 1]}}+{{sum:1 count:1 buckets:[1]}}x2'
    promql_expr_test:
      - expr: up
        eval_time: 1m
        exp_samples: [{labels: 'up{job="a"}', value: 1}]
      - expr: up
        eval_time: 3m
        exp_samples: []
      - expr: counter
        eval_time: 3m
        exp_samples: [{labels: 'counter{job="a"}', value: 30}]
      - expr: rate(counter[3m])
        eval_time: 3m
        exp_samples: [{labels: '{job="a"}', value: 0.16666666666666666}]
      - expr: gauge
        eval_time: 2m
        exp_samples: [{labels: 'gauge{job="a"}', value: 50}]
      - expr: count_over_time(flat[5m])
        eval_time: 2m
        exp_samples: [{labels: '{job="a"}', value: 3}]
      - expr: count_over_time(gaps[10m])
        eval_time: 4m
        exp_samples: [{labels: '{job="a"}', value: 2}]
      - expr: hist
        eval_time: 0m
        exp_samples: [{labels: hist, histogram: '{{schema:0 sum:5 count:4 buckets:[1 2 1]}}'}]
      - expr: histogram_count(hist)
        eval_time: 2m
        exp_samples: [{labels: '{}', value: 6}]
      - expr: scalar(counter)
        eval_time: 1m
        exp_samples: [{value: 10}]
`})
	res, out, status := runFile(t, dir, "test.yml", Options{})
	require.Empty(t, res.Failures, out)
	require.NoError(t, res.Err)
	require.Equal(t, ExitPassed, status)
	require.Contains(t, out, "PASS  "+filepath.Join(dir, "test.yml")+" (1 test groups)")
}

func TestFile_AlertsWithTemplatesAndExternalLabels(t *testing.T) {
	dir := writeFiles(t, map[string]string{"rules.yml": alertRules, "test.yml": `
rule_files: [rules.yml]
tests:
  - name: instance down
    interval: 1m
    external_labels:
      cluster: eu-1
    external_url: https://strata.example.com
    input_series:
      - series: 'up{job="api", instance="a"}'
        values: '1 1 0 0 0 0'
      - series: 'up{job="api", instance="b"}'
        values: '1x5'
    alert_rule_test:
      - eval_time: 3m
        alertname: InstanceDown
        exp_alerts: []
      - eval_time: 4m
        alertname: InstanceDown
        exp_alerts:
          - exp_labels: {severity: page, job: api, instance: a}
            exp_annotations:
              summary: Instance a of api is down
              value: '0'
              dashboard: https://strata.example.com/d/up?cluster=eu-1
      - eval_time: 4m30s
        alertname: AlwaysFiring
        exp_alerts: [{}]
    promql_expr_test:
      - expr: ALERTS{alertname="InstanceDown"}
        eval_time: 3m
        exp_samples:
          - labels: 'ALERTS{alertname="InstanceDown", alertstate="pending", instance="a", job="api", severity="page"}'
            value: 1
`})
	res, out, status := runFile(t, dir, "test.yml", Options{})
	require.Empty(t, res.Failures, out)
	require.Equal(t, ExitPassed, status)
}

func TestFile_GroupEvalOrder(t *testing.T) {
	rules := `
groups:
  - name: second
    rules:
      - record: quadrupled
        expr: doubled * 2
  - name: first
    rules:
      - record: doubled
        expr: base * 2
`
	test := func(order string, atZero string) string {
		return `
rule_files: [rules.yml]
group_eval_order: ` + order + `
tests:
  - input_series:
      - series: base
        values: '1x5'
    promql_expr_test:
      - expr: quadrupled
        eval_time: 0m
        exp_samples: ` + atZero + `
      - expr: quadrupled
        eval_time: 1m
        exp_samples: [{labels: quadrupled, value: 4}]
`
	}
	dir := writeFiles(t, map[string]string{
		"rules.yml": rules,
		// "first" records doubled before "second" reads it, in the same evaluation.
		"in-order.yml": test("[first, second]", "[{labels: quadrupled, value: 4}]"),
		// "second" runs first and finds no doubled at 0m yet.
		"reversed.yml": test("[second, first]", "[]"),
		"repeated.yml": test("[first, second, first]", "[]"),
	})
	for _, name := range []string{"in-order.yml", "reversed.yml"} {
		res, out, status := runFile(t, dir, name, Options{})
		require.Empty(t, res.Failures, out)
		require.Equal(t, ExitPassed, status, name)
	}
	res, out, status := runFile(t, dir, "repeated.yml", Options{})
	require.ErrorContains(t, res.Err, `group_eval_order names rule group "first" twice`)
	require.Equal(t, ExitFailed, status)
	require.Contains(t, out, "cannot test")
}

func TestFile_FailingAlertShowsOnlyTheDifference(t *testing.T) {
	dir := writeFiles(t, map[string]string{"rules.yml": alertRules, "test.yml": `
rule_files: [rules.yml]
tests:
  - name: down
    input_series:
      - series: 'up{job="api", instance="a"}'
        values: '0x10'
      - series: 'up{job="api", instance="b"}'
        values: '0x10'
      - series: 'up{job="api", instance="c"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: InstanceDown
        exp_alerts:
          - exp_labels: {severity: page, job: api, instance: a}
            exp_annotations:
              summary: Instance a of api is down
              value: '0'
              dashboard: /d/up?cluster=
          - exp_labels: {severity: page, job: api, instance: b}
            exp_annotations:
              summary: Instance b is down
              value: '0'
              dashboard: /d/up?cluster=
          - exp_labels: {severity: page, job: api, instance: d}
`})
	res, out, status := runFile(t, dir, "test.yml", Options{})
	require.Equal(t, ExitFailed, status)
	require.NoError(t, res.Err)
	require.Len(t, res.Failures, 1)
	f := res.Failures[0]
	require.Equal(t, KindAlert, f.Kind)
	require.Equal(t, "down", f.TestGroup)
	require.Equal(t, "InstanceDown", f.Name)
	require.Equal(t, 5*time.Minute, f.EvalTime)
	require.Equal(t, 3, f.Alerts.Expected)
	require.Equal(t, 3, f.Alerts.Got)
	require.Len(t, f.Alerts.Missing, 1)    // instance d
	require.Len(t, f.Alerts.Unexpected, 1) // instance c
	require.Len(t, f.Alerts.Changed, 1)    // instance b's summary

	require.Contains(t, out, `test group "down" (tests[0]):`)
	require.Contains(t, out, `alertname "InstanceDown", eval_time 5m: expected 3 firing alerts, got 3 firing`)
	require.Contains(t, out, "missing (expected, not firing):\n        {alertname=\"InstanceDown\", instance=\"d\", job=\"api\", severity=\"page\"}\n")
	require.Contains(t, out, "unexpected (firing, not expected):\n        {alertname=\"InstanceDown\", instance=\"c\", job=\"api\", severity=\"page\"}\n"+
		`          annotations {dashboard="/d/up?cluster=", summary="Instance c of api is down", value="0"}`)
	require.Contains(t, out, `other annotations for {alertname="InstanceDown", instance="b", job="api", severity="page"}:`+"\n"+
		`        summary: expected "Instance b is down", got "Instance b of api is down"`)
	// Alert a matches, so it is not shown.
	require.NotContains(t, out, `instance="a"`)
}

func TestFile_FailingExprShowsOnlyTheDifference(t *testing.T) {
	dir := writeFiles(t, map[string]string{"test.yml": `
tests:
  - input_series:
      - series: 'requests{job="a"}'
        values: '1'
      - series: 'requests{job="b"}'
        values: '2'
      - series: 'requests{job="c"}'
        values: '3'
    promql_expr_test:
      - expr: requests
        eval_time: 0s
        exp_samples:
          - {labels: 'requests{job="a"}', value: 1}
          - {labels: 'requests{job="b"}', value: 20}
          - {labels: 'requests{job="d"}', value: 4}
      - expr: 'requests{'
        eval_time: 0s
      - expr: requests
        eval_time: 0s
        exp_samples: [{labels: 'requests{job=', value: 1}]
`})
	res, out, status := runFile(t, dir, "test.yml", Options{})
	require.Equal(t, ExitFailed, status)
	require.Len(t, res.Failures, 3)
	d := res.Failures[0].Samples
	require.Equal(t, KindExpr, res.Failures[0].Kind)
	require.Equal(t, "", res.Failures[0].TestGroup)
	require.Len(t, d.Changed, 1)
	require.Len(t, d.Missing, 1)
	require.Len(t, d.Unexpected, 1)
	require.Contains(t, out, "test group tests[0]:\n")
	require.Contains(t, out, `expr "requests", eval_time 0s: expected 3 samples, got 3`+"\n"+
		`      other value for {__name__="requests", job="b"}: expected 20, got 2`+"\n"+
		`      missing: {__name__="requests", job="d"} 4`+"\n"+
		`      unexpected: {__name__="requests", job="c"} 3`)
	require.NotContains(t, out, `job="a"`)

	require.Error(t, res.Failures[1].Err)
	require.Contains(t, out, `expr "requests{", eval_time 0s: error: 1:10: parse error`)
	require.ErrorContains(t, res.Failures[2].Err, `exp_samples[0]: labels "requests{job=":`)
}

func TestFile_RuleEvaluationErrorStopsTheTestGroup(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"rules.yml": `
groups:
  - name: joins
    rules:
      - record: joined
        expr: left * on (a) right
`,
		"test.yml": `
rule_files: [rules.yml]
tests:
  - name: many to many
    input_series:
      - {series: 'left{a="1"}', values: '1x5'}
      - {series: 'right{a="1", b="1"}', values: '1x5'}
      - {series: 'right{a="1", b="2"}', values: '1x5'}
    promql_expr_test:
      - expr: joined
        eval_time: 3m
        exp_samples: []
`})
	res, out, status := runFile(t, dir, "test.yml", Options{})
	require.Equal(t, ExitFailed, status)
	require.Len(t, res.Failures, 1)
	require.Equal(t, KindRuleEval, res.Failures[0].Kind)
	require.Equal(t, "joined", res.Failures[0].Name)
	require.Equal(t, time.Duration(0), res.Failures[0].EvalTime)
	require.Contains(t, out, `rule "joined" failed to evaluate at eval_time 0s: found duplicate series for the match group`)
}

func TestFile_InvalidInputs(t *testing.T) {
	for name, tc := range map[string]struct {
		files   map[string]string
		fileErr string // the file cannot be tested
		setup   string // a test group cannot run
	}{
		"test file is not YAML": {
			files:   map[string]string{"test.yml": "tests: [\n"},
			fileErr: "yaml: line",
		},
		"unknown field in the test file": {
			files:   map[string]string{"test.yml": "tests:\n  - input_serie: []\n"},
			fileErr: "field input_serie not found",
		},
		"test file missing": {
			files:   map[string]string{},
			fileErr: "no such file or directory",
		},
		"bad input series": {
			files: map[string]string{"test.yml": "tests:\n  - input_series:\n      - {series: ok, values: '1'}\n      - {series: 'up{', values: '1'}\n    promql_expr_test: [{expr: up, eval_time: 0s}]\n"},
			setup: `input_series[1] (series "up{", values "1"):`,
		},
		"bad rule file": {
			files: map[string]string{
				"rules.yml": "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n",
				"test.yml":  "rule_files: [rules.yml]\ntests:\n  - promql_expr_test: [{expr: x, eval_time: 0s}]\n",
			},
			setup: `loading rule_files: ` + "", // completed below with the path
		},
		"alert test without alertname": {
			files: map[string]string{"test.yml": "tests:\n  - alert_rule_test: [{eval_time: 1m}]\n"},
			setup: "an alert_rule_test at eval_time 1m has no alertname",
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			res, out, status := runFile(t, dir, "test.yml", Options{})
			require.Equal(t, ExitFailed, status, out)
			if tc.fileErr != "" {
				require.ErrorContains(t, res.Err, tc.fileErr)
				require.Contains(t, out, "FAIL  "+filepath.Join(dir, "test.yml")+": cannot test: ")
				return
			}
			require.NoError(t, res.Err)
			require.Len(t, res.Failures, 1)
			require.Equal(t, KindSetup, res.Failures[0].Kind)
			require.ErrorContains(t, res.Failures[0].Err, tc.setup)
			require.Contains(t, out, "error: "+tc.setup)
		})
	}
}

func TestFile_RuleFilesResolvedAndGlobbed(t *testing.T) {
	dir := writeFiles(t, map[string]string{})
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rules"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules", "a.yml"), []byte("groups: [{name: a, rules: [{record: a, expr: vector(1)}]}]\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules", "b.yml"), []byte("groups: [{name: b, rules: [{record: b, expr: vector(2)}]}]\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test.yml"), []byte(`
rule_files: ['rules/*.yml', 'missing/*.yml']
tests:
  - promql_expr_test:
      - {expr: a + on() b, eval_time: 0s, exp_samples: [{labels: '{}', value: 3}]}
`), 0o644))
	res, out, status := runFile(t, dir, "test.yml", Options{})
	require.Equal(t, ExitPassed, status, out)
	require.Equal(t, []string{`rule_files: no file matches "` + filepath.Join(dir, "missing/*.yml") + `"`}, res.Warnings)
	require.Contains(t, out, "  warning: rule_files: no file matches")
}

func TestFile_FuzzyCompare(t *testing.T) {
	test := func(fuzzy bool) string {
		f := "false"
		if fuzzy {
			f = "true"
		}
		return "fuzzy_compare: " + f + `
tests:
  - input_series: [{series: x, values: '0.1'}]
    promql_expr_test:
      - {expr: x * 3, eval_time: 0s, exp_samples: [{value: 0.3}]}
`
	}
	dir := writeFiles(t, map[string]string{"fuzzy.yml": test(true), "exact.yml": test(false)})
	_, out, status := runFile(t, dir, "fuzzy.yml", Options{})
	require.Equal(t, ExitPassed, status, out)
	_, out, status = runFile(t, dir, "exact.yml", Options{})
	require.Equal(t, ExitFailed, status)
	require.Contains(t, out, "other value for {}: expected 0.3, got 0.30000000000000004")
}

func TestFile_RunSelectsTestGroups(t *testing.T) {
	dir := writeFiles(t, map[string]string{"test.yml": `
tests:
  - name: passing one
    promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 1}]}]
  - name: failing one
    promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 2}]}]
`})
	res, _, status := runFile(t, dir, "test.yml", Options{Run: []*regexp.Regexp{regexp.MustCompile("passing")}})
	require.Equal(t, ExitPassed, status)
	require.Equal(t, []TestGroupRef{{Index: 0, Name: "passing one"}}, res.TestGroups)
	res, _, status = runFile(t, dir, "test.yml", Options{})
	require.Equal(t, ExitFailed, status)
	require.Len(t, res.TestGroups, 2)
	require.Equal(t, "failing one", res.Failures[0].TestGroup)
	require.Equal(t, 1, res.Failures[0].Index)
}

func TestFile_StartTimestamp(t *testing.T) {
	dir := writeFiles(t, map[string]string{"test.yml": `
tests:
  - start_timestamp: '2026-01-02T03:04:05Z'
    input_series: [{series: x, values: '1 2 3'}]
    promql_expr_test:
      - {expr: timestamp(x), eval_time: 2m, exp_samples: [{value: 1767323165}]}
      - {expr: x, eval_time: 1m, exp_samples: [{labels: x, value: 2}]}
  - start_timestamp: 3600
    input_series: [{series: x, values: '1'}]
    promql_expr_test:
      - {expr: timestamp(x), eval_time: 0s, exp_samples: [{value: 3600}]}
`})
	res, out, status := runFile(t, dir, "test.yml", Options{})
	require.Empty(t, res.Failures, out)
	require.Equal(t, ExitPassed, status)
}

func TestRun_ExitStatusOverSeveralFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"pass.yml": "tests:\n  - promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 1}]}]\n",
		"fail.yml": "tests:\n  - promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 2}]}]\n",
	})
	var out strings.Builder
	results, status := Run(&out, Options{}, filepath.Join(dir, "pass.yml"), filepath.Join(dir, "fail.yml"))
	require.Equal(t, ExitFailed, status)
	require.Len(t, results, 2)
	require.True(t, results[0].Passed())
	require.False(t, results[1].Passed())
	require.Contains(t, out.String(), "1 of 2 test files failed")
	out.Reset()
	_, status = Run(&out, Options{}, filepath.Join(dir, "pass.yml"))
	require.Equal(t, ExitPassed, status)
	require.Contains(t, out.String(), "all 1 test files passed")
}

func TestWriteJUnit(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"test.yml": `
tests:
  - name: passing
    promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 1}]}]
  - promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 2}]}]
`,
		"broken.yml": "tests: [\n",
	})
	results, _ := Run(io.Discard, Options{}, filepath.Join(dir, "test.yml"), filepath.Join(dir, "broken.yml"))
	var out strings.Builder
	require.NoError(t, WriteJUnit(&out, results))
	xml := out.String()
	require.Contains(t, xml, `<testsuite name="`+filepath.Join(dir, "test.yml")+`" tests="2" failures="1" errors="0"`)
	require.Contains(t, xml, `<testcase name="&#34;passing&#34; (tests[0])"></testcase>`)
	require.Contains(t, xml, `<testcase name="tests[1]"><failure>expr &#34;vector(1)&#34;, eval_time 0s: expected 1 sample, got 1`)
	require.Contains(t, xml, `<testsuite name="`+filepath.Join(dir, "broken.yml")+`" tests="1" failures="0" errors="1"`)
	require.Contains(t, xml, `<error>yaml: line 1: did not find expected node content</error>`)
}
