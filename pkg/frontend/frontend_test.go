package frontend

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/frontend/frontendpb"
	"github.com/strata-metrics/strata/pkg/querier/worker"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// testSetup is a frontend serving HTTP, with queriers' workers connected over real gRPC.
type testSetup struct {
	frontend *Frontend
	handler  *Handler
	addr     string // the frontend's gRPC address
	http     *httptest.Server
}

func defaultConfig() Config {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	return cfg
}

func newTestSetup(t *testing.T, cfg Config, limits *validation.Overrides, timeout time.Duration) *testSetup {
	t.Helper()
	if limits == nil {
		limits = validation.NewOverrides(validation.DefaultLimits(), nil)
	}
	logger := slog.New(slog.DiscardHandler)
	f := New(cfg, limits, prometheus.NewRegistry(), logger)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	frontendpb.RegisterFrontendServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		_ = f.Stop(context.Background())
		srv.Stop()
	})
	handler := NewHandler(cfg, limits, f, timeout, prometheus.NewRegistry(), logger)
	ts := httptest.NewServer(tenant.Middleware(true)(handler))
	t.Cleanup(ts.Close)
	return &testSetup{frontend: f, handler: handler, addr: lis.Addr().String(), http: ts}
}

// startQuerier connects a querier whose API is handler, with concurrency worker streams.
func (s *testSetup) startQuerier(t *testing.T, id string, concurrency int, handler http.Handler) *worker.Worker {
	t.Helper()
	var cfg worker.Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.FrontendAddress, cfg.QuerierID = s.addr, id
	require.NoError(t, cfg.Validate())
	w := worker.New(cfg, concurrency, handler, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

func (s *testSetup) waitForWorkers(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return s.frontend.workers.Load() == int64(n) }, 10*time.Second, 5*time.Millisecond)
}

func get(t *testing.T, u, tenantID string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set(tenant.OrgIDHeader, tenantID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// echo answers with the tenant, method, path, query and body it received.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo", "yes")
	if r.URL.Query().Get("query") == "cached" {
		w.Header().Set("X-Strata-Cache", "partial") // as the results cache's middleware marks its answers
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, r.Header.Get(tenant.OrgIDHeader)+" "+r.Method+" "+r.URL.Path+" "+r.URL.RawQuery+" "+string(body))
})

func TestFrontend_RequestsReachAQuerierAndComeBackWhole(t *testing.T) {
	s := newTestSetup(t, defaultConfig(), nil, 10*time.Second)
	s.startQuerier(t, "q1", 2, echo)
	s.waitForWorkers(t, 2)

	status, header, body := get(t, s.http.URL+"/prometheus/api/v1/query?query=up&time=10", "team-a")
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, "team-a GET /prometheus/api/v1/query query=up&time=10 ", body)
	require.Equal(t, "yes", header.Get("X-Echo"))
	require.Contains(t, header.Get("Server-Timing"), "queue;dur=")
	require.Contains(t, header.Get("Server-Timing"), `querier-requests;desc="1"`)
	require.NotContains(t, header.Get("Server-Timing"), "cache;", "no cache was asked")
	_, header, _ = get(t, s.http.URL+"/prometheus/api/v1/query_range?query=cached", "team-a")
	require.Contains(t, header.Get("Server-Timing"), `cache;desc="partial"`)

	form := url.Values{"query": {"sum(rate(x[5m]))"}}.Encode()
	req, err := http.NewRequest(http.MethodPost, s.http.URL+"/prometheus/api/v1/query", strings.NewReader(form))
	require.NoError(t, err)
	req.Header.Set(tenant.OrgIDHeader, "team-b")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, "team-b POST /prometheus/api/v1/query  "+form, string(got))
}

func TestFrontend_RefusesBadRequests(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxBodySize = 100
	s := newTestSetup(t, cfg, nil, 10*time.Second)
	s.startQuerier(t, "q1", 1, echo)

	req, _ := http.NewRequest(http.MethodPut, s.http.URL+"/prometheus/api/v1/query", nil)
	req.Header.Set(tenant.OrgIDHeader, "a")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	req, _ = http.NewRequest(http.MethodPost, s.http.URL+"/prometheus/api/v1/query", strings.NewReader(strings.Repeat("x", 101)))
	req.Header.Set(tenant.OrgIDHeader, "a")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Contains(t, string(body), "-query-frontend.max-body-size")
}

