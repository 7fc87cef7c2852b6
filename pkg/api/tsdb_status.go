package api

import (
	"context"
	"net/http"
)

// tsdbStatus answers Prometheus' /api/v1/status/tsdb for the tenant: its heads' statistics across the
// ingesters, each list cut at the limit parameter (default 10).
func (a *CardinalityAPI) tsdbStatus(ctx context.Context, r *http.Request) (any, *apiError) {
	limit, apiErr := parseCardinalityLimit(r, defaultTSDBStatusLimit, 1)
	if apiErr != nil {
		return nil, apiErr
	}
	status, err := a.source.TSDBStatus(ctx, limit)
	if err != nil {
		return nil, cardinalityError(err)
	}
	return status, nil
}
