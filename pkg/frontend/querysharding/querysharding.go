// Package querysharding is the query-frontend middleware that splits a shardable PromQL query into
// shard queries, each over the series whose hash falls in its shard (the __query_shard__ selector that
// ingesters and store-gateways honour, see pkg/querysharding), runs them on queriers in parallel, and
// evaluates the rest of the query in the frontend over their merged answers.
//
// A query is shardable where it aggregates (sum, count, min, max, avg, group, topk, bottomk) an
// expression that maps each series on its own (selectors, rate and the other per-series functions,
// arithmetic with constants): every shard computes the aggregation over its series, and the frontend
// aggregates the shards' results again. Everything around those aggregations (binary operations between
// them, histogram_quantile over a sum by le, and so on) is evaluated by a PromQL engine in the frontend.
// Queries with nothing to shard, or whose remaining parts would read data themselves, go to the queriers
// unchanged.
package querysharding

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	shards "github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// Config configures query sharding.
type Config struct {
	ParallelizeShardableQueries bool
	MaxShardedQueries           int
}

// RegisterFlags registers the flags of query sharding.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.BoolVar(&c.ParallelizeShardableQueries, "query-frontend.parallelize-shardable-queries", false,
		"Split shardable queries (sums, counts, averages, min, max, topk... of per-series expressions) into -query-frontend.query-sharding-total-shards queries over a shard of the series each, run in parallel on the queriers. Each shard still looks up every matching series in the index, so this pays off for queries over many series, and costs more than it saves on small ones.")
	f.IntVar(&c.MaxShardedQueries, "query-frontend.query-sharding-max-sharded-queries", 128,
		"Most shard queries one query is split into: a query with several shardable parts gets fewer shards per part, and none below 2.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxShardedQueries < 2 {
		return errors.New("-query-frontend.query-sharding-max-sharded-queries must be at least 2")
	}
	return nil
}

// Reasons for which a query on the shardable paths went to the queriers unsharded.
const (
	reasonAlreadySharded   = "already_sharded"
	reasonParameters       = "parameters"
	reasonNotShardable     = "not_shardable"
	reasonTooManyParts     = "max_sharded_queries"
	reasonExpressionSize   = "max_query_expression_size_bytes"
	reasonNativeHistograms = "native_histograms"
)

// shardingRoundTripper is the middleware New returns.
type shardingRoundTripper struct {
	cfg    Config
	limits *validation.Overrides
	next   http.RoundTripper
	engine *promql.Engine
	parser parser.Parser
	now    func() time.Time

	shardedQueries   prometheus.Counter
	shardQueries     prometheus.Counter
	unshardedQueries *prometheus.CounterVec
}

// New returns the middleware in front of next: it shards the instant and range queries (paths ending in
// /api/v1/query and /api/v1/query_range) of tenants whose query_sharding_total_shards is 2 or more, and
// passes every other request to next unchanged. The tenant is the X-Scope-OrgID header (or, without it,
// the request context's). Every shard query sent to next is a GET of the same path with the query, its
// times and the request's timeout and lookback_delta, and with the request's headers; next must answer
// it as a querier's Prometheus API does. With sharding off, New returns next itself.
func New(cfg Config, limits *validation.Overrides, next http.RoundTripper, reg prometheus.Registerer, logger *slog.Logger) (http.RoundTripper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.ParallelizeShardableQueries {
		return next, nil
	}
	return &shardingRoundTripper{
		cfg:    cfg,
		limits: limits,
		next:   next,
		engine: promql.NewEngine(promql.EngineOpts{
			Logger: logger,
			// The shard answers are already in memory, and the queriers bounded what they read.
			MaxSamples: math.MaxInt,
			// The request's context bounds the evaluation.
			Timeout:       24 * time.Hour,
			LookbackDelta: outerLookback,
		}),
		parser: parser.NewParser(parser.Options{}),
		now:    time.Now,
		shardedQueries: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_frontend_sharded_queries_total",
			Help: "Queries answered by merging shard queries.",
		}),
		shardQueries: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_frontend_shard_queries_total",
			Help: "Shard queries sent to the queriers for sharded queries.",
		}),
		unshardedQueries: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_frontend_unsharded_queries_total",
			Help: "Instant and range queries sent to the queriers unsharded, by reason: not_shardable (nothing to shard, or parts that would read data in the frontend), already_sharded (the query has its own __query_shard__), parameters (stats or other parameters a merged answer cannot honour), max_sharded_queries (too many shardable parts), max_query_expression_size_bytes (the shard queries would be over the tenant's limit), native_histograms (the shards answered with native histograms, which are merged only by asking again unsharded).",
		}, []string{"reason"}),
	}, nil
}

