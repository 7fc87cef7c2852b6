package ruler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

// fakeFrontend answers instant queries with a real engine over each tenant's TSDB.
func fakeFrontend(t *testing.T, dbs map[string]storage.Queryable, tenants *[]string, mtx *sync.Mutex) *httptest.Server {
	engine := testEngine()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/prometheus/api/v1/query", r.URL.Path)
		require.NoError(t, r.ParseForm())
		id := r.Header.Get("X-Scope-OrgID")
		mtx.Lock()
		*tenants = append(*tenants, id)
		mtx.Unlock()
		secs, err := strconv.ParseFloat(r.Form.Get("time"), 64)
		require.NoError(t, err)
		q, err := engine.NewInstantQuery(r.Context(), dbs[id], nil, r.Form.Get("query"), time.UnixMilli(int64(secs*1000)))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": err.Error()})
			return
		}
		res := q.Exec(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": res.Value.Type(), "result": res.Value}})
	}))
}

func TestRuler_EvaluatesThroughTheQueryFrontendAsTheTenant(t *testing.T) {
	now := time.Now()
	dbs := map[string]storage.Queryable{
		"tenant-a": openTSDB(t, testSample{labels.FromStrings("__name__", "requests", "job", "api"), now.Add(-10 * time.Second), 3}),
		"tenant-b": openTSDB(t, testSample{labels.FromStrings("__name__", "requests", "job", "api"), now.Add(-10 * time.Second), 100}),
	}
	var mtx sync.Mutex
	var asked []string
	frontend := fakeFrontend(t, dbs, &asked, &mtx)
	defer frontend.Close()

	cfg := testConfig(t)
	cfg.QueryFrontendAddress = frontend.URL
	r := newTestRuler(t, cfg, nil, dbs, Dependencies{})
	r.setGroup(t, "tenant-a", "ns", recordingGroup("g", 0, recordRule("job:requests:sum", "sum by (job) (requests)"), recordRule("two", "scalar(vector(2))")))
	r.sync(t)

	require.Eventually(t, func() bool {
		return len(r.pusher.samplesOf("job:requests:sum")) > 0 && len(r.pusher.samplesOf("two")) > 0
	}, waitFor, 10*time.Millisecond)
	s := r.pusher.samplesOf("job:requests:sum")[0]
	require.Equal(t, "tenant-a", s.tenant)
	require.Equal(t, 3.0, s.series.Samples[0].Value, "tenant-a's data, not tenant-b's")
	require.Equal(t, 2.0, r.pusher.samplesOf("two")[0].series.Samples[0].Value)
	mtx.Lock()
	defer mtx.Unlock()
	require.NotEmpty(t, asked)
	for _, id := range asked {
		require.Equal(t, "tenant-a", id)
	}
}

func TestDecodeInstantAnswer(t *testing.T) {
	v, err := decodeInstantAnswer(200, []byte(`{"status":"success","data":{"resultType":"scalar","result":[1700000000.123,"2.5"]}}`))
	require.NoError(t, err)
	require.Equal(t, promql.Vector{{T: 1700000000123, F: 2.5, Metric: labels.EmptyLabels()}}, v)

	v, err = decodeInstantAnswer(200, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1.5,"NaN"]}]}}`))
	require.NoError(t, err)
	require.Len(t, v, 1)
	require.Equal(t, int64(1500), v[0].T)
	require.Equal(t, labels.FromStrings("a", "b"), v[0].Metric)

	for body, want := range map[string]string{
		`{"status":"error","errorType":"bad_data","error":"parse error"}`:                                 "answered 422: parse error",
		`<html>bad gateway</html>`:                                                                        "not the query API's JSON",
		`{"status":"success","data":{"resultType":"matrix","result":[]}}`:                                 "not a matrix",
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}`: "native histograms",
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`:    "decoding a value",
	} {
		_, err := decodeInstantAnswer(422, []byte(body))
		require.ErrorContains(t, err, want, body)
	}
}

func TestRemoteQueryFunc_RefusesOversizedAndFailingAnswers(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"huge": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[` + strings.Repeat(" ", 4096) + `]}}`))
		},
		"unavailable": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"unavailable","error":"too many queries"}`))
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		answers[r.Form.Get("query")](w)
	}))
	defer srv.Close()
	query := remoteQueryFunc(srv.Client(), srv.URL, "tenant-a", 1024)

	_, err := query(t.Context(), "huge", time.Now())
	require.ErrorContains(t, err, "the answer is larger than 1024 bytes")
	_, err = query(t.Context(), "unavailable", time.Now())
	require.ErrorContains(t, err, "answered 503: too many queries")

	srv.Close()
	_, err = query(t.Context(), "huge", time.Now())
	require.ErrorContains(t, err, "query-frontend:")
}
