package querymiddleware

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// The test data: three days of samples every 30s from an hour that is no day boundary, so queries over
// it cross UTC midnights at various places.
var (
	dataStart      = time.Date(2025, 3, 1, 5, 17, 0, 0, time.UTC)
	dataEnd        = dataStart.Add(3 * 24 * time.Hour)
	scrapeInterval = 30 * time.Second
)

const testTenant = "tenant-1"

// Queries only read the test data, so one database, filled once, serves every test.
var (
	sharedDB     *tsdb.DB
	sharedDBDir  string
	sharedDBOnce sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDB != nil {
		_ = sharedDB.Close()
		_ = os.RemoveAll(sharedDBDir)
	}
	os.Exit(code)
}

func testDB(t testing.TB) *tsdb.DB {
	t.Helper()
	sharedDBOnce.Do(func() {
		dir, err := os.MkdirTemp("", "querymiddleware-test")
		require.NoError(t, err)
		sharedDBDir = dir
		db, err := tsdb.Open(dir, nil, nil, tsdb.DefaultOptions(), nil)
		require.NoError(t, err)
		fillTestData(t, db)
		sharedDB = db
	})
	require.NotNil(t, sharedDB, "the test database failed to open in an earlier test")
	return sharedDB
}

// fillTestData writes series of every shape the middleware must keep exact: counters with resets, a
// gauge with labels that JSON escapes, a classic histogram, series that come and go, a native histogram
// and floats that format unusually.
func fillTestData(t testing.TB, db *tsdb.DB) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	app := db.Appender(context.Background())
	type counter struct {
		ls    labels.Labels
		value float64
	}
	var counters []*counter
	for _, instance := range []string{"a", "b", "c"} {
		for _, code := range []string{"200", "500"} {
			counters = append(counters, &counter{ls: labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", instance, "code", code)})
		}
	}
	bucketBounds := []string{"0.1", "0.5", "1", "5", "+Inf"}
	buckets := make([]*counter, len(bucketBounds))
	for i, le := range bucketBounds {
		buckets[i] = &counter{ls: labels.FromStrings("__name__", "request_duration_seconds_bucket", "job", "api", "le", le)}
	}
	rooms := []labels.Labels{
		labels.FromStrings("__name__", "temperature_celsius", "room", "kitchen", "path", `/a<b>&c"d\ü`),
		labels.FromStrings("__name__", "temperature_celsius", "room", "cellar", "path", "/"),
	}
	weird := labels.FromStrings("__name__", "weird_values")
	weirdValues := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e-300, 1e300, math.Copysign(0, -1), 0.1 + 0.2, 123456789.123456789, -5e-7}
	native := labels.FromStrings("__name__", "rpc_latency_seconds", "service", "checkout")

	for n, ts := 0, dataStart; !ts.After(dataEnd); n, ts = n+1, ts.Add(scrapeInterval) {
		ms := ts.UnixMilli()
		for i, c := range counters {
			c.value += float64(rng.Intn(10 * (i + 1)))
			if i == 3 && n%(7*120) == 0 { // instance b, code 500 restarts every 7 hours
				c.value = 0
			}
			_, err := app.Append(0, c.ls, ms, c.value)
			require.NoError(t, err)
		}
		cumulative := 0.0
		for _, b := range buckets {
			cumulative += float64(rng.Intn(5))
			b.value += cumulative
			_, err := app.Append(0, b.ls, ms, b.value)
			require.NoError(t, err)
		}
		for i, ls := range rooms {
			v := 20 + 5*math.Sin(float64(n)/100+float64(i)) + rng.Float64()/3
			_, err := app.Append(0, ls, ms, v)
			require.NoError(t, err)
		}
		// Batch jobs report only while they run: job k from hour 3k to 3k+2 of each day (UTC).
		for k := 0; k < 6; k++ {
			if hour := ts.Hour(); hour >= 3*k && hour < 3*k+2 {
				_, err := app.Append(0, labels.FromStrings("__name__", "batch_job_last_success", "job", strconv.Itoa(k)), ms, float64(ts.Unix()))
				require.NoError(t, err)
			}
		}
		_, err := app.Append(0, weird, ms, weirdValues[n%len(weirdValues)])
		require.NoError(t, err)
		_, err = app.AppendHistogram(0, native, ms, nativeHistogramAt(n), nil)
		require.NoError(t, err)

		if n%1000 == 999 {
			require.NoError(t, app.Commit())
			app = db.Appender(context.Background())
		}
	}
	require.NoError(t, app.Commit())
}

// nativeHistogramAt is a growing exponential histogram with a zero bucket and positive and negative
// buckets.
func nativeHistogramAt(n int) *histogram.Histogram {
	u := uint64(n)
	pos := []uint64{u, 3 * u, 2*u + u%7, u / 2}
	neg := []uint64{u / 3, u % 11}
	count := u / 5 // zero bucket
	for _, c := range append(append([]uint64(nil), pos...), neg...) {
		count += c
	}
	return &histogram.Histogram{
		Schema:          1,
		Count:           count,
		Sum:             float64(n) * 1.25,
		ZeroThreshold:   0.001,
		ZeroCount:       u / 5,
		PositiveSpans:   []histogram.Span{{Offset: -1, Length: 4}},
		PositiveBuckets: deltas(pos),
		NegativeSpans:   []histogram.Span{{Offset: 2, Length: 2}},
		NegativeBuckets: deltas(neg),
	}
}

func deltas(counts []uint64) []int64 {
	out := make([]int64, len(counts))
	prev := int64(0)
	for i, c := range counts {
		out[i] = int64(c) - prev
		prev = int64(c)
	}
	return out
}

