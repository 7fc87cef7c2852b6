package ruletest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"go.yaml.in/yaml/v2"
)

// defaultEvaluationInterval is promtool's, used when a file sets none.
const defaultEvaluationInterval = model.Duration(time.Minute)

// testFile is a unit test file. Decoded strictly, with the YAML library promtool uses, so that a file
// one accepts the other accepts too (an unknown or misspelt field is an error in both).
type testFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval,omitempty"`
	GroupEvalOrder     []string       `yaml:"group_eval_order"`
	Tests              []testGroup    `yaml:"tests"`
	FuzzyCompare       bool           `yaml:"fuzzy_compare,omitempty"`
}

// testGroup is one entry of tests: input series and what to expect of them.
type testGroup struct {
	Interval        model.Duration `yaml:"interval"`
	InputSeries     []inputSeries  `yaml:"input_series"`
	AlertRuleTests  []alertTest    `yaml:"alert_rule_test,omitempty"`
	PromqlExprTests []exprTest     `yaml:"promql_expr_test,omitempty"`
	ExternalLabels  labels.Labels  `yaml:"external_labels,omitempty"`
	ExternalURL     string         `yaml:"external_url,omitempty"`
	Name            string         `yaml:"name,omitempty"`
	StartTimestamp  startTime      `yaml:"start_timestamp,omitempty"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertTest struct {
	EvalTime  model.Duration  `yaml:"eval_time"`
	Alertname string          `yaml:"alertname"`
	ExpAlerts []expectedAlert `yaml:"exp_alerts"`
}

type expectedAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

type exprTest struct {
	Expr       string           `yaml:"expr"`
	EvalTime   model.Duration   `yaml:"eval_time"`
	ExpSamples []expectedSample `yaml:"exp_samples"`
}

type expectedSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
	// Histogram, in the load notation ({{schema:0 sum:5 count:4 buckets:[1 2 1]}}), is compared instead
	// of Value when set; Value must then be left out (0), as in promtool.
	Histogram string `yaml:"histogram"`
}

// startTime is a test group's start_timestamp: RFC 3339, or Unix seconds. Zero is the Unix epoch.
type startTime struct{ time.Time }

// UnmarshalYAML parses an RFC 3339 time or a number of seconds since the epoch.
func (t *startTime) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		t.Time = time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC()
		return nil
	}
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("start_timestamp %q is neither an RFC 3339 time nor Unix seconds", s)
	}
	t.Time = parsed
	return nil
}

// readTestFile decodes the test file at path and resolves its rule_files: relative to the test file's
// directory, globs expanded. A pattern that matches nothing gives a warning, not an error, as in promtool.
func readTestFile(path string) (tf testFile, warnings []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return tf, nil, err
	}
	if err := yaml.UnmarshalStrict(data, &tf); err != nil {
		return tf, nil, err
	}
	var files []string
	for _, pattern := range tf.RuleFiles {
		if pattern != "" && !filepath.IsAbs(pattern) {
			pattern = filepath.Join(filepath.Dir(path), pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return tf, warnings, fmt.Errorf("rule_files: %q: %w", pattern, err)
		}
		if len(matches) == 0 {
			warnings = append(warnings, fmt.Sprintf("rule_files: no file matches %q", pattern))
		}
		files = append(files, matches...)
	}
	tf.RuleFiles = files
	if tf.EvaluationInterval == 0 {
		tf.EvaluationInterval = defaultEvaluationInterval
	}
	return tf, warnings, nil
}
