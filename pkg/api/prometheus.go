package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/stats"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/promjson"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/querycheck"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
	"github.com/strata-metrics/strata/pkg/version"
)

// Error types of the Prometheus HTTP API, with the statuses Prometheus answers them with.
type errorType string

const (
	errorBadData     errorType = "bad_data"
	errorExec        errorType = "execution"
	errorTimeout     errorType = "timeout"
	errorCanceled    errorType = "canceled"
	errorInternal    errorType = "internal"
	errorUnavailable errorType = "unavailable"
	errorNotFound    errorType = "not_found"
)

func (t errorType) status() int {
	switch t {
	case errorBadData:
		return http.StatusBadRequest
	case errorExec:
		return http.StatusUnprocessableEntity
	case errorTimeout, errorUnavailable:
		return http.StatusServiceUnavailable
	case errorCanceled:
		return 499
	case errorNotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.typ, e.err) }

func badData(format string, args ...any) *apiError {
	return &apiError{typ: errorBadData, err: fmt.Errorf(format, args...)}
}

// maxPointsPerSeries is Prometheus' bound on a range query's resolution.
const maxPointsPerSeries = 11000

// MetadataSource returns the metric metadata of the tenant in ctx.
type MetadataSource interface {
	MetricsMetadata(ctx context.Context, metric string, limit, limitPerMetric int) (map[string][]querier.MetricMetadata, error)
}

// PrometheusAPI serves the read endpoints of Prometheus' HTTP API (/api/v1/...) over a queryable, so that
// Grafana and other Prometheus clients work unchanged. The tenant is taken from the request context.
type PrometheusAPI struct {
	engine    promql.QueryEngine
	queryable storage.Queryable
	metadata  MetadataSource
	exemplars ExemplarSource
	cfg       querier.Config
	limits    *validation.Overrides
	logger    *slog.Logger
	now       func() time.Time
	// failureLogs rate-limits the log lines of failed queries.
	failureLogs *rate.Limiter
	// stopping is canceled by StopQueries: queries in flight end, new ones are refused.
	stopping    context.Context
	stopQueries context.CancelFunc
}

// errShuttingDown ends the queries in flight when the process shuts down.
var errShuttingDown = errors.New("this querier is shutting down; retry on another one")

// NewPrometheusAPI returns the handlers. Queries are checked against the tenant's limits before they
// run, and cfg.Timeout bounds each from the moment it arrives: parsing, waiting for a slot, evaluation.
// ingesters answers metric metadata and exemplars; nil answers no exemplars.
func NewPrometheusAPI(engine promql.QueryEngine, queryable storage.Queryable, ingesters IngesterSource, cfg querier.Config, limits *validation.Overrides, logger *slog.Logger) *PrometheusAPI {
	stopping, stop := context.WithCancel(context.Background())
	return &PrometheusAPI{engine: engine, queryable: queryable, metadata: ingesters, exemplars: ingesters, cfg: cfg, limits: limits, logger: logger, now: time.Now,
		failureLogs: rate.NewLimiter(1, 1), stopping: stopping, stopQueries: stop}
}

// StopQueries ends the queries in flight with 503 and refuses new ones, so that a shutdown waits for
// pushes in flight, not for minutes of query evaluation whose answer nobody will get.
func (a *PrometheusAPI) StopQueries() { a.stopQueries() }

// Register adds the endpoints under prefix (e.g. "/prometheus/api/v1") to mux, each wrapped by wrap.
func (a *PrometheusAPI) Register(mux *http.ServeMux, prefix string, wrap func(http.Handler) http.Handler) {
	for path, handler := range map[string]func(*http.Request) (any, annotations.Annotations, *apiError){
		"/query":               a.query,
		"/query_range":         a.queryRange,
		"/series":              a.series,
		"/labels":              a.labelNames,
		"/label/{name}/values": a.labelValues,
		"/metadata":            a.metricMetadata,
		"/format_query":        a.formatQuery,
		"/parse_query":         a.parseQuery,
		"/query_exemplars":     a.queryExemplars,
		"/status/buildinfo":    a.buildInfo,
		"/status/config":       a.statusConfig,
		"/status/flags":        a.statusFlags,
	} {
		mux.Handle(prefix+path, wrap(a.serve(handler)))
	}
	// Remote read speaks protobuf, not the JSON envelope.
	mux.Handle(prefix+"/read", wrap(http.HandlerFunc(a.remoteRead)))
}

