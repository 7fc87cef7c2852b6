package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// ruleTestDir holds unit test files that `promtool test rules` and `stratatool rules test` must judge
// alike, with the rule files they test.
const ruleTestDir = "testdata/ruletest"

var (
	stratatoolOnce sync.Once
	stratatoolPath string
	stratatoolErr  error
)

// promtoolBinary builds the promtool of the Prometheus that Strata's go.mod requires, once per run.
func promtoolBinary(t *testing.T) string { return moduleTool(t, "promtool") }

// stratatoolBinary builds stratatool beside the strata binary TestMain built, once per run.
func stratatoolBinary(t *testing.T) string {
	t.Helper()
	stratatoolOnce.Do(func() {
		stratatoolPath = filepath.Join(filepath.Dir(strataBinary), "stratatool")
		out, err := exec.Command("go", "build", "-o", stratatoolPath, "../cmd/stratatool").CombinedOutput()
		if err != nil {
			stratatoolErr = fmt.Errorf("build stratatool: %w\n%s", err, out)
		}
	})
	require.NoError(t, stratatoolErr)
	return stratatoolPath
}

// runRuleTests runs `<bin> <args...> file` in ruleTestDir and returns its exit status and output.
func runRuleTests(t *testing.T, bin string, args []string, file string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append(args, file)...)
	cmd.Dir = ruleTestDir
	out, err := cmd.CombinedOutput()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return exitErr.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

// promtoolFailure is one failure in promtool's report: of an alert test, an expression test, a rule's
// evaluation, or another error (a file or test group that could not run), kept as its text.
type promtoolFailure struct {
	kind      string // "alertname", "expr", "rule" or "error"
	testGroup string // for alert tests of a named test group: promtool names no other
	subject   string // the alertname, the quoted expression, the rule name, or the error's text
	evalTime  string
}

var (
	promtoolTestName = regexp.MustCompile(`^    name: (.*),$`)
	promtoolAlert    = regexp.MustCompile(`^    alertname: (.*), time: (\S+), $`)
	promtoolRule     = regexp.MustCompile(`^    rule: (.*), time: (\S+), err: `)
)

// parsePromtoolFailures reads the failures out of promtool's output (cmd/promtool/unittest.go).
func parsePromtoolFailures(out string) []promtoolFailure {
	var (
		failures  []promtoolFailure
		testGroup string
	)
	for _, line := range strings.Split(out, "\n") {
		if f, ok := promtoolExprFailure(line); ok {
			failures = append(failures, f)
			continue
		}
		trimmed := strings.TrimSpace(line)
		if m := promtoolTestName.FindStringSubmatch(line); m != nil {
			testGroup = m[1] // of the alert test on the next line
		} else if m := promtoolAlert.FindStringSubmatch(line); m != nil {
			failures = append(failures, promtoolFailure{kind: "alertname", testGroup: testGroup, subject: m[1], evalTime: m[2]})
			testGroup = ""
		} else if m := promtoolRule.FindStringSubmatch(line); m != nil {
			failures = append(failures, promtoolFailure{kind: "rule", subject: m[1], evalTime: m[2]})
		} else if trimmed != "" && trimmed != "FAILED:" && trimmed != "SUCCESS" && !strings.HasPrefix(line, "        ") {
			// Deeper lines are the exp: and got: of a failure above.
			failures = append(failures, promtoolFailure{kind: "error", subject: trimmed})
		}
	}
	return failures
}

// promtoolExprFailure parses `    expr: "<Go-quoted expression>", time: <eval time>,...`: the
// expression may hold ", time: " itself, so it is read as a quoted string.
func promtoolExprFailure(line string) (promtoolFailure, bool) {
	rest, ok := strings.CutPrefix(line, "    expr: ")
	if !ok {
		return promtoolFailure{}, false
	}
	quoted, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return promtoolFailure{}, false
	}
	after, ok := strings.CutPrefix(rest[len(quoted):], ", time: ")
	if !ok {
		return promtoolFailure{}, false
	}
	evalTime, _, _ := strings.Cut(after, ",")
	return promtoolFailure{kind: "expr", subject: quoted, evalTime: evalTime}, true
}

