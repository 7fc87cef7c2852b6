package querier

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

func TestConcurrencyLimit_InsertWaitsForAFreeSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limit := newConcurrencyLimit(2)
		require.Equal(t, 2, limit.GetMaxConcurrent())
		for range 2 {
			_, err := limit.Insert(context.Background(), "up")
			require.NoError(t, err)
		}

		inserted := make(chan error, 1)
		go func() {
			_, err := limit.Insert(context.Background(), "up")
			inserted <- err
		}()
		synctest.Wait() // the third query is blocked for good unless a slot frees
		require.Empty(t, inserted, "a third query must wait while two run")

		limit.Delete(0)
		require.NoError(t, <-inserted)
	})
}

func TestConcurrencyLimit_InsertGivesUpWhenContextIsDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limit := newConcurrencyLimit(1)
		_, err := limit.Insert(context.Background(), "up")
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(context.Background())
		inserted := make(chan error, 1)
		go func() {
			_, err := limit.Insert(ctx, "up")
			inserted <- err
		}()
		synctest.Wait()
		require.Empty(t, inserted)
		cancel()
		require.ErrorIs(t, <-inserted, context.Canceled)

		// The abandoned wait took no slot: after the running query ends, a new one gets in at once.
		limit.Delete(0)
		_, err = limit.Insert(context.Background(), "up")
		require.NoError(t, err)
	})
}

// blockingQueryable counts Selects and holds each until release is closed.
type blockingQueryable struct {
	selects atomic.Int32
	release chan struct{}
}

func (q *blockingQueryable) Querier(int64, int64) (storage.Querier, error) { return q, nil }

func (q *blockingQueryable) Select(ctx context.Context, _ bool, _ *storage.SelectHints, _ ...*labels.Matcher) storage.SeriesSet {
	q.selects.Add(1)
	select {
	case <-q.release:
		return storage.EmptySeriesSet()
	case <-ctx.Done():
		return storage.ErrSeriesSet(ctx.Err())
	}
}

func (q *blockingQueryable) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *blockingQueryable) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *blockingQueryable) Close() error { return nil }

func TestEngine_MaxConcurrentQueriesWaitForARunningOneToFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{MaxSamples: 1000, Timeout: time.Hour, MaxConcurrent: 1, LookbackDelta: 5 * time.Minute, DefaultEvaluationInterval: time.Minute}
		engine := NewEngine(cfg, nil, nil)
		q := &blockingQueryable{release: make(chan struct{})}
		run := func(ctx context.Context) <-chan error {
			done := make(chan error, 1)
			go func() {
				qry, err := engine.NewInstantQuery(ctx, q, nil, "up", time.Unix(100, 0))
				if err != nil {
					done <- err
					return
				}
				defer qry.Close()
				done <- qry.Exec(ctx).Err
			}()
			return done
		}

		first := run(context.Background())
		synctest.Wait()
		require.EqualValues(t, 1, q.selects.Load(), "the first query runs")

		ctx, cancel := context.WithCancel(context.Background())
		canceled := run(ctx)
		second := run(context.Background())
		synctest.Wait()
		require.EqualValues(t, 1, q.selects.Load(), "queued queries must not reach storage")

		cancel()
		err := <-canceled
		var qc promql.ErrQueryCanceled
		require.True(t, errors.As(err, &qc) || errors.Is(err, context.Canceled), "got %v", err)
		require.Empty(t, first)

		close(q.release)
		require.NoError(t, <-first)
		require.NoError(t, <-second)
		require.EqualValues(t, 2, q.selects.Load())
	})
}
