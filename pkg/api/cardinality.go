package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"golang.org/x/time/rate"

	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// CardinalitySource answers a tenant's questions about the size of its recent data; querier.Cardinality
// is one. The tenant is in the context.
type CardinalitySource interface {
	TSDBStatus(ctx context.Context, limit int) (*querier.TSDBStatus, error)
	LabelNames(ctx context.Context, matchers []*labels.Matcher, method querier.CountMethod, limit int) (*querier.LabelNamesCardinality, error)
	LabelValues(ctx context.Context, names []string, matchers []*labels.Matcher, method querier.CountMethod, limit int) (*querier.LabelValuesCardinality, error)
	ActiveSeries(ctx context.Context, matchers []*labels.Matcher) ([]labels.Labels, error)
}

// Bounds of the cardinality requests: each one reads every series of the tenant in every ingester, so
// what a client may ask for is bounded, as Mimir bounds it.
const (
	// maxCardinalityLimit is the longest list a request may ask for.
	maxCardinalityLimit = 500
	// defaultCardinalityLimit is Mimir's default length of the cardinality lists.
	defaultCardinalityLimit = 20
	// defaultTSDBStatusLimit is Prometheus' default length of the TSDB status lists.
	defaultTSDBStatusLimit = 10
	// maxCardinalityLabelNames is the most label_names[] one label values request may ask about.
	maxCardinalityLabelNames = 100
	// maxSelectorBytes bounds the selector: its regular expressions run against every series' labels.
	maxSelectorBytes = 16 << 10
)

// CardinalityAPI serves /api/v1/status/tsdb in Prometheus' shape and Mimir's cardinality API
// (/api/v1/cardinality/label_names, label_values and active_series) in Mimir's shapes. Errors are in the
// Prometheus API's envelope.
type CardinalityAPI struct {
	source  CardinalitySource
	timeout time.Duration
	logger  *slog.Logger
	// failureLogs rate-limits the log lines of failed requests.
	failureLogs *rate.Limiter
}

// NewCardinalityAPI returns the handlers over source; timeout bounds each request (the querier's
// -querier.timeout).
func NewCardinalityAPI(source CardinalitySource, timeout time.Duration, logger *slog.Logger) *CardinalityAPI {
	return &CardinalityAPI{source: source, timeout: timeout, logger: logger, failureLogs: rate.NewLimiter(1, 1)}
}

// Register adds the endpoints under prefix (e.g. "/prometheus/api/v1") to mux, each wrapped by wrap, which
// must put the tenant into the request's context (TenantMiddleware).
func (a *CardinalityAPI) Register(mux *http.ServeMux, prefix string, wrap func(http.Handler) http.Handler) {
	// Prometheus serves its TSDB status to GET only; Mimir's cardinality API takes form POSTs too.
	mux.Handle(prefix+"/status/tsdb", wrap(a.serve(a.tsdbStatus, true, http.MethodGet)))
	mux.Handle(prefix+"/cardinality/label_names", wrap(a.serve(a.labelNames, false, http.MethodGet, http.MethodPost)))
	mux.Handle(prefix+"/cardinality/label_values", wrap(a.serve(a.labelValues, false, http.MethodGet, http.MethodPost)))
	mux.Handle(prefix+"/cardinality/active_series", wrap(a.serve(a.activeSeries, false, http.MethodGet, http.MethodPost)))
}

// serve answers f's result, in the Prometheus envelope when envelope is set and as it is otherwise (Mimir's
// cardinality answers are bare objects), and its error in the Prometheus envelope.
func (a *CardinalityAPI) serve(f func(context.Context, *http.Request) (any, *apiError), envelope bool, methods ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowed := false
		for _, m := range methods {
			allowed = allowed || r.Method == m
		}
		if !allowed {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, response{Status: "error", ErrorType: errorBadData, Error: "only " + strings.Join(methods, " and ") + " are allowed"})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, response{Status: "error", ErrorType: errorBadData, Error: fmt.Sprintf("parse form: %v", err)})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
		defer cancel()
		var data any
		apiErr := checkSingleTenant(ctx)
		if apiErr == nil {
			data, apiErr = f(ctx, r)
		}
		if apiErr != nil {
			if apiErr.typ.status() >= 500 && a.failureLogs.Allow() {
				a.logger.Warn("cardinality request failed (at most one such line per second)", "path", r.URL.Path, "err", apiErr.err)
			}
			writeJSON(w, apiErr.typ.status(), response{Status: "error", ErrorType: apiErr.typ, Error: apiErr.err.Error()})
			return
		}
		if envelope {
			writeJSON(w, http.StatusOK, response{Status: "success", Data: data})
			return
		}
		body, err := json.Marshal(data)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, response{Status: "error", ErrorType: errorInternal, Error: fmt.Sprintf("encode response: %v", err)})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// checkSingleTenant refuses a request for several tenants at once (IDs joined by "|"): the answers are
