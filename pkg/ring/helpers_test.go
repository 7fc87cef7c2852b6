package ring

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

// testNow is the fixed clock of ring tests: heartbeats are stamped relative to it.
var testNow = time.Unix(1_700_000_000, 0)

// inst builds an ACTIVE instance heartbeating at testNow.
func inst(id, zone string, tokens ...uint32) InstanceDesc {
	return InstanceDesc{ID: id, Addr: id + ":9095", Zone: zone, State: ACTIVE, Tokens: tokens,
		Timestamp: testNow.UnixMilli(), RegisteredTimestamp: testNow.Add(-time.Hour).UnixMilli()}
}

func descOf(instances ...InstanceDesc) *Desc {
	d := NewDesc()
	for _, i := range instances {
		d.Instances[i.ID] = i
	}
	return d
}

// generatedDesc has n ACTIVE instances with random tokens, spread round-robin over zones.
func generatedDesc(n, tokens int, zones ...string) *Desc {
	d := NewDesc()
	var taken []uint32
	for i := range n {
		zone := ""
		if len(zones) > 0 {
			zone = zones[i%len(zones)]
		}
		ts := GenerateTokens(tokens, taken)
		taken = append(taken, ts...)
		in := inst(fmt.Sprintf("ingester-%d", i), zone, ts...)
		d.Instances[in.ID] = in
	}
	return d
}

// newTestRing returns a ring showing desc, with the clock at testNow. It is not started: tests that need
// the watch start it themselves.
func newTestRing(t testing.TB, cfg Config, desc *Desc) *Ring {
	t.Helper()
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = time.Minute
	}
	r, err := New(cfg, "ingester", "ring", inmemory.New(DescCodec{}), nil, nil)
	require.NoError(t, err)
	r.now = func() time.Time { return testNow }
	r.setDesc(desc)
	return r
}
