package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-metrics/strata/pkg/validation"
)

// Bounds of one remote read request. None is a tenant's limit: they only keep a hostile request from
// costing more than an honest one could need.
const (
	// maxReadRequestBytes bounds the body, compressed and decompressed. A read request holds matchers and
	// time ranges, a few kilobytes; this is the query-frontend's default -query-frontend.max-body-size, so
	// that a querier serving the API itself refuses what the frontend would.
	maxReadRequestBytes = 10 << 20
	// maxReadQueries bounds the queries of one request. Prometheus sends one per selector of the PromQL
	// query it evaluates; each query is a Select over the tenant's data, run one after the other.
	maxReadQueries = 100
	// maxReadFrameBytes is roughly the most chunk bytes a frame of a streamed answer carries (a frame may
	// exceed it by one chunk), as Prometheus' default --storage.remote.read-max-bytes-in-frame.
	maxReadFrameBytes = 1 << 20
)

// A snappy block cannot expand by more than 64/3 past its length header: the densest element is a copy
// of up to 64 bytes encoded in 3. A header announcing more than that is a lie, refused before any buffer
// of the announced size is allocated.
const (
	snappyMaxExpansionNum = 64
	snappyMaxExpansionDen = 3
)

const (
	readContentType         = "application/x-protobuf"
	streamedReadContentType = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
)

// readError is a remote read failure with the HTTP status it is answered with.
type readError struct {
	status int
	msg    string
}

func (e *readError) Error() string { return e.msg }

func newReadError(status int, format string, args ...any) *readError {
	return &readError{status: status, msg: fmt.Sprintf(format, args...)}
}

// readQuery is one query of a read request, decoded.
type readQuery struct {
	matchers []*labels.Matcher
	hints    *storage.SelectHints
}

// remoteRead serves Prometheus' remote read protocol (POST /api/v1/read) over the tenant's data: a
// snappy-compressed prompb.ReadRequest, answered with the first response type in its
// accepted_response_types that Strata supports: a snappy prompb.ReadResponse (SAMPLES, the default) or
// a stream of prompb.ChunkedReadResponse frames (STREAMED_XOR_CHUNKS). Errors are plain text, as
// Prometheus answers them; its remote read client shows the body.
func (a *PrometheusAPI) remoteRead(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "remote read requests must be POST", http.StatusMethodNotAllowed)
		return
	}
	req, err := decodeReadRequest(r)
	if err != nil {
		writeReadError(w, err)
		return
	}
	queries, err := readQueries(req)
	if err != nil {
		writeReadError(w, err)
		return
	}
	responseType, err := negotiateReadResponse(req.AcceptedResponseTypes)
	if err != nil {
		writeReadError(w, err)
		return
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		writeReadError(w, newReadError(apiErr.typ.status(), "%v", apiErr.err))
		return
	}
	defer cancel()

	// One querier over all the queries' ranges, as the engine makes one per PromQL query: the tenant's
	// fetch limits bound the whole request, however many queries it holds. A request without queries
	// reads nothing and gets an empty answer, as from Prometheus.
	var q storage.Querier
	if len(queries) > 0 {
		mint, maxt := readRange(queries)
		if q, err = a.queryableFor(ctx).Querier(mint, maxt); err != nil {
			a.failRead(w, a.readFailure(ctx, err))
			return
		}
		defer q.Close()
	}

	switch responseType {
	case prompb.ReadRequest_STREAMED_XOR_CHUNKS:
		a.streamReadChunks(ctx, w, q, queries)
	default:
		a.readSamples(ctx, w, q, queries)
	}
}

// decodeReadRequest reads the body, refusing a body or an announced decompressed size over
// maxReadRequestBytes before reading or allocating that much.
func decodeReadRequest(r *http.Request) (*prompb.ReadRequest, error) {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		return nil, newReadError(http.StatusBadRequest, "unsupported Content-Encoding %q: remote read requests are snappy-compressed", enc)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mediaType, _, err := mime.ParseMediaType(ct); err != nil || mediaType != readContentType {
			return nil, newReadError(http.StatusBadRequest, "unsupported Content-Type %q: remote read requests are %s (a snappy-compressed prometheus.ReadRequest)", ct, readContentType)
		}
	}
	if r.ContentLength > maxReadRequestBytes {
		return nil, newReadError(http.StatusRequestEntityTooLarge, "request body is %d bytes, a remote read request may have at most %d", r.ContentLength, maxReadRequestBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReadRequestBytes+1))
	if err != nil {
		return nil, newReadError(http.StatusBadRequest, "read request body: %v", err)
	}
	if len(body) > maxReadRequestBytes {
		return nil, newReadError(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes, the most a remote read request may have", maxReadRequestBytes)
	}
	announced, headerLen := binary.Uvarint(body)
	if headerLen <= 0 {
		return nil, newReadError(http.StatusBadRequest, "body is not snappy-compressed: no valid length header")
	}
	if announced > maxReadRequestBytes {
		return nil, newReadError(http.StatusRequestEntityTooLarge, "decompressed body would be %d bytes, a remote read request may have at most %d", announced, maxReadRequestBytes)
	}
	if announced*snappyMaxExpansionDen > uint64(len(body)-headerLen)*snappyMaxExpansionNum {
		return nil, newReadError(http.StatusBadRequest, "body is not valid snappy: %d compressed bytes cannot decompress to the %d bytes its header announces", len(body)-headerLen, announced)
	}
	raw, err := snappy.Decode(make([]byte, announced), body)
	if err != nil {
		return nil, newReadError(http.StatusBadRequest, "body is not valid snappy: %v", err)
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, newReadError(http.StatusBadRequest, "body is not a prometheus.ReadRequest: %v", err)
	}
	return &req, nil
}

