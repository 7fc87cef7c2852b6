// Package ruletest runs unit tests of Prometheus rules, in the test file format of `promtool test rules`
// and with its semantics: input series in the promqltest load notation, rule groups evaluated by
// Prometheus' own rules package over an in-memory TSDB at every evaluation_interval, and the firing
// alerts and query results compared with those expected at each eval_time.
//
// What it adds to promtool is the report: each failure is a value (Failure) that names the test file,
// the test group, the alert or expression and the eval time, and shows only the alerts or samples that
// differ, so that `stratatool rules test` and other callers can print or inspect it.
package ruletest