// one tenant's, as in Mimir.
func checkSingleTenant(ctx context.Context) *apiError {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return badData("%v", err)
	}
	if strings.Contains(id, "|") {
		return badData("the cardinality API answers for one tenant at a time, not for %q", id)
	}
	return nil
}

func (a *CardinalityAPI) labelNames(ctx context.Context, r *http.Request) (any, *apiError) {
	matchers, method, limit, apiErr := parseCardinalityParams(r)
	if apiErr != nil {
		return nil, apiErr
	}
	res, err := a.source.LabelNames(ctx, matchers, method, limit)
	if err != nil {
		return nil, cardinalityError(err)
	}
	return res, nil
}

func (a *CardinalityAPI) labelValues(ctx context.Context, r *http.Request) (any, *apiError) {
	names := r.Form["label_names[]"]
	if len(names) == 0 {
		return nil, badData("invalid parameter \"label_names[]\": at least one label name is required")
	}
	if len(names) > maxCardinalityLabelNames {
		return nil, badData("invalid parameter \"label_names[]\": at most %d label names may be asked for, got %d", maxCardinalityLabelNames, len(names))
	}
	for _, name := range names {
		if name == "" || !utf8.ValidString(name) || len(name) > maxSelectorBytes {
			return nil, badData("invalid parameter \"label_names[]\": %q is not a valid label name", name)
		}
	}
	matchers, method, limit, apiErr := parseCardinalityParams(r)
	if apiErr != nil {
		return nil, apiErr
	}
	res, err := a.source.LabelValues(ctx, names, matchers, method, limit)
	if err != nil {
		return nil, cardinalityError(err)
	}
	return res, nil
}

// activeSeriesData is the answer of Mimir's active_series: the label sets under "data".
type activeSeriesData struct {
	Data []labels.Labels `json:"data"`
}

func (a *CardinalityAPI) activeSeries(ctx context.Context, r *http.Request) (any, *apiError) {
	if r.FormValue("selector") == "" {
		return nil, badData("invalid parameter \"selector\": a selector is required")
	}
	matchers, apiErr := parseSelector(r.FormValue("selector"))
	if apiErr != nil {
		return nil, apiErr
	}
	series, err := a.source.ActiveSeries(ctx, matchers)
	if err != nil {
		return nil, cardinalityError(err)
	}
	if series == nil {
		series = []labels.Labels{}
	}
	return activeSeriesData{Data: series}, nil
}

// parseCardinalityParams reads the selector, count_method and limit of Mimir's cardinality requests.
func parseCardinalityParams(r *http.Request) ([]*labels.Matcher, querier.CountMethod, int, *apiError) {
	var matchers []*labels.Matcher
	if s := r.FormValue("selector"); s != "" {
		var apiErr *apiError
		if matchers, apiErr = parseSelector(s); apiErr != nil {
			return nil, "", 0, apiErr
		}
	}
	method := querier.CountMethod(r.FormValue("count_method"))
	switch method {
	case "":
		method = querier.CountInMemory
	case querier.CountInMemory, querier.CountActive:
	default:
		return nil, "", 0, badData("invalid parameter \"count_method\": %q is neither %q nor %q", method, querier.CountInMemory, querier.CountActive)
	}
	limit, apiErr := parseCardinalityLimit(r, defaultCardinalityLimit, 0)
	if apiErr != nil {
		return nil, "", 0, apiErr
	}
	return matchers, method, limit, nil
}

// parseCardinalityLimit reads the limit parameter: def when absent, else between least and
// maxCardinalityLimit.
func parseCardinalityLimit(r *http.Request, def, least int) (int, *apiError) {
	s := r.FormValue("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least || n > maxCardinalityLimit {
		return 0, badData("invalid parameter \"limit\": %q is not a number between %d and %d", s, least, maxCardinalityLimit)
	}
	return n, nil
}

func parseSelector(s string) ([]*labels.Matcher, *apiError) {
	if len(s) > maxSelectorBytes {
		return nil, badData("invalid parameter \"selector\": %d bytes long, at most %d are accepted", len(s), maxSelectorBytes)
	}
	matchers, err := parser.NewParser(parser.Options{}).ParseMetricSelector(s)
	if err != nil {
		return nil, badData("invalid parameter \"selector\": %v", err)
	}
	return matchers, nil
}

// cardinalityError maps a failure to the API's error: an answer too large for the querier is the
// request's fault (422, narrow it); the rest as any read from the ingesters.
func cardinalityError(err error) *apiError {
	var tooLarge *querier.TooLargeError
	if errors.As(err, &tooLarge) {
		return &apiError{typ: errorExec, err: err}
	}
	return storageError(err)
}
