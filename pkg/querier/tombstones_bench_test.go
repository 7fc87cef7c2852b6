package querier

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// BenchmarkTombstoneQueryable_Select reads 1,000 series of 120 samples from a TSDB directly, then through
// the queryable with no tombstone (the common case: one cache lookup per Select), with one that deletes
// nothing read, and with one that deletes half the samples of every series.
func BenchmarkTombstoneQueryable_Select(b *testing.B) {
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(b, err)
	defer db.Close()
	app := db.Appender(context.Background())
	for s := range 1000 {
		lset := labels.FromStrings("__name__", "m", "i", strconv.Itoa(s))
		for t := int64(0); t < 120; t++ {
			_, err := app.Append(0, lset, t*15000, float64(t))
			require.NoError(b, err)
		}
	}
	require.NoError(b, app.Commit())
	ctx := tenant.NewContext(context.Background(), "t1")
	for _, bc := range []struct {
		name       string
		direct     bool
		tombstones staticTombstones
	}{
		{name: "TSDB alone", direct: true},
		{name: "none"},
		{name: "other series", tombstones: staticTombstones{mustTombstone(b, 0, 1e9, "other")}},
		{name: "half of every series", tombstones: staticTombstones{mustTombstone(b, 0, 60*15000-1, "m")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var source storage.Queryable = NewTombstoneQueryable(db, bc.tombstones)
			if bc.direct {
				source = db
			}
			var it chunkenc.Iterator
			for b.Loop() {
				q, err := source.Querier(0, 120*15000)
				require.NoError(b, err)
				set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
				for set.Next() {
					it = set.At().Iterator(it)
					for it.Next() != chunkenc.ValNone {
					}
				}
				require.NoError(b, set.Err())
				require.NoError(b, q.Close())
			}
		})
	}
}
