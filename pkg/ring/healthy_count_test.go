package ring

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type countingRing struct{ healthy, calls int }

func (r *countingRing) HealthyInstancesCount(Operation) int {
	r.calls++
	return r.healthy
}

func TestHealthyCount_CountsAgainAtMostOnceASecond(t *testing.T) {
	r := &countingRing{healthy: 3}
	c := NewHealthyCount(r, Write)
	now := time.Unix(1_700_000_000, 0)
	require.Equal(t, 3, c.Get(now))
	r.healthy = 2
	require.Equal(t, 3, c.Get(now.Add(999*time.Millisecond)), "within the second: the count already made")
	require.Equal(t, 1, r.calls)
	require.Equal(t, 2, c.Get(now.Add(time.Second)), "a second later: counted again")
	require.Equal(t, 2, r.calls)
	require.Zero(t, NewHealthyCount(nil, Write).Get(now))
}
