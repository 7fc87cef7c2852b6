package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// fakeReceiver is a remote-write endpoint that decodes every body and stores the samples by
// tenant and series; reject, when set, picks requests to answer with a status instead.
type fakeReceiver struct {
	t        *testing.T
	header   string
	mu       sync.Mutex
	requests []prompb.WriteRequest
	samples  map[string]map[string][]prompb.Sample // tenant → selector → samples
	reject   func(n int) int                       // request number → status to answer, 0 accepts
}

func newFakeReceiver(t *testing.T, header string) (*fakeReceiver, *httptest.Server) {
	r := &fakeReceiver{t: t, header: header, samples: map[string]map[string][]prompb.Sample{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (f *fakeReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	require.NoError(f.t, err)
	raw, err := snappy.Decode(nil, body)
	require.NoError(f.t, err)
	var wr prompb.WriteRequest
	require.NoError(f.t, wr.Unmarshal(raw))
	tenant := req.Header.Get(f.header)

	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.requests)
	f.requests = append(f.requests, wr)
	if f.reject != nil {
		if status := f.reject(n); status != 0 {
			w.WriteHeader(status)
			return
		}
	}
	if f.samples[tenant] == nil {
		f.samples[tenant] = map[string][]prompb.Sample{}
	}
	for _, s := range wr.Timeseries {
		key := labelsKey(s.Labels)
		f.samples[tenant][key] = append(f.samples[tenant][key], s.Samples...)
	}
}

var rangeQuery = regexp.MustCompile(`^(\{.*\})\[(\d+)ms\]$`)

// queryAPI serves /api/v1/query for raw range selectors over the received samples, as verify
// sends them.
func (f *fakeReceiver) queryAPI(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		require.Equal(t, "/api/v1/query", req.URL.Path)
		require.NoError(t, req.ParseForm())
		m := rangeQuery.FindStringSubmatch(req.Form.Get("query"))
		require.NotNil(t, m, req.Form.Get("query"))
		window, _ := strconv.ParseInt(m[2], 10, 64)
		at, _ := strconv.ParseFloat(req.Form.Get("time"), 64)
		end := int64(at*1000 + 0.5)

		f.mu.Lock()
		stored := f.samples[req.Header.Get(f.header)][m[1]]
		var values [][2]any
		for _, s := range stored {
			if s.Timestamp > end-window && s.Timestamp <= end {
				values = append(values, [2]any{float64(s.Timestamp) / 1000, strconv.FormatFloat(s.Value, 'f', -1, 64)})
			}
		}
		f.mu.Unlock()
		result := []any{}
		if len(values) > 0 {
			result = append(result, map[string]any{"metric": parseSelector(t, m[1]), "values": values})
		}
		require.NoError(t, json.NewEncoder(w).Encode(map[string]any{"status": "success",
			"data": map[string]any{"resultType": "matrix", "result": result}}))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func parseSelector(t *testing.T, sel string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(strings.Trim(sel, "{}"), ",") {
		name, quoted, ok := strings.Cut(part, "=")
		require.True(t, ok, part)
		v, err := strconv.Unquote(quoted)
		require.NoError(t, err)
		out[name] = v
	}
	return out
}

// dropSample removes one stored sample of some series of tenant and returns the series.
func (f *fakeReceiver) dropSample(tenant string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, ss := range f.samples[tenant] {
		f.samples[tenant][key] = ss[1:]
		return key
	}
	return ""
}
