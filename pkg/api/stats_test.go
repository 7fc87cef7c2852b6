package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// queryStats is data.stats of a query answer, as Prometheus' web API renders the engine's statistics.
type queryStats struct {
	Timings struct {
		EvalTotalTime        *float64 `json:"evalTotalTime"`
		ResultSortTime       *float64 `json:"resultSortTime"`
		QueryPreparationTime *float64 `json:"queryPreparationTime"`
		InnerEvalTime        *float64 `json:"innerEvalTime"`
		ExecQueueTime        *float64 `json:"execQueueTime"`
		ExecTotalTime        *float64 `json:"execTotalTime"`
	} `json:"timings"`
	Samples struct {
		TotalQueryableSamples *int64 `json:"totalQueryableSamples"`
		PeakSamples           *int   `json:"peakSamples"`
	} `json:"samples"`
}

func TestQuery_StatsParameterAddsQueryStatistics(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	instant := url.Values{"query": {"up"}, "time": {unixSeconds(dataEnd)}}
	ranged := url.Values{"query": {"up"}, "start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}, "step": {"60s"}}
	tests := []struct {
		name        string
		path        string
		params      url.Values
		stats       string
		wantSamples int64 // samples the query reads: 2 series of "up" at each step
	}{
		{"instant, stats=all", "/query", instant, "all", 2},
		{"instant, any other value", "/query", instant, "1", 2},
		{"range, stats=all", "/query_range", ranged, "all", 2 * 11},
		{"range, any other value", "/query_range", ranged, "true", 2 * 11},
		{"instant, no stats", "/query", instant, "", 0},
		{"range, no stats", "/query_range", ranged, "", 0},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+" "+method, func(t *testing.T) {
				params := url.Values{}
				for k, v := range tt.params {
					params[k] = v
				}
				if tt.stats != "" {
					params.Set("stats", tt.stats)
				}
				status, resp := a.call(t, method, tt.path, params)
				require.Equal(t, http.StatusOK, status, resp.Error)
				var data struct {
					Result json.RawMessage  `json:"result"`
					Stats  *json.RawMessage `json:"stats"`
				}
				require.NoError(t, json.Unmarshal(resp.Data, &data))
				require.NotEmpty(t, data.Result)
				if tt.stats == "" {
					require.Nil(t, data.Stats, "no stats unless asked for: %s", resp.Data)
					return
				}
				require.NotNil(t, data.Stats, "stats asked for: %s", resp.Data)
				var st queryStats
				require.NoError(t, json.Unmarshal(*data.Stats, &st))
				for name, v := range map[string]*float64{
					"evalTotalTime": st.Timings.EvalTotalTime, "resultSortTime": st.Timings.ResultSortTime,
					"queryPreparationTime": st.Timings.QueryPreparationTime, "innerEvalTime": st.Timings.InnerEvalTime,
					"execQueueTime": st.Timings.ExecQueueTime, "execTotalTime": st.Timings.ExecTotalTime,
				} {
					require.NotNil(t, v, "timings.%s missing: %s", name, *data.Stats)
					require.GreaterOrEqual(t, *v, 0.0, name)
				}
				require.Greater(t, *st.Timings.ExecTotalTime, 0.0)
				require.NotNil(t, st.Samples.TotalQueryableSamples, "samples.totalQueryableSamples missing: %s", *data.Stats)
				require.Equal(t, tt.wantSamples, *st.Samples.TotalQueryableSamples)
				require.NotNil(t, st.Samples.PeakSamples)
				require.Positive(t, *st.Samples.PeakSamples)
			})
		}
	}
}