// outerLookback is the lookback of the frontend's evaluation: a shard answer's points are exactly at the
// query's steps, so only a point at the step itself may count.
const outerLookback = time.Millisecond

// RoundTrip implements http.RoundTripper.
func (s *shardingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	instant := strings.HasSuffix(req.URL.Path, "/api/v1/query")
	if !instant && !strings.HasSuffix(req.URL.Path, "/api/v1/query_range") {
		return s.next.RoundTrip(req)
	}
	form, body, ok, err := requestForm(req)
	if err != nil {
		return nil, err
	}
	original := withBody(req, body)
	passThrough := func(reason string) (*http.Response, error) {
		if reason != "" {
			s.unshardedQueries.WithLabelValues(reason).Inc()
		}
		return s.next.RoundTrip(original)
	}
	if !ok {
		return passThrough("") // the querier says what is wrong with the request
	}
	query := form.Get("query")
	expr, err := s.parser.ParseExpr(query)
	if err != nil {
		return passThrough("")
	}
	own, err := ownShard(expr)
	if err != nil {
		return errorResponse(req, http.StatusBadRequest, "bad_data", fmt.Sprintf("invalid parameter \"query\": %v", err))
	}
	if own {
		return passThrough(reasonAlreadySharded)
	}
	tenantID := req.Header.Get(tenant.OrgIDHeader)
	if tenantID == "" {
		tenantID, _ = tenant.FromContext(req.Context())
	}
	if tenantID == "" {
		return passThrough("") // the querier refuses it
	}
	limits := s.limits.For(tenantID)
	if limits.QueryShardingTotalShards < 2 {
		return passThrough("")
	}
	for name := range form {
		if !forwardedParams[name] {
			return passThrough(reasonParameters)
		}
	}
	if strings.Contains(query, reservedPrefix) {
		return passThrough(reasonNotShardable)
	}
	p := planQuery(expr)
	if p == nil {
		return passThrough(reasonNotShardable)
	}
	qr, ok := s.parseRange(form, instant)
	if !ok {
		return passThrough("")
	}
	count := min(limits.QueryShardingTotalShards, s.cfg.MaxShardedQueries/len(p.subtrees))
	if count < 2 {
		return passThrough(reasonTooManyParts)
	}
	jobs := shardJobs(p, uint64(count))
	for _, j := range jobs {
		if limits.MaxQueryExpressionSizeBytes > 0 && len(j.query) > limits.MaxQueryExpressionSizeBytes {
			return passThrough(reasonExpressionSize)
		}
	}

	resp, err := s.runSharded(req, qr, p, jobs, count)
	if errors.Is(err, errNativeHistograms) {
		return passThrough(reasonNativeHistograms)
	}
	if err == nil && resp.StatusCode == http.StatusOK {
		s.shardedQueries.Inc()
	}
	return resp, err
}

// ownShard reports whether expr selects a shard of its own. It is an error when a selector's shard
// matcher is malformed, or two of them disagree.
func ownShard(expr parser.Expr) (bool, error) {
	var (
		own      bool
		firstErr error
	)
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok && firstErr == nil {
			s, _, err := shards.RemoveShardMatcher(vs.LabelMatchers)
			own, firstErr = own || s.Sharded(), err
		}
		return nil
	})
	return own, firstErr
}