func TestFrontend_TimesOutInTheQueueAndRefusesBeyondMaxOutstanding(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxOutstandingPerTenant = 1
	s := newTestSetup(t, cfg, nil, 300*time.Millisecond)
	// No querier: requests wait in the queue until the timeout.
	results := make(chan int, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, _ := get(t, s.http.URL+"/prometheus/api/v1/query?query=up", "a")
			results <- status
		}()
	}
	wg.Wait()
	close(results)
	var statuses []int
	for st := range results {
		statuses = append(statuses, st)
	}
	require.ElementsMatch(t, []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}, statuses)

	status, _, body := get(t, s.http.URL+"/prometheus/api/v1/query?query=up", "a")
	require.Equal(t, http.StatusServiceUnavailable, status, "the timed-out request left the queue")
	require.Contains(t, body, `"errorType":"timeout"`)
}

func TestFrontend_RetriesAFailedQuerierAndNotATimeout(t *testing.T) {
	s := newTestSetup(t, defaultConfig(), nil, 10*time.Second)
	var calls atomic.Int32
	s.startQuerier(t, "q1", 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case r.URL.Query().Get("query") == "timeout":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"timeout","error":"query timed out"}`)
		case n == 1:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"internal","error":"boom"}`)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	status, _, body := get(t, s.http.URL+"/prometheus/api/v1/query?query=up", "a")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok", body)
	require.EqualValues(t, 2, calls.Load())

	calls.Store(10)
	status, _, _ = get(t, s.http.URL+"/prometheus/api/v1/query?query=timeout", "a")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.EqualValues(t, 11, calls.Load(), "a timeout is not retried")
}

func TestFrontend_ClientLeavingCancelsTheQueryOnTheQuerier(t *testing.T) {
	s := newTestSetup(t, defaultConfig(), nil, 10*time.Second)
	started, canceled := make(chan struct{}), make(chan struct{})
	s.startQuerier(t, "q1", 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("query") != "slow" {
			_, _ = io.WriteString(w, "fast")
			return
		}
		close(started)
		<-r.Context().Done()
		close(canceled)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.http.URL+"/prometheus/api/v1/query?query=slow", nil)
	req.Header.Set(tenant.OrgIDHeader, "a")
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the querier kept running the query of a client that left")
	}
	// The worker's only stream is free again.
	status, _, body := get(t, s.http.URL+"/prometheus/api/v1/query?query=next", "a")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "fast", body)
}

func TestFrontend_AQuerierGoingAwayIsReplaced(t *testing.T) {
	s := newTestSetup(t, defaultConfig(), nil, 10*time.Second)
	var stopFirst func()
	started := make(chan struct{})
	first := s.startQuerier(t, "q1", 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	stopFirst = func() { _ = first.Stop(context.Background()) }
	s.waitForWorkers(t, 1)

	done := make(chan string, 1)
	go func() {
		status, _, body := get(t, s.http.URL+"/prometheus/api/v1/query?query=up", "a")
		done <- fmt.Sprint(status, " ", body)
	}()
	<-started
	s.startQuerier(t, "q2", 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "from q2")
	}))
	stopFirst()
	select {
	case body := <-done:
		require.Equal(t, "200 from q2", body)
	case <-time.After(10 * time.Second):
		t.Fatal("the query was not sent to the other querier")
	}
}

func TestFrontend_OneTenantsBurstDoesNotDelayAnother(t *testing.T) {
	s := newTestSetup(t, defaultConfig(), nil, 30*time.Second)
	release := make(chan struct{})
	s.startQuerier(t, "q1", 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(tenant.OrgIDHeader) == "flood" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	s.waitForWorkers(t, 2)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			get(t, s.http.URL+"/prometheus/api/v1/query?query=slow", "flood")
		}()
	}
	require.Eventually(t, func() bool {
		return queueLength(s.frontend, "flood") >= 48
	}, 10*time.Second, 5*time.Millisecond)
	// Both streams are busy with flood's queries; steady's query is next in turn once one frees.
	done := make(chan int, 1)
	go func() {
		status, _, _ := get(t, s.http.URL+"/prometheus/api/v1/query?query=up", "steady")
		done <- status
	}()
	require.Eventually(t, func() bool { return queueLength(s.frontend, "steady") == 1 }, 10*time.Second, time.Millisecond)
	release <- struct{}{} // one flood query ends
	select {
	case status := <-done:
		require.Equal(t, http.StatusOK, status)
	case <-time.After(10 * time.Second):
		t.Fatal("steady's query waited behind flood's queue")
	}
	close(release)
	wg.Wait()
}

func queueLength(f *Frontend, tenantID string) int {
	return f.queue.Len(tenantID)
}

