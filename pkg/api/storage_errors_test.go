package api

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

func TestQuery_OverAFetchLimitIsTheQuerysFailure(t *testing.T) {
	limitErr := validation.NewLimitError("max_fetched_series_per_query", "the query fetched more than %d series", 10)
	a := newTestAPI(t, testEngineConfig(), errQueryable{limitErr})
	for _, tc := range []struct {
		path   string
		params url.Values
	}{
		{path: "/query", params: url.Values{"query": {"up"}}},
		{path: "/query_range", params: url.Values{"query": {"up"}, "start": {"0"}, "end": {"60"}, "step": {"15"}}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, tc.path, tc.params)
			require.Equal(t, http.StatusUnprocessableEntity, status, resp.Error)
			require.Equal(t, "execution", resp.ErrorType)
			require.Contains(t, resp.Error, limitErr.Error(), "the limit's message, with its error ID")
		})
	}
}
