package seriespb

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/validation"
)

// NewFetchLimits returns the fetch limits of l for a read request, or nil when l sets none, so that an
// unlimited tenant's requests carry nothing.
func NewFetchLimits(l *validation.Limits) *FetchLimits {
	if l.MaxFetchedSeriesPerQuery <= 0 && l.MaxFetchedChunkBytesPerQuery <= 0 {
		return nil
	}
	return &FetchLimits{MaxSeries: int64(max(l.MaxFetchedSeriesPerQuery, 0)), MaxChunkBytes: int64(max(l.MaxFetchedChunkBytesPerQuery, 0))}
}

// SeriesLimitError is the error of a query that fetched more than limit series.
func SeriesLimitError(limit int64) *validation.LimitError {
	return validation.NewLimitError("max_fetched_series_per_query", "the query fetched more than %d series", limit)
}

// ExemplarsLimitError is the error of an exemplar query that read more than limit exemplars.
func ExemplarsLimitError(limit int64) *validation.LimitError {
	return validation.NewLimitError("max_fetched_exemplars_per_query", "the query fetched more than %d exemplars", limit)
}

// ChunkBytesLimitError is the error of a query that fetched more than limit bytes of chunks.
func ChunkBytesLimitError(limit int64) *validation.LimitError {
	return validation.NewLimitError("max_fetched_chunk_bytes_per_query", "the query fetched more than %d bytes of chunks", limit)
}

// FetchCounter counts one source's answer against a request's limits. The zero value and one with nil
// limits count nothing.
type FetchCounter struct {
	limits     *FetchLimits
	series     int64
	chunkBytes int64
}

// NewFetchCounter counts against limits, which may be nil.
func NewFetchCounter(limits *FetchLimits) FetchCounter {
	return FetchCounter{limits: limits}
}

// Add counts one more series with chunkBytes bytes of chunks. It returns the status that ends the read
// once the answer crosses a limit; the series that crossed it must not be sent.
func (c *FetchCounter) Add(chunkBytes int) error {
	if c.limits == nil {
		return nil
	}
	c.series++
	c.chunkBytes += int64(chunkBytes)
	if c.limits.MaxSeries > 0 && c.series > c.limits.MaxSeries {
		return LimitStatus(SeriesLimitError(c.limits.MaxSeries))
	}
	if c.limits.MaxChunkBytes > 0 && c.chunkBytes > c.limits.MaxChunkBytes {
		return LimitStatus(ChunkBytesLimitError(c.limits.MaxChunkBytes))
	}
	return nil
}

// LimitStatus is the gRPC status of a read that stopped at a limit: ResourceExhausted, with the limit in a
// LimitExceeded detail so that the querier recognises it (gRPC itself answers ResourceExhausted for a
// message over the size limit, which is not the tenant's limit).
func LimitStatus(err *validation.LimitError) error {
	st, detailErr := status.New(codes.ResourceExhausted, err.Error()).WithDetails(&LimitExceeded{Limit: err.Key, What: err.What})
	if detailErr != nil {
		// Only a detail that cannot be marshalled fails; LimitExceeded always can.
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	return st.Err()
}

// LimitErrorOf returns the limit error that a read's status carries, if it carries one, anywhere in err's
// chain.
func LimitErrorOf(err error) (*validation.LimitError, bool) {
	var limitErr *validation.LimitError
	if errors.As(err, &limitErr) {
		return limitErr, true
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return nil, false
	}
	for _, d := range st.Details() {
		if le, ok := d.(*LimitExceeded); ok {
			return &validation.LimitError{Key: le.Limit, What: le.What}, true
		}
	}
	return nil, false
}