// requireReported checks that stratatool's output reports failure f.
func requireReported(t *testing.T, out string, f promtoolFailure) {
	t.Helper()
	lines := strings.Split(out, "\n")
	var heading string
	switch f.kind {
	case "alertname":
		heading = fmt.Sprintf("    alertname %q, eval_time %s:", f.subject, f.evalTime)
	case "expr":
		heading = fmt.Sprintf("    expr %s, eval_time %s:", f.subject, f.evalTime)
	case "rule":
		// promtool prints the time of a rule's failure as a Go duration (5m0s), stratatool as eval_times.
		d, err := time.ParseDuration(f.evalTime)
		require.NoError(t, err)
		heading = fmt.Sprintf("    rule %q failed to evaluate at eval_time %s:", f.subject, model.Duration(d))
	default:
		// The same error, but for the type name of the test file's decoder.
		require.Contains(t, out, strings.Replace(f.subject, "in type main.", "in type ruletest.", 1), "promtool's error is not reported")
		return
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, heading) {
			continue
		}
		if f.testGroup == "" {
			return
		}
		for j := i - 1; j >= 0; j-- {
			if strings.HasPrefix(lines[j], "  test group ") {
				require.True(t, strings.HasPrefix(lines[j], fmt.Sprintf("  test group %q", f.testGroup)),
					"%q is reported under %q, not under test group %q", heading, lines[j], f.testGroup)
				return
			}
		}
	}
	require.Failf(t, "a failure promtool reports is missing", "no line starts with %q", heading)
}

// TestStratatoolRulesTest_AgreesWithPromtool runs both on each test file: the exit statuses must be
// the expected ones, and each failure promtool reports (test group, alertname or expression, eval
// time; or the error) must be reported by stratatool too, and stratatool must report no other.
func TestStratatoolRulesTest_AgreesWithPromtool(t *testing.T) {
	promtool, stratatool := promtoolBinary(t), stratatoolBinary(t)
	wantStatus := map[string]int{
		"alerts-pass.yml":       0,
		"expr-pass.yml":         0,
		"group-order-pass.yml":  0,
		"fuzzy-pass.yml":        0,
		"alerts-fail.yml":       1,
		"expr-fail.yml":         1,
		"group-order-fail.yml":  1,
		"fuzzy-fail.yml":        1,
		"eval-error.yml":        1,
		"rule-syntax-error.yml": 1,
		"bad-series.yml":        1,
		"test-syntax-error.yml": 1,
		"unknown-field.yml":     1,
	}
	files, err := filepath.Glob(filepath.Join(ruleTestDir, "*.yml"))
	require.NoError(t, err)
	require.Len(t, files, len(wantStatus), "every test file in %s needs its expected status here", ruleTestDir)

	stratatoolHeading := regexp.MustCompile(`^    (alertname|expr|rule) "`)
	for file, want := range wantStatus {
		t.Run(file, func(t *testing.T) {
			promtoolStatus, promtoolOut := runRuleTests(t, promtool, []string{"test", "rules"}, file)
			stratatoolStatus, stratatoolOut := runRuleTests(t, stratatool, []string{"rules", "test"}, file)
			require.Equal(t, want, promtoolStatus, "promtool:\n%s", promtoolOut)
			require.Equal(t, want, stratatoolStatus, "stratatool:\n%s", stratatoolOut)

			failures := parsePromtoolFailures(promtoolOut)
			require.Equal(t, want == 1, len(failures) > 0, "promtool:\n%s", promtoolOut)
			structured := 0
			for _, f := range failures {
				requireReported(t, stratatoolOut, f)
				if f.kind != "error" {
					structured++
				}
			}
			reported := 0
			for _, line := range strings.Split(stratatoolOut, "\n") {
				if stratatoolHeading.MatchString(line) {
					reported++
				}
			}
			require.Equal(t, structured, reported, "stratatool reports other failures than promtool\npromtool:\n%s\nstratatool:\n%s", promtoolOut, stratatoolOut)
		})
	}
}
