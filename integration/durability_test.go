package integration

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// ackedSample is a sample the server acknowledged with a 2xx.
type ackedSample struct {
	series string
	ts     int64
	value  float64
}

// TestKillDashNine_AcknowledgedSamplesSurvive pushes continuously, kills the process with SIGKILL in the
// middle of the stream, restarts it on the same data directory and checks that every sample that was
// acknowledged before the kill is returned by the querier.
func TestKillDashNine_AcknowledgedSamplesSurvive(t *testing.T) {
	p := startStrata(t, t.TempDir())
	const (
		tenantID = "durability"
		series   = 20
	)
	base := time.Now().Add(-30 * time.Minute).UnixMilli()

	acked := make(chan []ackedSample, 1000)
	killAfter := make(chan struct{})
	pusherDone := make(chan struct{})
	go func() {
		defer close(pusherDone)
		for i := 0; ; i++ {
			req := &prompb.WriteRequest{}
			var batch []ackedSample
			for s := 0; s < series; s++ {
				ts := prompb.TimeSeries{Labels: []prompb.Label{
					{Name: "__name__", Value: "durability_test_value"},
					{Name: "series", Value: strconv.Itoa(s)},
				}}
				for j := 0; j < 5; j++ {
					t := base + int64(i)*1000 + int64(j)*100
					v := float64(i*1000 + s*10 + j)
					ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
					batch = append(batch, ackedSample{series: strconv.Itoa(s), ts: t, value: v})
				}
				req.Timeseries = append(req.Timeseries, ts)
			}
			code, err := tryPush(p.url("/api/v1/push"), tenantID, req)
			if err != nil || code/100 != 2 {
				return // the process is gone
			}
			acked <- batch
			if i == 50 {
				close(killAfter)
			}
		}
	}()
	<-killAfter
	p.kill()
	<-pusherDone
	close(acked)

	expected := map[string]map[int64]float64{}
	total := 0
	for batch := range acked {
		for _, s := range batch {
			if expected[s.series] == nil {
				expected[s.series] = map[int64]float64{}
			}
			expected[s.series][s.ts] = s.value
			total++
		}
	}
	require.GreaterOrEqual(t, total, 51*series*5)

	p.restart()
	var matrix []matrixSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query", tenantID, url.Values{
		"query": {"durability_test_value[1h]"},
		"time":  {formatTime(time.Now())},
	}, &queryResult{Result: &matrix})
	require.Len(t, matrix, series)

	found := 0
	for _, s := range matrix {
		got := map[int64]float64{}
		for _, v := range s.Values {
			got[v.millis(t)] = v.float(t)
		}
		for ts, val := range expected[s.Metric["series"]] {
			gotVal, ok := got[ts]
			require.True(t, ok, "acknowledged sample of series %s at %d is missing after the restart", s.Metric["series"], ts)
			require.Equal(t, val, gotVal)
			found++
		}
	}
	require.Equal(t, total, found, "every acknowledged sample is back")
	t.Logf("%d acknowledged samples, all returned after kill -9 and restart", total)
}

// tryPush is push without test assertions, for a goroutine that must survive the server's death.
func tryPush(target, tenantID string, req *prompb.WriteRequest) (int, error) {
	raw, err := req.Marshal()
	if err != nil {
		return 0, err
	}
	return postSnappy(target, tenantID, raw)
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}