// readQueries converts the request's queries. A query's hints are passed on as Prometheus' own read
// handler passes them to its TSDB: the selector's range, step, function and grouping; the range is kept
// within the query's own, since the querier serves the union of all the queries' ranges.
func readQueries(req *prompb.ReadRequest) ([]readQuery, error) {
	if len(req.Queries) > maxReadQueries {
		return nil, newReadError(http.StatusBadRequest, "remote read request has %d queries, at most %d are accepted in one request; split it", len(req.Queries), maxReadQueries)
	}
	queries := make([]readQuery, 0, len(req.Queries))
	for i, pq := range req.Queries {
		if pq == nil {
			return nil, newReadError(http.StatusBadRequest, "query %d is empty", i)
		}
		ms, err := readMatchers(pq.Matchers)
		if err != nil {
			return nil, newReadError(http.StatusBadRequest, "query %d: %v", i, err)
		}
		hints := &storage.SelectHints{Start: pq.StartTimestampMs, End: pq.EndTimestampMs}
		if h := pq.Hints; h != nil {
			hints = &storage.SelectHints{
				Start:    max(h.StartMs, pq.StartTimestampMs),
				End:      min(h.EndMs, pq.EndTimestampMs),
				Step:     h.StepMs,
				Func:     h.Func,
				Grouping: h.Grouping,
				By:       h.By,
				Range:    h.RangeMs,
			}
		}
		queries = append(queries, readQuery{matchers: ms, hints: hints})
	}
	return queries, nil
}

// negotiateReadResponse picks the first of the accepted response types that Strata answers with, and
// SAMPLES when the request names none, as older clients do not.
func negotiateReadResponse(accepted []prompb.ReadRequest_ResponseType) (prompb.ReadRequest_ResponseType, error) {
	if len(accepted) == 0 {
		return prompb.ReadRequest_SAMPLES, nil
	}
	for _, t := range accepted {
		if t == prompb.ReadRequest_SAMPLES || t == prompb.ReadRequest_STREAMED_XOR_CHUNKS {
			return t, nil
		}
	}
	return 0, newReadError(http.StatusBadRequest, "none of the accepted response types %v is supported: Strata answers SAMPLES and STREAMED_XOR_CHUNKS", accepted)
}

var readMatchTypes = map[prompb.LabelMatcher_Type]labels.MatchType{
	prompb.LabelMatcher_EQ:  labels.MatchEqual,
	prompb.LabelMatcher_NEQ: labels.MatchNotEqual,
	prompb.LabelMatcher_RE:  labels.MatchRegexp,
	prompb.LabelMatcher_NRE: labels.MatchNotRegexp,
}

// readMatchers converts a query's matchers; a regular expression that does not compile is refused.
func readMatchers(pbs []*prompb.LabelMatcher) ([]*labels.Matcher, error) {
	ms := make([]*labels.Matcher, 0, len(pbs))
	for _, pb := range pbs {
		t, ok := readMatchTypes[pb.Type]
		if !ok {
			return nil, fmt.Errorf("matcher on %q has unknown type %d", pb.Name, pb.Type)
		}
		m, err := labels.NewMatcher(t, pb.Name, pb.Value)
		if err != nil {
			return nil, fmt.Errorf("invalid matcher %s: %w", readMatcherString(pb, t), err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func readMatcherString(pb *prompb.LabelMatcher, t labels.MatchType) string {
	return fmt.Sprintf("%s%s%q", pb.Name, t, pb.Value)
}

// readRange is the union of the queries' ranges.
func readRange(queries []readQuery) (mint, maxt int64) {
	mint, maxt = math.MaxInt64, math.MinInt64
	for _, q := range queries {
		mint, maxt = min(mint, q.hints.Start), max(maxt, q.hints.End)
	}
	return mint, maxt
}

// readFailure maps an error of the tenant's data to its answer: a tenant's limit is the request's fault
// and not worth retrying (400, what Prometheus answers a read over its sample limit), other errors as the
// query API answers them (querier.SeriesInFlightError 503, timeouts 503, a source's failure 500...).
func (a *PrometheusAPI) readFailure(ctx context.Context, err error) *readError {
	if errors.Is(context.Cause(ctx), errShuttingDown) {
		return newReadError(http.StatusServiceUnavailable, "%v", errShuttingDown)
	}
	var limitErr *validation.LimitError
	if errors.As(err, &limitErr) {
		return newReadError(http.StatusBadRequest, "%v", err)
	}
	return newReadError(storageError(err).typ.status(), "%v", err)
}

// failRead answers a failed read, and logs it when the failure is Strata's.
func (a *PrometheusAPI) failRead(w http.ResponseWriter, err *readError) {
	if err.status >= 500 {
		a.logReadFailure(err)
	}
	writeReadError(w, err)
}

func (a *PrometheusAPI) logReadFailure(err *readError) {
	if a.failureLogs.Allow() {
		a.logger.Warn("remote read failed (at most one query failure line per second)", "status", err.status, "err", err.msg)
	}
}

func writeReadError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var re *readError
	if errors.As(err, &re) {
		status = re.status
	}
	w.Header().Del("Content-Encoding")
	http.Error(w, err.Error(), status)
}
