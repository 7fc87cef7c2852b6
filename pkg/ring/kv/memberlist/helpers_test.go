package memberlist

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// convergeTimeout bounds how long tests wait for gossip; generous because the test machine is shared.
const convergeTimeout = 30 * time.Second

const ringKey = "ingester-ring"

// testConfig is the flag defaults, on 127.0.0.1 with a free port and short backoffs.
func testConfig() Config {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.PanicOnError))
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.GossipInterval = 100 * time.Millisecond
	cfg.MinJoinBackoff = 20 * time.Millisecond
	cfg.MaxJoinBackoff = 200 * time.Millisecond
	cfg.LeaveTimeout = 5 * time.Second
	return cfg
}

func newTestKV(t *testing.T, cfg Config) *KV {
	t.Helper()
	k, err := NewKV(cfg, []kv.Codec{ring.DescCodec{}}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return k
}

// startKV starts a KV that joins the given addresses, and stops it when the test ends.
func startKV(t *testing.T, cfg Config, join ...string) *KV {
	t.Helper()
	cfg.Join = join
	k := newTestKV(t, cfg)
	require.NoError(t, k.Start(context.Background()))
	t.Cleanup(func() { _ = k.Stop(context.Background()) })
	return k
}

// startCluster starts n KVs that all join the first, and waits until each sees all of them.
func startCluster(t *testing.T, n int, mutate func(*Config)) []*KV {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	kvs := []*KV{startKV(t, cfg)}
	for range n - 1 {
		kvs = append(kvs, startKV(t, cfg, kvs[0].Addr()))
	}
	require.Eventually(t, func() bool {
		for _, k := range kvs {
			if k.numMembers() != n {
				return false
			}
		}
		return true
	}, convergeTimeout, 20*time.Millisecond, "members did not all see each other")
	return kvs
}

func instance(id string, ts time.Time) ring.InstanceDesc {
	return ring.InstanceDesc{ID: id, Addr: id + ":9095", State: ring.ACTIVE, Tokens: []uint32{1, 2, 3},
		Timestamp: ts.UnixMilli(), RegisteredTimestamp: ts.UnixMilli()}
}

// addInstance is a CAS function registering an instance, as a lifecycler does.
func addInstance(id string) func(any) (any, bool, error) {
	return func(in any) (any, bool, error) {
		d, _ := in.(*ring.Desc)
		if d == nil {
			d = ring.NewDesc()
		}
		d.Instances[id] = instance(id, time.Now())
		return d, false, nil
	}
}

// removeInstance is a CAS function deleting an instance; the merge turns it into a tombstone.
func removeInstance(id string) func(any) (any, bool, error) {
	return func(in any) (any, bool, error) {
		d, _ := in.(*ring.Desc)
		if d == nil {
			return nil, false, fmt.Errorf("no ring")
		}
		delete(d.Instances, id)
		return d, false, nil
	}
}

func ringClient(k *KV) kv.Client { return k.Client(ring.DescCodec{}) }

// getDesc returns the ring descriptor of k, empty if there is none yet.
func getDesc(t *testing.T, k *KV) *ring.Desc {
	t.Helper()
	v, err := ringClient(k).Get(context.Background(), ringKey)
	require.NoError(t, err)
	if v == nil {
		return ring.NewDesc()
	}
	return v.(*ring.Desc)
}

// converged reports whether every KV holds the same descriptor and check accepts it.
func converged(t *testing.T, kvs []*KV, check func(*ring.Desc) bool) bool {
	first := getDesc(t, kvs[0])
	if !check(first) {
		return false
	}
	for _, k := range kvs[1:] {
		d := getDesc(t, k)
		if len(d.Instances) != len(first.Instances) {
			return false
		}
		for id, inst := range first.Instances {
			other, ok := d.Instances[id]
			if !ok || other.Timestamp != inst.Timestamp || other.State != inst.State {
				return false
			}
		}
	}
	return true
}
