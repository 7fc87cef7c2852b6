package frontend

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// BenchmarkFrontend_PassThroughInstantQuery measures what the query-frontend adds to an instant query it
// passes through: HTTP in, the queue, the gRPC round trip to a querier worker and back, HTTP out. The
// querier's API here answers at once, so the time per operation is the overhead alone (plus one local
// HTTP request, as a client's).
func BenchmarkFrontend_PassThroughInstantQuery(b *testing.B) {
	t := &testing.T{}
	s := newTestSetup(t, defaultConfig(), nil, time.Minute)
	b.Cleanup(func() { s.http.Close() })
	answer := []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"api"},"value":[1700000000,"1"]}]}}`)
	s.startQuerier(t, "q1", 4, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	url := s.http.URL + "/prometheus/api/v1/query?query=up&time=1700000000"
	client := &http.Client{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set(tenant.OrgIDHeader, "bench")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
