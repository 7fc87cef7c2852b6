package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func allQueriers(string) int { return 0 }

func dequeueNow(t *testing.T, q *Queue, querierID string) (Request, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, tenant, err := q.Dequeue(ctx, querierID)
	require.NoError(t, err)
	return req, tenant
}

func TestQueue_TenantsTakeTurns(t *testing.T) {
	q := New(1000, allQueriers, prometheus.NewRegistry())
	q.QuerierConnected("q1")
	for i := range 100 {
		require.NoError(t, q.Enqueue("flood", fmt.Sprintf("flood-%d", i)))
	}
	require.NoError(t, q.Enqueue("steady", "steady-0"))
	require.NoError(t, q.Enqueue("other", "other-0"))

	// Whatever the flood queued before them, the other tenants' requests come within one turn.
	var first []string
	for range 3 {
		req, _ := dequeueNow(t, q, "q1")
		first = append(first, req.(string))
	}
	require.ElementsMatch(t, []string{"flood-0", "steady-0", "other-0"}, first)
	// Then the flood's, in order.
	for i := 1; i < 100; i++ {
		req, tenant := dequeueNow(t, q, "q1")
		require.Equal(t, "flood", tenant)
		require.Equal(t, fmt.Sprintf("flood-%d", i), req)
	}
}

func TestQueue_RefusesBeyondMaxOutstandingPerTenant(t *testing.T) {
	reg := prometheus.NewRegistry()
	q := New(2, allQueriers, reg)
	require.NoError(t, q.Enqueue("a", 1))
	require.NoError(t, q.Enqueue("a", 2))
	require.ErrorIs(t, q.Enqueue("a", 3), ErrTooManyRequests)
	require.NoError(t, q.Enqueue("b", 1), "another tenant is not affected")
	require.Equal(t, 1.0, testutil.ToFloat64(q.discards.WithLabelValues("a")))
	require.Equal(t, 2.0, testutil.ToFloat64(q.length.WithLabelValues("a")))

	q.QuerierConnected("q1")
	_, first := dequeueNow(t, q, "q1")
	require.Equal(t, "b", first, "b started waiting last, so it takes the next turn")
	_, second := dequeueNow(t, q, "q1")
	require.Equal(t, "a", second)
	require.NoError(t, q.Enqueue("a", 3), "a dequeued request frees its place")
}

func TestQueue_RemoveFreesThePlace(t *testing.T) {
	q := New(1, allQueriers, prometheus.NewRegistry())
	require.NoError(t, q.Enqueue("a", "gone"))
	require.True(t, q.Remove("a", "gone"))
	require.False(t, q.Remove("a", "gone"))
	require.NoError(t, q.Enqueue("a", "next"))
	q.QuerierConnected("q1")
	req, _ := dequeueNow(t, q, "q1")
	require.Equal(t, "next", req)
}

func TestQueue_DequeueWaitsForARequestOrItsContext(t *testing.T) {
	q := New(10, allQueriers, prometheus.NewRegistry())
	q.QuerierConnected("q1")
	got := make(chan Request)
	go func() {
		req, _, err := q.Dequeue(context.Background(), "q1")
		if err == nil {
			got <- req
		}
	}()
	require.NoError(t, q.Enqueue("a", "late"))
	select {
	case req := <-got:
		require.Equal(t, "late", req)
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting querier never got the request")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := q.Dequeue(ctx, "q1")
	require.ErrorIs(t, err, context.Canceled)

	q.Stop()
	_, _, err = q.Dequeue(context.Background(), "q1")
	require.ErrorIs(t, err, ErrStopped)
	require.ErrorIs(t, q.Enqueue("a", "after"), ErrStopped)
}

func TestQueue_TenantUsesAtMostMaxQueriers(t *testing.T) {
	q := New(1000, func(tenant string) int {
		if tenant == "small" {
			return 2
		}
		return 0
	}, prometheus.NewRegistry())
	queriers := []string{"q1", "q2", "q3", "q4", "q5"}
	for _, id := range queriers {
		q.QuerierConnected(id)
	}
	for i := range 50 {
		require.NoError(t, q.Enqueue("small", i))
	}
	// Each querier asks in turn; only two of them ever get the tenant's requests.
	served := map[string]int{}
	for len(served) == 0 || sum(served) < 50 {
		for _, id := range queriers {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			if _, _, err := q.Dequeue(ctx, id); err == nil {
				served[id]++
			}
			cancel()
		}
	}
	require.Len(t, served, 2, "%v", served)

	// The same two again: the choice is stable.
	var again []string
	for i := range 10 {
		require.NoError(t, q.Enqueue("small", i))
	}
	for _, id := range queriers {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if _, _, err := q.Dequeue(ctx, id); err == nil {
			again = append(again, id)
		}
		cancel()
	}
	for _, id := range again {
		require.Contains(t, served, id)
	}

	// A chosen querier leaves: the tenant gets another one, and its requests are not stranded.
	var leaving string
	for id := range served {
		leaving = id
		break
	}
	q.QuerierDisconnected(leaving)
	for range 5 {
		q.QuerierConnected("ignored") // connections of one querier count once
		q.QuerierDisconnected("ignored")
	}
	remaining := 0
	for _, id := range queriers {
		if id == leaving {
			continue
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_, _, err := q.Dequeue(ctx, id)
			cancel()
			if err != nil {
				break
			}
			remaining++
		}
	}
	require.Equal(t, 10-len(again), remaining)
}

func TestQueue_QuerierWithSeveralConnectionsLeavesWithItsLast(t *testing.T) {
	q := New(10, func(string) int { return 1 }, prometheus.NewRegistry())
	q.QuerierConnected("q1")
	q.QuerierConnected("q1")
	q.QuerierConnected("q2")
	require.Equal(t, 2, q.Queriers())
	q.QuerierDisconnected("q1")
	require.Equal(t, 2, q.Queriers())
	q.QuerierDisconnected("q1")
	require.Equal(t, 1, q.Queriers())
	require.NoError(t, q.Enqueue("a", "x"))
	req, _ := dequeueNow(t, q, "q2")
	require.Equal(t, "x", req, "with one querier left, every tenant's shard is that querier")
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
