package ring

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReplicationSetDo(t *testing.T) {
	set := func(maxErrors, maxZones int) ReplicationSet {
		return ReplicationSet{
			Instances: []InstanceDesc{inst("a", "z1"), inst("b", "z2"), inst("c", "z2"), inst("d", "z3")},
			MaxErrors: maxErrors, MaxUnavailableZones: maxZones,
		}
	}
	tests := map[string]struct {
		rs          ReplicationSet
		failing     []string
		wantResults []any
		wantFailed  []string
	}{
		"all succeed":               {rs: set(1, 0), wantResults: []any{"a", "b", "c", "d"}},
		"failures within budget":    {rs: set(1, 0), failing: []string{"c"}, wantResults: []any{"a", "b", "d"}},
		"failures over budget":      {rs: set(1, 0), failing: []string{"a", "c"}, wantFailed: []string{"a", "c"}},
		"one zone may fail":         {rs: set(0, 1), failing: []string{"b", "c"}, wantResults: []any{"a", "d"}},
		"two zones may not fail":    {rs: set(0, 1), failing: []string{"a", "c"}, wantFailed: []string{"a", "c"}},
		"no budget, single failure": {rs: set(0, 0), failing: []string{"d"}, wantFailed: []string{"d"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			results, err := tc.rs.Do(context.Background(), func(_ context.Context, in *InstanceDesc) (any, error) {
				if slices.Contains(tc.failing, in.ID) {
					return nil, errors.New("boom from " + in.ID)
				}
				return in.ID, nil
			})
			if tc.wantFailed == nil {
				require.NoError(t, err)
				require.Equal(t, tc.wantResults, results)
				return
			}
			var doErr *DoError
			require.ErrorAs(t, err, &doErr)
			var failed []string
			for _, f := range doErr.Failures {
				failed = append(failed, f.ID)
				require.ErrorContains(t, err, f.ID+" ("+f.Addr+"): boom from "+f.ID)
			}
			slices.Sort(failed)
			require.Equal(t, tc.wantFailed, failed)
		})
	}
}

func TestReplicationSetDo_CancelsTheRestOnceBudgetIsExceeded(t *testing.T) {
	rs := ReplicationSet{Instances: []InstanceDesc{inst("fails", ""), inst("hangs", "")}}
	cancelled := make(chan struct{})
	_, err := rs.Do(context.Background(), func(ctx context.Context, in *InstanceDesc) (any, error) {
		if in.ID == "fails" {
			return nil, errors.New("boom")
		}
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	require.ErrorContains(t, err, "fails")
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging call was not cancelled")
	}
}
