package distributor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// decodingIngester is a gRPC ingester that decodes every pushed request and records each series'
// samples, as "value@timestamp".
type decodingIngester struct {
	ingesterpb.UnimplementedIngesterServer
	mtx     sync.Mutex
	samples map[string][]string
}

func (g *decodingIngester) Push(_ context.Context, req *ingesterpb.PushRequest) (*ingesterpb.PushResponse, error) {
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(req.WriteRequest); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	g.mtx.Lock()
	defer g.mtx.Unlock()
	for _, ts := range wr.Timeseries {
		key := ""
		for _, l := range ts.Labels {
			key += l.Name + "=" + l.Value + ","
		}
		for _, s := range ts.Samples {
			g.samples[key] = append(g.samples[key], fmt.Sprintf("%g@%d", s.Value, s.Timestamp))
		}
	}
	return &ingesterpb.PushResponse{}, nil
}

// Series passed on as ranges of the received body go out through gRPC while other requests' bodies
// are decoded into recycled buffers: every ingester must get exactly the samples sent, whatever the
// concurrency (run with -race to check the recycling too).
func TestDistributor_ConcurrentPushesOverGRPCArriveIntact(t *testing.T) {
	const (
		ingesters   = 4 // with RF=3 each gets a scattered subset of every request's series
		senders     = 6
		requests    = 20
		seriesCount = 150
	)
	r := &fakeRing{replicationFactor: 3}
	var servers []*decodingIngester
	for i := range ingesters {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer(grpc.ChainUnaryInterceptor(tenant.UnaryServerInterceptor))
		ing := &decodingIngester{samples: map[string][]string{}}
		ingesterpb.RegisterIngesterServer(srv, ing)
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(srv.Stop)
		servers = append(servers, ing)
		r.instances = append(r.instances, ring.InstanceDesc{ID: "ingester-" + strconv.Itoa(i), Addr: l.Addr().String(), State: ring.ACTIVE})
	}
	var clientCfg grpcclient.Config
	clientCfg.MaxRecvMsgSize, clientCfg.MaxSendMsgSize = 1<<20, 1<<20
	pool := client.NewPool(clientCfg, nil, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = pool.Close() })
	reg := prometheus.NewRegistry()
	d, err := New(Config{ReplicationFactor: 3, MaxRecvMsgSize: 1 << 20, RemoteTimeout: 10 * time.Second}, validation.NewOverrides(testLimits(), nil), nil, r, pool,
		validation.NewDiscardedSamples(reg), validation.NewDiscardedMetadata(reg), reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	d.now = func() time.Time { return testNow }
	handler := tenant.Middleware(true)(d)

	now := testNow.UnixMilli()
	future := testNow.Add(time.Hour).UnixMilli() // dropped: its series is then encoded again
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for q := range requests {
				req := &prompb.WriteRequest{}
				for i := range seriesCount {
					id := (s*requests+q)*seriesCount + i
					ts := prompb.TimeSeries{
						Labels:  []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "id", Value: strconv.Itoa(id)}},
						Samples: []prompb.Sample{{Value: float64(id), Timestamp: now}},
					}
					if i%10 == 3 {
						ts.Samples = append(ts.Samples, prompb.Sample{Value: -1, Timestamp: future})
					}
					req.Timeseries = append(req.Timeseries, ts)
				}
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, newPushRequest(t, tenantA, encodeRequest(t, req)))
				if rec.Code != http.StatusBadRequest { // the future samples are reported
					t.Errorf("push %d/%d: status %d: %s", s, q, rec.Code, rec.Body)
				}
			}
		})
	}
	wg.Wait()

	// A push returns at quorum; the last replica's write may still be on its way.
	total := senders * requests * seriesCount
	received := func() int {
		n := 0
		for _, ing := range servers {
			ing.mtx.Lock()
			n += len(ing.samples)
			ing.mtx.Unlock()
		}
		return n
	}
	require.Eventually(t, func() bool { return received() >= 3*total }, 10*time.Second, 10*time.Millisecond)

	copies := map[string]int{}
	for _, ing := range servers {
		ing.mtx.Lock()
		for key, samples := range ing.samples {
			copies[key]++
			var id int
			_, err := fmt.Sscanf(key, "__name__=m,id=%d,", &id)
			require.NoError(t, err, key)
			require.Equal(t, []string{fmt.Sprintf("%d@%d", id, now)}, samples, key)
		}
		ing.mtx.Unlock()
	}
	require.Len(t, copies, total)
	for key, n := range copies {
		require.Equal(t, 3, n, key)
	}
}
