package api

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// Strata's querier has no exemplars to serve yet: the answer is Prometheus' with its exemplar storage
// off, an empty list, for any well-formed request.
func TestQueryExemplars_AnswersNoExemplars(t *testing.T) {
	limits := validation.DefaultLimits()
	require.NoError(t, limits.MaxTotalQueryLength.Set("1h"))
	a := newTestAPIWithLimits(t, testEngineConfig(), nil, limits)
	for _, params := range []url.Values{
		{"query": {"up"}},
		{"query": {`sum(rate(http_request_duration_seconds_bucket{job="api"}[5m]))`}, "start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}},
		// Not an evaluation's range: max_total_query_length (1h here) does not apply.
		{"query": {"up"}, "start": {"0"}, "end": {unixSeconds(dataEnd)}},
		{"query": {"1 + 1"}},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			status, resp := a.call(t, method, "/query_exemplars", params)
			require.Equal(t, http.StatusOK, status, "%v: %s", params, resp.Error)
			require.Equal(t, "success", resp.Status)
			require.JSONEq(t, `[]`, string(resp.Data))
		}
	}
}

func TestQueryExemplars_BadParameters(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		name     string
		params   url.Values
		errorHas string
	}{
		{name: "no query", params: url.Values{}, errorHas: `invalid parameter "query"`},
		{name: "bad query", params: url.Values{"query": {"up{"}}, errorHas: `invalid parameter "query"`},
		{name: "bad start", params: url.Values{"query": {"up"}, "start": {"yesterday"}}, errorHas: `invalid parameter "start"`},
		{name: "bad end", params: url.Values{"query": {"up"}, "end": {"NaN"}}, errorHas: `invalid parameter "end"`},
		{name: "end before start", params: url.Values{"query": {"up"}, "start": {"100"}, "end": {"10"}}, errorHas: "end timestamp must not be before start time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, "/query_exemplars", tc.params)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "error", resp.Status)
			require.Equal(t, "bad_data", resp.ErrorType)
			require.Contains(t, resp.Error, tc.errorHas)
		})
	}
}
