package querier

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

// recordingQueryable remembers the time ranges it was asked for.
type recordingQueryable struct {
	ranges [][2]int64
}

func (r *recordingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	r.ranges = append(r.ranges, [2]int64{mint, maxt})
	return &fixedQuerier{}, nil
}

type fixedQuerier struct{}

func (f *fixedQuerier) Select(context.Context, bool, *storage.SelectHints, ...*labels.Matcher) storage.SeriesSet {
	return storage.EmptySeriesSet()
}
func (f *fixedQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}
func (f *fixedQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}
func (f *fixedQuerier) Close() error { return nil }

func TestTimeSplitQueryable_AsksEachStoreForItsWindow(t *testing.T) {
	now := time.Unix(100_000, 0)
	ms := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	cfg := Config{QueryIngestersWithin: 13 * time.Hour, QueryStoreAfter: 12 * time.Hour}
	for name, tc := range map[string]struct {
		mint, maxt       int64
		wantIng, wantSto [][2]int64
	}{
		// Object storage is always asked (it skips recent blocks that ingesters hold by itself).
		"recent only":  {mint: ms(time.Hour), maxt: ms(0), wantIng: [][2]int64{{ms(time.Hour), ms(0)}}, wantSto: [][2]int64{{ms(time.Hour), ms(0)}}},
		"old only":     {mint: ms(48 * time.Hour), maxt: ms(24 * time.Hour), wantSto: [][2]int64{{ms(48 * time.Hour), ms(24 * time.Hour)}}},
		"both overlap": {mint: ms(7 * 24 * time.Hour), maxt: ms(0), wantIng: [][2]int64{{ms(13 * time.Hour), ms(0)}}, wantSto: [][2]int64{{ms(7 * 24 * time.Hour), ms(0)}}},
	} {
		t.Run(name, func(t *testing.T) {
			ing, sto := &recordingQueryable{}, &recordingQueryable{}
			q := NewTimeSplitQueryable(ing, sto, cfg)
			q.now = func() time.Time { return now }
			_, err := q.Querier(tc.mint, tc.maxt)
			require.NoError(t, err)
			require.Equal(t, tc.wantIng, ing.ranges)
			require.Equal(t, tc.wantSto, sto.ranges)
		})
	}
}

func TestTimeSplitQueryable_WithoutStoreAsksOnlyIngesters(t *testing.T) {
	ing := &recordingQueryable{}
	q := NewTimeSplitQueryable(ing, nil, Config{QueryIngestersWithin: 0, QueryStoreAfter: 12 * time.Hour})
	_, err := q.Querier(0, 1000)
	require.NoError(t, err)
	require.Equal(t, [][2]int64{{0, 1000}}, ing.ranges)
}

func TestConfig_StoreWindowMustOverlapIngesters(t *testing.T) {
	cfg := Config{MaxSamples: 1, Timeout: time.Second, MaxConcurrent: 1, LookbackDelta: time.Minute, DefaultEvaluationInterval: time.Minute,
		QueryIngestersWithin: 12 * time.Hour, QueryStoreAfter: 13 * time.Hour}
	require.ErrorContains(t, cfg.Validate(), "-querier.query-store-after")
}