type response struct {
	Status    string    `json:"status"`
	Data      any       `json:"data,omitempty"`
	ErrorType errorType `json:"errorType,omitempty"`
	Error     string    `json:"error,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
	Infos     []string  `json:"infos,omitempty"`
}

func (a *PrometheusAPI) serve(f func(*http.Request) (any, annotations.Annotations, *apiError)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeJSON(w, http.StatusMethodNotAllowed, response{Status: "error", ErrorType: errorBadData, Error: "only GET and POST are allowed"})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, response{Status: "error", ErrorType: errorBadData, Error: fmt.Sprintf("parse form: %v", err)})
			return
		}
		data, annos, apiErr := f(r)
		warnings, infos := annos.AsStrings("", 10, 10)
		if apiErr != nil {
			// A flood of failing queries must not become a flood of log lines.
			if apiErr.typ.status() >= 500 && a.failureLogs.Allow() {
				a.logger.Warn("query failed (at most one such line per second)", "path", r.URL.Path, "err", apiErr.err)
			}
			writeJSON(w, apiErr.typ.status(), response{Status: "error", ErrorType: apiErr.typ, Error: apiErr.err.Error(), Warnings: warnings, Infos: infos})
			return
		}
		if raw, ok := data.(json.RawMessage); ok {
			writeBody(w, http.StatusOK, promjson.AppendSuccess(nil, raw, warnings, infos))
			return
		}
		writeJSON(w, http.StatusOK, response{Status: "success", Data: data, Warnings: warnings, Infos: infos})
	})
}

func writeJSON(w http.ResponseWriter, status int, resp response) {
	body, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(response{Status: "error", ErrorType: errorInternal, Error: fmt.Sprintf("encode response: %v", err)})
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     json.RawMessage  `json:"result"`
	// Stats are the engine's timings and sample counts, present when the request has a stats parameter.
	Stats stats.QueryStats `json:"stats,omitempty"`
}

func (a *PrometheusAPI) query(r *http.Request) (any, annotations.Annotations, *apiError) {
	ts, err := parseTimeParam(r, "time", a.now())
	if err != nil {
		return nil, nil, badData("invalid parameter \"time\": %v", err)
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	defer cancel()
	if apiErr := a.checkQuery(ctx, r.FormValue("query"), querycheck.Range{Start: ts, End: ts}); apiErr != nil {
		return nil, nil, apiErr
	}
	opts, apiErr := queryOpts(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	qry, err := a.engine.NewInstantQuery(ctx, errStorageQueryable{a.queryableFor(ctx)}, opts, r.FormValue("query"), ts)
	if err != nil {
		return nil, nil, shutdownError(ctx, newQueryError(err))
	}
	data, annos, apiErr := execQuery(ctx, qry, r.FormValue("stats"))
	return data, annos, shutdownError(ctx, apiErr)
}

func (a *PrometheusAPI) queryRange(r *http.Request) (any, annotations.Annotations, *apiError) {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"start\": %v", err)
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"end\": %v", err)
	}
	if end.Before(start) {
		return nil, nil, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"step\": %v", err)
	}
	if step <= 0 {
		return nil, nil, badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if end.Sub(start)/step > maxPointsPerSeries {
		return nil, nil, badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	defer cancel()
	if apiErr := a.checkQuery(ctx, r.FormValue("query"), querycheck.Range{Start: start, End: end, Step: step}); apiErr != nil {
		return nil, nil, apiErr
	}
	opts, apiErr := queryOpts(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	qry, err := a.engine.NewRangeQuery(ctx, errStorageQueryable{a.queryableFor(ctx)}, opts, r.FormValue("query"), start, end, step)
	if err != nil {
		return nil, nil, shutdownError(ctx, newQueryError(err))
	}
	data, annos, apiErr := execQuery(ctx, qry, r.FormValue("stats"))
	return data, annos, shutdownError(ctx, apiErr)
}

// queryContext bounds a query by -querier.timeout, or by the request's timeout parameter when shorter,
// from now on: the wait for an evaluation slot counts, so a full querier answers 503 instead of hanging.
// StopQueries ends it too.
func (a *PrometheusAPI) queryContext(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	timeout := a.cfg.Timeout
	if v := r.FormValue("timeout"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, nil, badData("invalid parameter \"timeout\": %v", err)
		}
		if d > 0 && d < timeout {
			timeout = d
		}
	}
	if a.stopping.Err() != nil {
		return nil, nil, &apiError{typ: errorUnavailable, err: errShuttingDown}
	}
	withCause, cancelCause := context.WithCancelCause(r.Context())
	ctx, cancelTimeout := context.WithTimeout(withCause, timeout)
	stopAfter := context.AfterFunc(a.stopping, func() { cancelCause(errShuttingDown) })
	return ctx, func() {
		stopAfter()
		cancelTimeout()
		cancelCause(nil)
	}, nil
}

// shutdownError is the answer of a query that StopQueries ended, whatever error the engine made of it.
func shutdownError(ctx context.Context, apiErr *apiError) *apiError {
	if apiErr != nil && errors.Is(context.Cause(ctx), errShuttingDown) {
		return &apiError{typ: errorUnavailable, err: errShuttingDown}
	}
	return apiErr
}

// queryableFor returns the data the tenant in ctx may read: none older than its max_query_lookback.
func (a *PrometheusAPI) queryableFor(ctx context.Context) storage.Queryable {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return a.queryable // the querier refuses it
	}
	// A federated read goes back as far as the tenant with the shortest lookback may.
	var lookback time.Duration
	for _, id := range tenant.IDs(tenantID) {
		if l := time.Duration(a.limits.For(id).MaxQueryLookback); l > 0 && (lookback == 0 || l < lookback) {
			lookback = l
		}
	}
	if lookback > 0 {
		return querier.WithMinTime(a.queryable, timestamp(a.now().Add(-lookback)))
	}
	return a.queryable
}

// checkQuery refuses a query over the tenant's limits (422, with the limit's error ID) or one Strata will
// not parse (400), before the engine parses it.
func (a *PrometheusAPI) checkQuery(ctx context.Context, query string, qr querycheck.Range) *apiError {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return &apiError{typ: errorBadData, err: err}
	}
	// A federated query must be within every one of its tenants' limits.
	for _, id := range tenant.IDs(tenantID) {
		if err = querycheck.Check(query, a.limits.For(id), qr, a.cfg.DefaultEvaluationInterval); err != nil {
			break
		}
	}
	var invalid *querycheck.InvalidQueryError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return badData("invalid parameter \"query\": %v", invalid.Err)
	}
	return &apiError{typ: errorExec, err: err}
}

func queryOpts(r *http.Request) (promql.QueryOpts, *apiError) {
	var lookback time.Duration
	if v := r.FormValue("lookback_delta"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, badData("invalid parameter \"lookback_delta\": %v", err)
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(r.FormValue("stats") == "all", lookback), nil
}

// execQuery runs qry. With any statsParam it adds the query's timings and sample counts to the answer, as
// Prometheus does. stats=all also asks for per-step sample counts (queryOpts); like Prometheus without its
// promql-per-step-stats feature flag, the engine (querier.NewEngine) does not track them.
func execQuery(ctx context.Context, qry promql.Query, statsParam string) (any, annotations.Annotations, *apiError) {
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Warnings, queryError(res.Err)
	}
	// The result's point slices go back to the engine's pools when the query is closed, where a
	// concurrent query reuses them: encode it before that.
	var (
		encoded []byte
		err     error
	)
	if statsParam == "" {
		encoded, err = promjson.AppendQueryData(nil, res.Value)
	} else {
		var result []byte
		if result, err = promjson.AppendResult(nil, res.Value); err == nil {
			encoded, err = json.Marshal(queryData{ResultType: res.Value.Type(), Result: result, Stats: stats.NewQueryStats(qry.Stats())})
		}
	}
	if err != nil {
		return nil, res.Warnings, &apiError{typ: errorInternal, err: fmt.Errorf("encode result: %w", err)}
	}
	return json.RawMessage(encoded), res.Warnings, nil
}

// newQueryError classifies a failure to prepare a query: the engine already honours the request's
// deadline there, and a timeout is not the client's query being wrong.
func newQueryError(err error) *apiError {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return queryError(err)
	}
	return badData("invalid parameter \"query\": %v", err)
}

// queryError classifies an engine error the way Prometheus does.
func queryError(err error) *apiError {
	var (
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
		storErr  promql.ErrStorage
	)
	switch {
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return &apiError{typ: errorCanceled, err: err}
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{typ: errorTimeout, err: err}
	case errors.As(err, &storErr):
		return storageError(storErr.Err)
	}
	return &apiError{typ: errorExec, err: err}
}

func (a *PrometheusAPI) series(r *http.Request) (any, annotations.Annotations, *apiError) {
	matcherSets, apiErr := parseMatchers(r.Form["match[]"])
	if apiErr != nil {
		return nil, nil, apiErr
	}
	if len(matcherSets) == 0 {
		return nil, nil, badData("no match[] parameter provided")
	}
	start, end, limit, apiErr := parseRangeAndLimit(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	q, err := a.queryableFor(r.Context()).Querier(timestamp(start), timestamp(end))
	if err != nil {
		return nil, nil, &apiError{typ: errorExec, err: err}
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: timestamp(start), End: timestamp(end), Func: "series", Limit: hintLimit(limit)}
	sets := make([]storage.SeriesSet, 0, len(matcherSets))
	for _, ms := range matcherSets {
		sets = append(sets, q.Select(r.Context(), true, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	result := []labels.Labels{}
	var warnings annotations.Annotations
	for set.Next() {
		if limit > 0 && len(result) >= limit {
			warnings.Add(errors.New("results truncated due to limit"))
			break
		}
		result = append(result, set.At().Labels())
	}
	warnings.Merge(set.Warnings())
	if err := set.Err(); err != nil {
		return nil, warnings, storageError(err)
	}
	return result, warnings, nil
}

func (a *PrometheusAPI) labelNames(r *http.Request) (any, annotations.Annotations, *apiError) {
	return a.labelStrings(r, func(ctx context.Context, q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, hints, ms...)
	})
}

func (a *PrometheusAPI) labelValues(r *http.Request) (any, annotations.Annotations, *apiError) {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return nil, nil, badData("invalid label name: %q", name)
	}
	return a.labelStrings(r, func(ctx context.Context, q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, hints, ms...)
	})
}

// labelStrings answers /labels and /label/<name>/values: fetch runs once per match[] selector (once
// with none when there is no match[]), and the answers are united, sorted and limited.
func (a *PrometheusAPI) labelStrings(r *http.Request, fetch func(context.Context, storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, annotations.Annotations, error)) (any, annotations.Annotations, *apiError) {
	matcherSets, apiErr := parseMatchers(r.Form["match[]"])
	if apiErr != nil {
		return nil, nil, apiErr
	}
	start, end, limit, apiErr := parseRangeAndLimit(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	q, err := a.queryableFor(r.Context()).Querier(timestamp(start), timestamp(end))
	if err != nil {
		return nil, nil, &apiError{typ: errorExec, err: err}
	}
	defer q.Close()
	hints := &storage.LabelHints{Limit: hintLimit(limit)}
	var all []string
	var warnings annotations.Annotations
	if len(matcherSets) == 0 {
		matcherSets = [][]*labels.Matcher{nil}
	}
	for _, ms := range matcherSets {
		v, w, err := fetch(r.Context(), q, hints, ms)
		warnings.Merge(w)
		if err != nil {
			return nil, warnings, storageError(err)
		}
		all = append(all, v...)
	}
	return truncate(sortedUnique(all), limit, &warnings), warnings, nil
}

func (a *PrometheusAPI) metricMetadata(r *http.Request) (any, annotations.Annotations, *apiError) {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"limit\": %v", err)
	}
	limitPerMetric, err := parseLimit(r.FormValue("limit_per_metric"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"limit_per_metric\": %v", err)
	}
	md, err := a.metadata.MetricsMetadata(r.Context(), r.FormValue("metric"), limit, limitPerMetric)
	if err != nil {
		return nil, nil, storageError(err)
	}
	return md, nil, nil
}

func (a *PrometheusAPI) formatQuery(r *http.Request) (any, annotations.Annotations, *apiError) {
	now := a.now()
	if apiErr := a.checkQuery(r.Context(), r.FormValue("query"), querycheck.Range{Start: now, End: now}); apiErr != nil {
		return nil, nil, apiErr
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"query\": %v", err)
	}
	return expr.Pretty(0), nil, nil
}

// buildInfoAnswer is Prometheus' build information with Mimir's additions: Grafana reads features to
// find that rules and Alertmanager configurations can be edited through the data source (the ruler's
// /prometheus/config/v1/rules, the Alertmanager's /api/v1/alerts), as with Mimir.
type buildInfoAnswer struct {
	version.Info
	Application string            `json:"application"`
	Features    map[string]string `json:"features"`
}

func (a *PrometheusAPI) buildInfo(*http.Request) (any, annotations.Annotations, *apiError) {
	return buildInfoAnswer{
		Info:        version.Get(),
		Application: "Strata",
		Features: map[string]string{
			"ruler_config_api":        "true",
			"alertmanager_config_api": "true",
			"federated_rules":         "false",
		},
	}, nil, nil
}

// storageError is a failure to read from ingesters: the client may retry.
func storageError(err error) *apiError {
	var limitErr *validation.LimitError
	if errors.As(err, &limitErr) {
		return &apiError{typ: errorExec, err: err} // 422: the request is over a limit, retrying won't help
	}
	var overload *querier.SeriesInFlightError
	if errors.As(err, &overload) {
		return &apiError{typ: errorUnavailable, err: err} // 503: the querier is full, retry later
	}
	if errors.Is(err, context.Canceled) {
		return &apiError{typ: errorCanceled, err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{typ: errorTimeout, err: err}
	}
	if status.Code(err) == codes.InvalidArgument {
		// An ingester or store-gateway refused the request itself (a malformed __query_shard__
		// selector): 400, so that neither the client nor the query-frontend retries it.
		return &apiError{typ: errorBadData, err: err}
	}
	return &apiError{typ: errorInternal, err: err}
}

func parseMatchers(values []string) ([][]*labels.Matcher, *apiError) {
	p := parser.NewParser(parser.Options{})
	sets := make([][]*labels.Matcher, 0, len(values))
	for _, v := range values {
		ms, err := p.ParseMetricSelector(v)
		if err != nil {
			return nil, badData("invalid parameter \"match[]\": %v", err)
		}
		sets = append(sets, ms)
	}
	return sets, nil
}

// Bounds used when a request gives no start or end, as in Prometheus.
var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
)

func parseRangeAndLimit(r *http.Request) (start, end time.Time, limit int, apiErr *apiError) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return start, end, 0, badData("invalid parameter \"start\": %v", err)
	}
	end, err = parseTimeParam(r, "end", maxTime)
	if err != nil {
		return start, end, 0, badData("invalid parameter \"end\": %v", err)
	}
	if end.Before(start) {
		return start, end, 0, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	limit, err = parseLimit(r.FormValue("limit"))
	if err != nil {
		return start, end, 0, badData("invalid parameter \"limit\": %v", err)
	}
	return start, end, limit, nil
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid limit", s)
	}
	if n < 0 {
		return 0, errors.New("limit must be non-negative")
	}
	return n, nil
}

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	return parseTime(v)
}

// The times the PromQL engine can evaluate at: it carries them as int64 nanoseconds since 1970, so an
// earlier or later time (year 1, year 9999) silently becomes another one.
var (
	minEvalTime = time.Unix(0, math.MinInt64).UTC()
	maxEvalTime = time.Unix(0, math.MaxInt64).UTC()
)

// parseTime accepts what Prometheus accepts: Unix seconds with an optional fraction (kept to the
// millisecond), or RFC 3339, and the RFC 3339 forms of minTime and maxTime, which clients send to mean
// no bound. Any other time must lie between minEvalTime and maxEvalTime: NaN, ±Inf or 1e30 seconds, which
// Prometheus turns into an arbitrary time, are refused instead.
func parseTime(s string) (time.Time, error) {
	switch s {
	case minTime.Format(time.RFC3339Nano):
		return minTime, nil
	case maxTime.Format(time.RFC3339Nano):
		return maxTime, nil
	}
	var t time.Time
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		// Checked roughly as a float first, whole seconds around the range: NaN, ±Inf and values past
		// int64 convert to arbitrary integers. The exact check follows.
		if !(f >= float64(minEvalTime.Unix()) && f < float64(maxEvalTime.Unix()+1)) {
			return time.Time{}, timeOutOfRange(s)
		}
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC()
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
	}
	if t.Before(minEvalTime) || t.After(maxEvalTime) {
		return time.Time{}, timeOutOfRange(s)
	}
	return t, nil
}

func timeOutOfRange(s string) error {
	return fmt.Errorf("%q is not a time between %s and %s, the times queries can be evaluated at",
		s, minEvalTime.Format(time.RFC3339Nano), maxEvalTime.Format(time.RFC3339Nano))
}

// parseDuration accepts seconds with an optional fraction, or a Prometheus duration such as 1m30s.
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if ts > float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

func timestamp(t time.Time) int64 {
	return t.Unix()*1000 + int64(t.Nanosecond())/int64(time.Millisecond)
}

func sortedUnique(s []string) []string {
	if s == nil {
		return []string{}
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// hintLimit asks storage for one result more than the limit, so that truncate can tell a result cut at
// the limit (which gets a warning) from one that just fits.
func hintLimit(limit int) int {
	if limit > 0 && limit < math.MaxInt {
		return limit + 1
	}
	return limit
}

func truncate(s []string, limit int, warnings *annotations.Annotations) []string {
	if limit > 0 && len(s) > limit {
		warnings.Add(errors.New("results truncated due to limit"))
		return s[:limit]
	}
	return s
}
