package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// Times a query cannot be evaluated at: before the fix they evaluated at 1970 or at a wrapped-around time.
var unevaluableTimes = []string{
	"NaN", "Inf", "+Inf", "-Inf", "1e30", "-1e30", "1e400",
	"0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", // RFC 3339, but past int64 nanoseconds
	"-62135596800", "253402300799", // the same as Unix seconds
	"1677-09-21T00:12:43Z", "2262-04-11T23:47:17Z", // a second past each end
}

func TestTimeParameters_RefuseTimesQueriesCannotBeEvaluatedAt(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, v := range unevaluableTimes {
		for _, tc := range []struct {
			path, param string
			params      url.Values
		}{
			{"/query", "time", url.Values{"query": {"time()"}, "time": {v}}},
			{"/query_range", "start", url.Values{"query": {"time()"}, "start": {v}, "end": {"1000"}, "step": {"60"}}},
			{"/query_range", "end", url.Values{"query": {"time()"}, "start": {"0"}, "end": {v}, "step": {"60"}}},
			{"/series", "start", url.Values{"match[]": {"up"}, "start": {v}}},
			{"/labels", "end", url.Values{"end": {v}}},
			{"/label/job/values", "start", url.Values{"start": {v}}},
		} {
			code, resp := a.call(t, http.MethodGet, tc.path, tc.params)
			require.Equal(t, http.StatusBadRequest, code, "%s?%s=%s answered %s", tc.path, tc.param, v, resp.Data)
			require.Equal(t, "error", resp.Status)
			require.Equal(t, "bad_data", resp.ErrorType)
			require.Contains(t, resp.Error, `invalid parameter "`+tc.param+`"`)
		}
	}
}

func TestTimeParameters_EvaluateAtTheTimeGiven(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for v, want := range map[string]float64{
		"1.5":                            1.5,
		"-1.5":                           -1.5,
		"1700000000.123456":              1700000000.123, // kept to the millisecond
		"2023-11-14T22:13:20.5Z":         1700000000.5,
		"2023-11-14T23:13:20+01:00":      1700000000,
		"1677-09-21T00:12:44Z":           -9223372036,
		"2262-04-11T23:47:16Z":           9223372036,
		"-9223372036.854":                -9223372036.854,
		"9223372036.854":                 9223372036.854,
		"2262-04-11T23:47:16.854775807Z": 9223372036.854,
	} {
		code, resp := a.call(t, http.MethodGet, "/query", url.Values{"query": {"time()"}, "time": {v}})
		require.Equal(t, http.StatusOK, code, "time=%s: %+v", v, resp)
		var data struct {
			Result [2]any `json:"result"`
		}
		require.NoError(t, json.Unmarshal(resp.Data, &data))
		require.Equal(t, want, data.Result[0], "time=%s", v)
	}
}

func TestTimeParameters_AcceptPrometheusBoundsMeaningNoBound(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	code, resp := a.call(t, http.MethodGet, "/series", url.Values{
		"match[]": {"up"},
		"start":   {minTime.Format("2006-01-02T15:04:05.999999999Z07:00")},
		"end":     {maxTime.Format("2006-01-02T15:04:05.999999999Z07:00")},
	})
	require.Equal(t, http.StatusOK, code, "%+v", resp)
}
