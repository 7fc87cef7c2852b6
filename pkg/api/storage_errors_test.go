package api

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

func TestQuery_ASourceRefusingTheRequestIsBadData(t *testing.T) {
	refused := status.Error(codes.InvalidArgument, `invalid __query_shard__ selector "0_of_3"`)
	a := newTestAPI(t, testEngineConfig(), errQueryable{fmt.Errorf("ingester 10.0.0.1:9095: %w", refused)})
	code, resp := a.call(t, http.MethodGet, "/query", url.Values{"query": {`up{__query_shard__="0_of_3"}`}})
	require.Equal(t, http.StatusBadRequest, code, resp.Error)
	require.Equal(t, "bad_data", resp.ErrorType)
	require.Contains(t, resp.Error, "__query_shard__")

	a = newTestAPI(t, testEngineConfig(), errQueryable{status.Error(codes.Unavailable, "ingester down")})
	code, _ = a.call(t, http.MethodGet, "/query", url.Values{"query": {"up"}})
	require.Equal(t, http.StatusInternalServerError, code, "an unavailable source is ours to fix, and retried")
}