// querierHandler serves Strata's Prometheus API over the test data, as a querier does, under
// /prometheus/api/v1 with multitenancy on, with the default limits.
func querierHandler(t *testing.T) http.Handler {
	t.Helper()
	return querierHandlerWithLimits(t, testLimits(nil))
}

// querierHandlerWithLimits is querierHandler with limits.
func querierHandlerWithLimits(t *testing.T, limits *validation.Overrides) http.Handler {
	t.Helper()
	cfg := querier.Config{
		MaxSamples:                50_000_000,
		Timeout:                   time.Minute,
		MaxConcurrent:             16,
		LookbackDelta:             5 * time.Minute,
		DefaultEvaluationInterval: time.Minute,
	}
	logger := slog.New(slog.DiscardHandler)
	engine := querier.NewEngine(cfg, nil, logger)
	a := api.NewPrometheusAPI(engine, testDB(t), nil, cfg, limits, logger)
	mux := http.NewServeMux()
	a.Register(mux, "/prometheus/api/v1", api.TenantMiddleware(true))
	return mux
}

// recordedRequest is a request the downstream received.
type recordedRequest struct {
	method, query string
	start, end    int64 // milliseconds; 0 when not given
	step          string
	header        http.Header
	params        url.Values
}

// downstream is the middleware's next RoundTripper: the querier's handler called in process, recording
// each request. mutate, when set, may change a request's answer.
type downstream struct {
	handler http.Handler
	mutate  func(*http.Request, *http.Response)

	mu       sync.Mutex
	requests []recordedRequest
}

func (d *downstream) RoundTrip(req *http.Request) (*http.Response, error) {
	form, r, err := readForm(req) // a POST's body is read and put back in r
	if err != nil {
		return nil, err
	}
	rec := recordedRequest{method: r.Method, header: r.Header.Clone(), params: form}
	if form != nil {
		rec.query, rec.step = form.Get("query"), form.Get("step")
		rec.start, _ = parseTimeMillis(form.Get("start"))
		rec.end, _ = parseTimeMillis(form.Get("end"))
	}
	d.mu.Lock()
	d.requests = append(d.requests, rec)
	d.mu.Unlock()

	w := httptest.NewRecorder()
	d.handler.ServeHTTP(w, r)
	resp := w.Result()
	if d.mutate != nil {
		d.mutate(r, resp)
	}
	return resp, nil
}

// takeRequests returns the requests received since the last call.
func (d *downstream) takeRequests() []recordedRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.requests
	d.requests = nil
	return out
}

// testConfig is the middleware's configuration from its flags' defaults, changed by args.
func testConfig(t *testing.T, args ...string) Config {
	t.Helper()
	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(f)
	require.NoError(t, f.Parse(args))
	return cfg
}

// testLimits are the default limits, with changes.
func testLimits(change func(*validation.Limits)) *validation.Overrides {
	l := validation.DefaultLimits()
	if change != nil {
		change(&l)
	}
	return validation.NewOverrides(l, nil)
}

// newTestMiddleware returns the middleware over d, whose clock reads now.
func newTestMiddleware(t *testing.T, cfg Config, limits *validation.Overrides, d http.RoundTripper, now time.Time) (*RangeQueryRoundTripper, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	rt, err := New(cfg, limits, d, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rt.Close()) })
	rt.now = func() time.Time { return now }
	return rt, reg
}

// rangeRequest is a GET of /prometheus/api/v1/query_range for tenant testTenant.
func rangeRequest(t *testing.T, query string, start, end time.Time, step string, extra ...string) *http.Request {
	t.Helper()
	values := url.Values{"query": {query}, "start": {formatMillis(start.UnixMilli())}, "end": {formatMillis(end.UnixMilli())}, "step": {step}}
	for i := 0; i+1 < len(extra); i += 2 {
		values.Add(extra[i], extra[i+1])
	}
	req, err := http.NewRequest(http.MethodGet, "http://frontend/prometheus/api/v1/query_range?"+values.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set(tenant.OrgIDHeader, testTenant)
	return req.WithContext(tenant.NewContext(req.Context(), testTenant))
}

// answer is what a RoundTripper answered.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func roundTrip(t *testing.T, rt http.RoundTripper, req *http.Request) answer {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// directAnswer is the querier's answer to req, without the middleware.
func directAnswer(t *testing.T, handler http.Handler, req *http.Request) answer {
	t.Helper()
	return roundTrip(t, &downstream{handler: handler}, req.Clone(req.Context()))
}

// requireSameAnswer checks that got is the querier's answer want: the same status and the same bytes,
// except that annotations, which the querier writes in no fixed order, may come in another.
func requireSameAnswer(t *testing.T, want, got answer, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	require.Equal(t, want.status, got.status, "%s: %s", msg, got.body)
	type envelope struct {
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
		Infos    []string        `json:"infos"`
	}
	var w, g envelope
	if json.Unmarshal(want.body, &w) == nil && (len(w.Warnings) > 1 || len(w.Infos) > 1) {
		require.NoError(t, json.Unmarshal(got.body, &g), msg)
		require.Equal(t, string(w.Data), string(g.Data), msg)
		require.ElementsMatch(t, w.Warnings, g.Warnings, msg)
		require.ElementsMatch(t, w.Infos, g.Infos, msg)
		return
	}
	if !bytes.Equal(want.body, got.body) {
		at := 0
		for at < len(want.body) && at < len(got.body) && want.body[at] == got.body[at] {
			at++
		}
		excerpt := func(b []byte) string { return string(b[max(0, at-100):min(len(b), at+100)]) }
		require.Failf(t, "answers differ", "first difference at byte %d of %d (want) and %d (got):\nwant …%s…\ngot  …%s…\n%s",
			at, len(want.body), len(got.body), excerpt(want.body), excerpt(got.body), msg)
	}
}

// durationString renders d as a Prometheus duration.
