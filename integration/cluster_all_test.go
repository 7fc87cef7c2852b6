package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// TestCluster_AllInOneReplicas runs three -target=all processes joined by memberlist: any of them takes
// writes and answers queries for the data of all, and losing one changes nothing for the others.
func TestCluster_AllInOneReplicas(t *testing.T) {
	c := &cluster{t: t, dir: t.TempDir()}
	var seeds []string
	ports := []int{freePort(t), freePort(t), freePort(t)}
	for _, p := range ports {
		seeds = append(seeds, fmt.Sprintf("127.0.0.1:%d", p))
	}
	c.joinAddr = strings.Join(seeds, ",")
	var procs []*strataProcess
	for i, port := range ports {
		p := c.newProcess(ingesterID(i), port,
			"-target=all",
			"-ingester.ring.instance-id="+ingesterID(i),
			"-ingester.ring.instance-addr=127.0.0.1",
			"-distributor.ring.instance-addr=127.0.0.1",
			"-ingester.ring.tokens-file-path="+filepath.Join(c.dir, ingesterID(i), "tokens.json"),
		)
		p.startNoWait()
		procs = append(procs, p)
	}
	for _, p := range procs {
		p.waitReady()
		c.waitForActiveIngesters(p, 3)
	}

	pushAt := func(p *strataProcess, value float64) {
		code, body := push(t, p.url("/api/v1/push"), "all", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "all_in_one"}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: value}},
		}}})
		require.Equal(t, http.StatusNoContent, code, body)
	}
	queryAt := func(p *strataProcess) float64 {
		var vector []vectorSample
		mustGetAPI(t, p.url("/prometheus"), "/api/v1/query", "all", url.Values{"query": {"all_in_one"}}, &queryResult{Result: &vector})
		require.Len(t, vector, 1)
		return vector[0].Value.float(t)
	}

	pushAt(procs[0], 1)
	for _, p := range procs {
		require.Equal(t, 1.0, queryAt(p), "every replica answers with the data pushed to another")
	}
	procs[1].kill()
	pushAt(procs[2], 2)
	require.Equal(t, 2.0, queryAt(procs[0]))
}
