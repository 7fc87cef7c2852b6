package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// maxDeleteSeriesRequestBytes bounds a delete_series form body: a few selectors, not a data upload.
const maxDeleteSeriesRequestBytes = 64 << 10

// TombstoneInvalidator forgets what a process cached of a tenant's tombstones.
type TombstoneInvalidator interface {
	Invalidate(tenantID string)
}

// DeleteSeriesAPI serves Prometheus' POST /api/v1/admin/tsdb/delete_series: it stores the request as a
// tombstone in the tenant's bucket, which queriers apply at read time, ingesters to their TSDBs and the
// compactor to the blocks.
type DeleteSeriesAPI struct {
	bkt    objstore.Bucket
	limits *validation.Overrides
	cache  TombstoneInvalidator
	logger *slog.Logger
	now    func() time.Time
}

// NewDeleteSeriesAPI returns the handler over bkt (the whole bucket). cache, when not nil, is this
// process' tombstone cache, invalidated so that its next query applies the deletion.
func NewDeleteSeriesAPI(bkt objstore.Bucket, limits *validation.Overrides, cache TombstoneInvalidator, logger *slog.Logger) *DeleteSeriesAPI {
	return &DeleteSeriesAPI{bkt: bkt, limits: limits, cache: cache, logger: logger, now: time.Now}
}

// ServeHTTP answers 204 once the deletion is stored. The tenant comes from the request's context.
func (a *DeleteSeriesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if apiErr := a.deleteSeries(w, r); apiErr != nil {
		status := apiErr.typ.status()
		if apiErr.status != 0 {
			status = apiErr.status
		}
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "POST, PUT")
		}
		writeJSON(w, status, response{Status: "error", ErrorType: apiErr.typ, Error: apiErr.err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteSeriesError is an API error whose HTTP status differs from its error type's.
type deleteSeriesError struct {
	apiError
	status int
}

func deleteSeriesFailure(status int, typ errorType, format string, args ...any) *deleteSeriesError {
	return &deleteSeriesError{apiError: apiError{typ: typ, err: fmt.Errorf(format, args...)}, status: status}
}

func (a *DeleteSeriesAPI) deleteSeries(w http.ResponseWriter, r *http.Request) *deleteSeriesError {
	// Prometheus serves the admin API on POST and PUT.
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return deleteSeriesFailure(http.StatusMethodNotAllowed, errorBadData, "only POST and PUT are allowed")
	}
	id, err := tenant.FromContext(r.Context())
	if err != nil {
		return deleteSeriesFailure(http.StatusUnauthorized, errorBadData, "%v", err)
	}
	if len(tenant.IDs(id)) != 1 {
		return deleteSeriesFailure(0, errorBadData, "series are deleted in one tenant at a time, not in %q", id)
	}
	if !a.limits.For(id).SeriesDeletionEnabled {
		return deleteSeriesFailure(http.StatusForbidden, errorBadData,
			"series deletion is disabled for tenant %q; enable it with the series_deletion_enabled limit (-querier.series-deletion-enabled)", id)
	}
	if a.bkt == nil {
		return deleteSeriesFailure(http.StatusNotImplemented, errorBadData, "series deletion needs object storage (-blocks-storage.backend), which this querier has none of")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxDeleteSeriesRequestBytes)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return deleteSeriesFailure(http.StatusRequestEntityTooLarge, errorBadData, "request body larger than %d bytes", maxDeleteSeriesRequestBytes)
		}
		return deleteSeriesFailure(0, errorBadData, "parse form: %v", err)
	}
	selectors := r.Form["match[]"]
	if len(selectors) == 0 {
		return deleteSeriesFailure(0, errorBadData, "no match[] parameter provided")
	}
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return deleteSeriesFailure(0, errorBadData, "invalid parameter \"start\": %v", err)
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return deleteSeriesFailure(0, errorBadData, "invalid parameter \"end\": %v", err)
	}
	now := a.now()
	// Only samples that exist can be deleted: none is later than the creation grace period allows. Without
	// this bound, a deletion up to the end of time would also delete the series' samples written from now
	// on, until the compactor marks it done, which it then never would.
	latest := now.Add(time.Duration(a.limits.For(id).CreationGracePeriod))
	ts, err := blockstore.NewTombstone(ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()), selectors, timestamp(start), timestamp(end), now.UnixMilli())
	if err != nil {
		return deleteSeriesFailure(0, errorBadData, "%v", err)
	}
	if start.After(latest) {
		return nil // Nothing exists there yet, so nothing to delete.
	}
	ts.MaxTime = min(ts.MaxTime, timestamp(latest))

	tb := bucket.NewTenantBucket(a.bkt, id)
	existing, err := blockstore.ListTombstones(r.Context(), tb)
	if err != nil {
		return deleteSeriesFailure(0, errorInternal, "%v", err)
	}
	if n := len(blockstore.PendingTombstones(existing)); n >= blockstore.MaxPendingTombstones {
		return deleteSeriesFailure(http.StatusTooManyRequests, errorBadData,
			"tenant %q has %d series deletions the compactor has not applied yet, the most allowed; retry once it has", id, n)
	}
	if err := blockstore.WriteTombstone(r.Context(), tb, ts); err != nil {
		return deleteSeriesFailure(0, errorInternal, "%v", err)
	}
	if a.cache != nil {
		a.cache.Invalidate(id)
	}
	a.logger.Info("series deletion requested", "tenant", id, "tombstone", ts.ID, "selectors", selectors,
		"start", ts.MinTime, "end", ts.MaxTime)
	return nil
}