func TestFrontend_BoundsTheRequestBytesItHolds(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxBodySize, cfg.MaxInflightBodyBytes = 1000, 2500
	s := newTestSetup(t, cfg, nil, 10*time.Second)
	release := make(chan struct{})
	s.startQuerier(t, "q1", 4, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "ok")
	}))
	post := func() int {
		req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/prometheus/api/v1/query", strings.NewReader("query="+strings.Repeat("x", 994)))
		req.Header.Set(tenant.OrgIDHeader, "a")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	statuses := make(chan int, 2)
	for range 2 {
		go func() { statuses <- post() }()
	}
	// Two 1000-byte bodies are held; a third would pass 2500.
	require.Eventually(t, func() bool { return s.handler.bodyBytes.Load() == 2000 }, 10*time.Second, time.Millisecond)
	require.Equal(t, http.StatusServiceUnavailable, post())
	close(release)
	require.Equal(t, http.StatusOK, <-statuses)
	require.Equal(t, http.StatusOK, <-statuses)
	require.Equal(t, http.StatusOK, post(), "the bytes are released with the answers")
}

// fanOut sends n copies of each request to next at once, as the split and sharding middlewares do.
type fanOut struct {
	next http.RoundTripper
	n    int
}

func (f fanOut) RoundTrip(r *http.Request) (*http.Response, error) {
	var wg sync.WaitGroup
	errs := make(chan error, f.n)
	for range f.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := f.next.RoundTrip(r.Clone(r.Context()))
			if err == nil {
				_ = resp.Body.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("all parts done"))}, nil
}

func TestFrontend_OneQuerysPartsAreBoundedByMaxQueryParallelism(t *testing.T) {
	defaults := validation.DefaultLimits()
	defaults.MaxQueryParallelism = 3
	limits := validation.NewOverrides(defaults, nil)
	cfg := defaultConfig()
	cfg.MaxOutstandingPerTenant = 5 // fewer than the parts: without the bound, the query's own parts would get 429
	logger := slog.New(slog.DiscardHandler)
	s := newTestSetup(t, cfg, limits, 10*time.Second)
	var running, most atomic.Int32
	s.startQuerier(t, "q1", 10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond) // long enough for the parts to overlap
		running.Add(-1)
		_, _ = io.WriteString(w, "part")
	}))
	s.waitForWorkers(t, 10)
	handler := NewHandler(cfg, limits, fanOut{next: s.frontend, n: 30}, 10*time.Second, prometheus.NewRegistry(), logger)
	ts := httptest.NewServer(tenant.Middleware(true)(handler))
	defer ts.Close()

	status, _, body := get(t, ts.URL+"/prometheus/api/v1/query_range?query=up", "a")
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "all parts done", body)
	require.EqualValues(t, 3, most.Load(), "at most max_query_parallelism parts at once, and that many used")
}

func TestFrontend_ProcessRefusesAStreamWithoutHello(t *testing.T) {
	s := newTestSetup(t, defaultConfig(), nil, time.Second)
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	stream, err := frontendpb.NewFrontendClient(conn).Process(context.Background())
	require.NoError(t, err)
	// A result for a query it was never sent, instead of a Hello.
	require.NoError(t, stream.Send(&frontendpb.QuerierMessage{Msg: &frontendpb.QuerierMessage_Result{Result: &frontendpb.Result{QueryId: 7}}}))
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Zero(t, s.frontend.queue.Queriers(), "it never counted as a querier")
}

func TestFrontend_AWorkerThatNeverAnswersHoldsOnlyItsOwnQuery(t *testing.T) {
	s := newTestSetup(t, defaultConfig(), nil, 300*time.Millisecond)
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	stream, err := frontendpb.NewFrontendClient(conn).Process(context.Background())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&frontendpb.QuerierMessage{Msg: &frontendpb.QuerierMessage_Hello{Hello: &frontendpb.Hello{QuerierId: "silent"}}}))
	s.waitForWorkers(t, 1)

	// The silent worker takes the query and never answers: the client gets its timeout, not a hang.
	status503, _, body := get(t, s.http.URL+"/prometheus/api/v1/query?query=up", "a")
	require.Equal(t, http.StatusServiceUnavailable, status503)
	require.Contains(t, body, `"errorType":"timeout"`)
	msg, err := stream.Recv()
	require.NoError(t, err)
	require.NotNil(t, msg.GetQuery(), "it was sent the query")
	msg, err = stream.Recv()
	require.NoError(t, err)
	require.Equal(t, msg.GetQuery().GetId(), uint64(0))
	require.NotNil(t, msg.GetCancel(), "and then told to stop it")

	// A real querier still serves the next query.
	s.startQuerier(t, "q1", 1, echo)
	code, _, _ := get(t, s.http.URL+"/prometheus/api/v1/query?query=up", "a")
	require.Equal(t, http.StatusAccepted, code)
}
