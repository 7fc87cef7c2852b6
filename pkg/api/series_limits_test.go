package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Clients send series selectors as a POST form when they would not fit in a URL; the answer is the same.
func TestSeries_PostFormWithManySelectors(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	selectors := []string{`up{instance="b"}`}
	for i := range 500 {
		selectors = append(selectors, fmt.Sprintf(`absent_metric_%d{job="api",instance=~"%s"}`, i, strings.Repeat("x", 100)))
	}
	params := url.Values{"match[]": selectors, "start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}}
	require.Greater(t, len(params.Encode()), 64<<10, "longer than a URL should be")
	status, resp := a.call(t, http.MethodPost, "/series", params)
	require.Equal(t, http.StatusOK, status, resp.Error)
	require.JSONEq(t, `[{"__name__":"up","instance":"b","job":"api"}]`, string(resp.Data))
}

// limit=0, or none, is no limit, as in Prometheus.
func TestLimits_ZeroIsNoLimit(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		path   string
		params url.Values
		count  int
	}{
		{path: "/series", params: url.Values{"match[]": {`{job="api"}`}}, count: 3},
		{path: "/labels", count: 4},
		{path: "/label/__name__/values", count: 2},
	} {
		for _, limit := range []string{"", "0"} {
			params := url.Values{}
			for k, v := range tc.params {
				params[k] = v
			}
			if limit != "" {
				params.Set("limit", limit)
			}
			status, resp := a.call(t, http.MethodGet, tc.path, params)
			require.Equal(t, http.StatusOK, status, resp.Error)
			var got []any
			require.NoError(t, json.Unmarshal(resp.Data, &got))
			require.Len(t, got, tc.count, "%s limit=%q", tc.path, limit)
			require.Empty(t, resp.Warnings)
		}
	}
}

// The limit applies to the union of the match[] selectors' answers, as in Prometheus.
func TestLimits_ApplyToTheUnionOfSelectors(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		path  string
		limit string
		want  string
	}{
		{path: "/labels", limit: "3", want: `["__name__","code","instance"]`},
		{path: "/label/__name__/values", limit: "1", want: `["http_requests_total"]`},
		{path: "/series", limit: "2", want: `[{"__name__":"http_requests_total","code":"200","job":"api"},{"__name__":"up","instance":"a","job":"api"}]`},
	} {
		params := url.Values{"match[]": {"up", "http_requests_total"}, "limit": {tc.limit}}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			status, resp := a.call(t, method, tc.path, params)
			require.Equal(t, http.StatusOK, status, resp.Error)
			require.JSONEq(t, tc.want, string(resp.Data), tc.path)
			require.Equal(t, []string{"results truncated due to limit"}, resp.Warnings, tc.path)
		}
	}
}

func TestLabels_BadParameters(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, path := range []string{"/labels", "/label/job/values"} {
		for _, tc := range []struct {
			name     string
			params   url.Values
			errorHas string
		}{
			{name: "bad limit", params: url.Values{"limit": {"many"}}, errorHas: `invalid parameter "limit"`},
			{name: "negative limit", params: url.Values{"limit": {"-1"}}, errorHas: "limit must be non-negative"},
			{name: "bad selector", params: url.Values{"match[]": {"up{"}}, errorHas: `invalid parameter "match[]"`},
			{name: "bad start", params: url.Values{"start": {"x"}}, errorHas: `invalid parameter "start"`},
			{name: "bad end", params: url.Values{"end": {"x"}}, errorHas: `invalid parameter "end"`},
			{name: "end before start", params: url.Values{"start": {"100"}, "end": {"10"}}, errorHas: "end timestamp must not be before start time"},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				status, resp := a.call(t, http.MethodGet, path, tc.params)
				require.Equal(t, http.StatusBadRequest, status)
				require.Equal(t, "error", resp.Status)
				require.Equal(t, "bad_data", resp.ErrorType)
				require.Contains(t, resp.Error, tc.errorHas)
			})
		}
	}
}
