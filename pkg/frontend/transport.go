package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/strata-metrics/strata/pkg/frontend/frontendpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// RoundTrip implements http.RoundTripper: it runs r on a querier through the queue, as the tenant in r's
// X-Scope-OrgID header, and returns the querier's answer. A querier that fails (5xx other than a timeout)
// or goes away is replaced by another, up to -query-frontend.max-retries-per-request times. This is the
// bottom of the middleware chain: the split, cached and sharded parts of a query all arrive here.
func (f *Frontend) RoundTrip(r *http.Request) (*http.Response, error) {
	tenantID := r.Header.Get(tenant.OrgIDHeader)
	if tenantID == "" {
		return nil, errors.New("a request to the queriers needs the X-Scope-OrgID header")
	}
	body, err := requestBody(r)
	if err != nil {
		return nil, err
	}
	httpReq := &frontendpb.HTTPRequest{Method: r.Method, Url: r.URL.RequestURI(), Body: body}
	for name, values := range r.Header {
		httpReq.Headers = append(httpReq.Headers, &frontendpb.Header{Name: name, Values: values})
	}
	stats := StatsFromContext(r.Context())
	// At most max_query_parallelism parts of the query are queued or running at once.
	if slots := parallelismFrom(r.Context()); slots != nil {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	for attempt := 0; ; attempt++ {
		o := f.schedule(r.Context(), tenantID, httpReq)
		stats.addQueued(o.queued)
		if o.err == nil {
			stats.addResult(o.result)
		}
		if attempt < f.cfg.MaxRetries && r.Context().Err() == nil && retryable(o) {
			f.retries.Inc()
			continue
		}
		if o.err != nil {
			return nil, o.err
		}
		return toHTTPResponse(r, o.result.GetResponse()), nil
	}
}

// requestBody returns r's body, from GetBody when a middleware has already read the body itself.
func requestBody(r *http.Request) ([]byte, error) {
	rc := r.Body
	if r.GetBody != nil {
		var err error
		if rc, err = r.GetBody(); err != nil {
			return nil, err
		}
	}
	if rc == nil || rc == http.NoBody {
		return nil, nil
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// retryable says whether another querier may succeed where this attempt failed: the querier went away,
// or answered a 5xx that is not a timeout (a timeout would only take as long again).
func retryable(o outcome) bool {
	if o.err != nil {
		return errors.Is(o.err, errQuerierGone)
	}
	resp := o.result.GetResponse()
	if resp.GetStatus()/100 != 5 {
		return false
	}
	var envelope struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(resp.GetBody(), &envelope) == nil && envelope.ErrorType == "timeout" {
		return false
	}
	return true
}

func toHTTPResponse(r *http.Request, resp *frontendpb.HTTPResponse) *http.Response {
	header := make(http.Header, len(resp.GetHeaders()))
	for _, h := range resp.GetHeaders() {
		header[h.GetName()] = h.GetValues()
	}
	return NewResponse(r, int(resp.GetStatus()), header, resp.GetBody())
}

// NewResponse is an answer to req whose body is held in memory, as the middlewares and the queue give.
func NewResponse(req *http.Request, status int, header http.Header, body []byte) *http.Response {
	header = header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// Stats add up what the querier requests of one query (its splits, shards and retries) waited and read.
type Stats struct {
	mu            sync.Mutex
	Requests      int
	QueueTime     time.Duration
	QuerierTime   time.Duration
	FetchedSeries int64
	FetchedChunks int64
	FetchedBytes  int64
}

type statsKey struct{}

type parallelismKey struct{}

// contextWithParallelism returns ctx whose RoundTrips hold one of n slots each.
func contextWithParallelism(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, parallelismKey{}, make(chan struct{}, n))
}

func parallelismFrom(ctx context.Context) chan struct{} {
	slots, _ := ctx.Value(parallelismKey{}).(chan struct{})
	return slots
}

// ContextWithStats returns ctx carrying s, which RoundTrip adds to.
func ContextWithStats(ctx context.Context, s *Stats) context.Context {
	return context.WithValue(ctx, statsKey{}, s)
}

// StatsFromContext returns the Stats ctx carries, or nil; a nil *Stats ignores additions.
func StatsFromContext(ctx context.Context) *Stats {
	s, _ := ctx.Value(statsKey{}).(*Stats)
	return s
}

func (s *Stats) addQueued(d time.Duration) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.QueueTime += d
}

func (s *Stats) addResult(r *frontendpb.Result) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests++
	st := r.GetStats()
	s.QuerierTime += time.Duration(st.GetWallTimeSeconds() * float64(time.Second))
	s.FetchedSeries += st.GetFetchedSeries()
	s.FetchedChunks += st.GetFetchedChunks()
	s.FetchedBytes += st.GetFetchedChunkBytes()
}

// serverTiming renders the statistics as a Server-Timing header value, which browsers' developer tools
// and curl -v show: durations in milliseconds, counts in descriptions.
func (s *Stats) serverTiming(total time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 3, 64) }
	return fmt.Sprintf(`total;dur=%s, queue;dur=%s, querier;dur=%s, querier-requests;desc="%d", fetched-series;desc="%d", fetched-chunks;desc="%d", fetched-bytes;desc="%d"`,
		ms(total), ms(s.QueueTime), ms(s.QuerierTime), s.Requests, s.FetchedSeries, s.FetchedChunks, s.FetchedBytes)
}