// forwardedParams are the parameters a sharded query honours: its shard queries carry them.
var forwardedParams = map[string]bool{
	"query": true, "time": true, "start": true, "end": true, "step": true, "timeout": true, "lookback_delta": true,
}

// queryRange is where a query is evaluated, in milliseconds: at time for an instant query, from start to
// end every step for a range query.
type queryRange struct {
	instant          bool
	time, start, end int64
	step             int64
	params           url.Values // the forwarded parameters other than the query and its times
}

// maxPointsPerSeries is the querier's bound on a range query's resolution.
const maxPointsPerSeries = 11000

// parseRange reads the query's times. It is not ok when they are not what the querier accepts, which
// then answers the query itself, with the error.
func (s *shardingRoundTripper) parseRange(form url.Values, instant bool) (queryRange, bool) {
	qr := queryRange{instant: instant, params: url.Values{}}
	for _, name := range []string{"timeout", "lookback_delta"} {
		if v, ok := form[name]; ok {
			qr.params[name] = v[:1]
		}
	}
	if instant {
		t := s.now()
		if v := form.Get("time"); v != "" {
			var ok bool
			if t, ok = parseTime(v); !ok {
				return qr, false
			}
		}
		qr.time = t.UnixMilli()
		return qr, true
	}
	start, okStart := parseTime(form.Get("start"))
	end, okEnd := parseTime(form.Get("end"))
	step, okStep := parseStep(form.Get("step"))
	if !okStart || !okEnd || !okStep || end.Before(start) || step < time.Millisecond {
		return qr, false
	}
	qr.start, qr.end, qr.step = start.UnixMilli(), end.UnixMilli(), step.Milliseconds()
	if (qr.end-qr.start)/qr.step > maxPointsPerSeries {
		return qr, false
	}
	return qr, true
}

// parseTime reads a time the way the querier does: Unix seconds with a fraction, or RFC 3339. It is kept
// to the millisecond, and to years 1 to 9999, which the shard queries write back in RFC 3339.
func parseTime(s string) (time.Time, bool) {
	var t time.Time
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.Abs(f) > 1e11 {
			return time.Time{}, false
		}
		t = time.UnixMilli(int64(math.Round(f * 1000)))
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, false
	}
	t = t.UTC().Truncate(time.Millisecond)
	return t, t.Year() >= 1 && t.Year() <= 9999
}

// parseStep reads a step the way the querier does: seconds with a fraction, or a Prometheus duration.
func parseStep(s string) (time.Duration, bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if math.IsNaN(d) || d >= math.MaxInt64 || d <= math.MinInt64 {
			return 0, false
		}
		return time.Duration(d).Truncate(time.Millisecond), true
	}
	d, err := model.ParseDuration(s)
	return time.Duration(d).Truncate(time.Millisecond), err == nil
}

// requestForm returns req's parameters as the querier reads them (a POSTed form's values first, then
// the URL's) and req's body, which it reads. It is not ok when the form cannot be parsed.
func requestForm(req *http.Request) (url.Values, []byte, bool, error) {
	form := url.Values{}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody || req.GetBody != nil {
		rc := req.Body
		if req.GetBody != nil {
			var err error
			if rc, err = req.GetBody(); err != nil {
				return nil, nil, false, err
			}
		}
		var err error
		body, err = io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			return nil, nil, false, fmt.Errorf("read the request body: %w", err)
		}
	}
	if req.Method == http.MethodPost && len(body) > 0 {
		if mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mediaType == "application/x-www-form-urlencoded" {
			values, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, body, false, nil
			}
			for k, v := range values {
				form[k] = append(form[k], v...)
			}
		}
	}
	values, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return nil, body, false, nil
	}
	for k, v := range values {
		form[k] = append(form[k], v...)
	}
	return form, body, true, nil
}

// withBody returns req with body as its body again, read as many times as needed.
func withBody(req *http.Request, body []byte) *http.Request {
	if body == nil {
		return req
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return r
}
