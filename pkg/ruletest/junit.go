package ruletest

import (
	"io"
	"time"

	"github.com/prometheus/prometheus/util/junitxml"
)

// WriteJUnit writes results as JUnit XML, as promtool's --junit does: a test suite per file, a test
// case per test group, each failure a failure of its test group's case, and a file that could not be
// tested an aborted suite.
func WriteJUnit(w io.Writer, results []*FileResult) error {
	var junit junitxml.JUnitXML
	for _, res := range results {
		suite := junit.Suite(res.File)
		suite.Settime(time.Now().Format("2006-01-02T15:04:05"))
		if res.Err != nil {
			suite.Abort(res.Err)
			continue
		}
		for _, tg := range res.TestGroups {
			suite.Case(tg.String())
			for _, f := range res.Failures {
				if f.Index == tg.Index {
					suite.Fail(f.String())
				}
			}
		}
	}
	return junit.WriteXML(w)
}
