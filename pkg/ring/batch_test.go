package ring

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var errBadSample = errors.New("sample out of order")

func isBadSample(err error) bool { return errors.Is(err, errBadSample) }

func TestDoBatch(t *testing.T) {
	errDown := errors.New("connection refused")
	tests := map[string]struct {
		rf           int
		instanceErrs map[string]error
		wantErr      error
		wantQuorum   bool
	}{
		"all succeed":                    {rf: 3},
		"one failing instance with rf 3": {rf: 3, instanceErrs: map[string]error{"ingester-0": errDown}},
		"two failing instances with rf 3": {rf: 3, wantQuorum: true, wantErr: errDown,
			instanceErrs: map[string]error{"ingester-0": errDown, "ingester-1": errDown}},
		"one failing instance with rf 1": {rf: 1, wantQuorum: true, wantErr: errDown,
			instanceErrs: map[string]error{"ingester-0": errDown}},
		"client error with one failing instance": {rf: 3, wantErr: errBadSample,
			instanceErrs: map[string]error{"ingester-0": errBadSample, "ingester-1": errDown}},
		"client errors are not quorum errors": {rf: 3, wantErr: errBadSample,
			instanceErrs: map[string]error{"ingester-0": errBadSample, "ingester-1": errBadSample, "ingester-2": errBadSample}},
	}
	keys := []uint32{0, 1 << 30, 1 << 31, 3 << 30, 12345}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// rf instances, so every key is sent to every instance and each failing instance hits each key.
			r := newTestRing(t, Config{ReplicationFactor: tc.rf}, generatedDesc(tc.rf, 32))
			var mu sync.Mutex
			got := map[string][]int{}
			err := DoBatch(context.Background(), Write, r, keys, func(in InstanceDesc, indexes []int) error {
				mu.Lock()
				got[in.ID] = slices.Clone(indexes)
				mu.Unlock()
				return tc.instanceErrs[in.ID]
			}, isBadSample, nil)

			if tc.wantErr == nil {
				require.NoError(t, err)
				// DoBatch may return before the last replica's callback ran.
				require.Eventually(t, func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(got) == tc.rf
				}, 5*time.Second, time.Millisecond)
				mu.Lock()
				defer mu.Unlock()
				for id, indexes := range got {
					require.Equal(t, []int{0, 1, 2, 3, 4}, indexes, "instance %s", id)
				}
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			var qe *QuorumError
			require.Equal(t, tc.wantQuorum, errors.As(err, &qe))
		})
	}
}

func TestDoBatch_GroupsKeysByReplica(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 2},
		descOf(inst("a", "", 100), inst("b", "", 200), inst("c", "", 300)))
	var mu sync.Mutex
	got := map[string][]int{}
	err := DoBatch(context.Background(), Write, r, []uint32{50, 150, 250, 350}, func(in InstanceDesc, indexes []int) error {
		mu.Lock()
		defer mu.Unlock()
		got[in.ID] = slices.Clone(indexes)
		return nil
	}, nil, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	}, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string][]int{"a": {0, 2, 3}, "b": {0, 1, 3}, "c": {1, 2}}, got)
}

func TestDoBatch_ReturnsOnceQuorumIsReached(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 3}, generatedDesc(3, 32))
	release := make(chan struct{})
	defer close(release)
	done := make(chan error, 1)
	go func() {
		done <- DoBatch(context.Background(), Write, r, []uint32{1, 2, 3}, func(in InstanceDesc, _ []int) error {
			if in.ID == "ingester-2" {
				<-release // a slow instance must not hold up the write
			}
			return nil
		}, nil, nil)
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("DoBatch waited for the slow instance")
	}
}

func TestDoBatch_RingErrorsAndContext(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 3}, NewDesc())
	err := DoBatch(context.Background(), Write, r, []uint32{1}, func(InstanceDesc, []int) error { return nil }, nil, nil)
	require.ErrorIs(t, err, ErrEmptyRing)

	require.NoError(t, DoBatch(context.Background(), Write, r, nil, nil, nil, nil), "no keys, nothing to do")

	r = newTestRing(t, Config{ReplicationFactor: 1}, generatedDesc(1, 8))
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	defer close(release)
	go cancel()
	err = DoBatch(ctx, Write, r, []uint32{1}, func(InstanceDesc, []int) error { <-release; return nil }, nil, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestDoBatch_RunsCleanupAfterEveryCallback(t *testing.T) {
	r := newTestRing(t, Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 3}, generatedDesc(3, 16))
	release := make(chan struct{})
	var finished atomic.Int32
	cleaned := make(chan int32, 1)
	err := DoBatch(context.Background(), Write, r, []uint32{1, 2, 3}, func(inst InstanceDesc, _ []int) error {
		if inst.ID == "ingester-2" {
			<-release // a slow replica, still running when DoBatch returns
		}
		finished.Add(1)
		return nil
	}, nil, func() { cleaned <- finished.Load() })
	require.NoError(t, err)
	select {
	case <-cleaned:
		t.Fatal("cleanup ran while a callback was still running")
	default:
	}
	close(release)
	require.Equal(t, int32(3), <-cleaned, "cleanup ran after all three callbacks")
}
