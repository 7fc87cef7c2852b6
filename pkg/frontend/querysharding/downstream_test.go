package querysharding

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/querier"
	shards "github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// The test data: one hour of samples every 15s from dataStart.
var (
	dataStart = time.Unix(1_700_000_000, 0).UTC()
	dataEnd   = dataStart.Add(time.Hour)
	scrape    = 15 * time.Second
)

const testTenant = "team-a"

// writeTestData fills db with series that exercise what merging shards must get right:
//   - http_requests_total{job,instance,code}: counters with resets; some appear 20 minutes in, some stop
//     40 minutes in (half of those with a staleness marker, half just stop);
//   - temperature{job,instance}: gauges with distinct values (no ties for topk and bottomk to break);
//   - nan_gauge{instance}: gauges with NaN samples, one of them NaN throughout;
//   - request_duration_seconds_bucket{job,instance,le}: classic histograms;
//   - native_latency_seconds{instance}: native histograms.
func writeTestData(t *testing.T, db *tsdb.DB) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	app := db.Appender(context.Background())
	appendFloat := func(ls labels.Labels, ts time.Time, v float64) {
		_, err := app.Append(0, ls, ts.UnixMilli(), v)
		require.NoError(t, err)
	}
	steps := int(dataEnd.Sub(dataStart) / scrape)
	at := func(n int) time.Time { return dataStart.Add(time.Duration(n) * scrape) }

	i := 0
	for _, job := range []string{"api", "web"} {
		for inst := range 10 {
			for _, code := range []string{"200", "500"} {
				i++
				ls := labels.FromStrings("__name__", "http_requests_total", "job", job, "instance", fmt.Sprintf("i%d", inst), "code", code)
				first, last := 0, steps
				switch i % 7 {
				case 1:
					first = steps / 3 // appears 20 minutes in
				case 2, 3:
					last = 2 * steps / 3 // stops 40 minutes in
				}
				counter := float64(rnd.IntN(1000))
				for n := first; n <= last; n++ {
					if i%5 == 0 && n == steps/2 {
						counter = float64(rnd.IntN(10)) // a restart resets the counter
					}
					counter += float64(rnd.IntN(50*i)) + rnd.Float64()
					appendFloat(ls, at(n), counter)
				}
				if i%7 == 2 && last < steps {
					appendFloat(ls, at(last+1), math.Float64frombits(value.StaleNaN))
				}
			}
		}
	}
	for _, job := range []string{"api", "web", "db"} {
		for inst := range 7 {
			ls := labels.FromStrings("__name__", "temperature", "job", job, "instance", fmt.Sprintf("i%d", inst))
			for n := 0; n <= steps; n++ {
				if job == "db" && inst == 3 && n > steps/2 {
					break // one gauge stops: its group has fewer members from then on
				}
				appendFloat(ls, at(n), 20+60*rnd.Float64())
			}
		}
	}
	for inst := range 8 {
		ls := labels.FromStrings("__name__", "nan_gauge", "instance", fmt.Sprintf("i%d", inst))
		for n := 0; n <= steps; n++ {
			v := rnd.Float64() * 100
			if inst == 0 || (inst%3 == 1 && n%4 == 0) {
				v = math.NaN()
			}
			appendFloat(ls, at(n), v)
		}
	}
	bounds := []string{"0.1", "0.5", "1", "5", "+Inf"}
	for _, job := range []string{"api", "web"} {
		for inst := range 4 {
			cumulative := make([]float64, len(bounds))
			for n := 0; n <= steps; n++ {
				add := 0.0
				for b := range bounds {
					add += float64(rnd.IntN(20))
					cumulative[b] += add
				}
				for b, le := range bounds {
					appendFloat(labels.FromStrings("__name__", "request_duration_seconds_bucket", "job", job, "instance", fmt.Sprintf("i%d", inst), "le", le), at(n), cumulative[b])
				}
			}
		}
	}
	for inst := range 4 {
		ls := labels.FromStrings("__name__", "native_latency_seconds", "instance", fmt.Sprintf("i%d", inst))
		for n := 0; n <= steps; n++ {
			_, err := app.AppendHistogram(0, ls, at(n).UnixMilli(), tsdbutil.GenerateTestHistogram(int64(n+inst)), nil)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
}

// shardingQueryable honours __query_shard__ over a queryable, as ingesters and store-gateways do.
type shardingQueryable struct{ storage.Queryable }

func (q shardingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	inner, err := q.Queryable.Querier(mint, maxt)
	return shardingQuerier{inner}, err
}

type shardingQuerier struct{ storage.Querier }

func (q shardingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	shard, rest, err := shards.RemoveShardMatcher(ms)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if !shard.Sharded() {
		return q.Querier.Select(ctx, sortSeries, hints, ms...)
	}
	if len(rest) == 0 {
		rest = []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "", "")}
	}
	return &shardSeriesSet{SeriesSet: q.Querier.Select(ctx, sortSeries, hints, rest...), shard: shard}
}

type shardSeriesSet struct {
	storage.SeriesSet
	shard shards.Shard
}

func (s *shardSeriesSet) Next() bool {
	for s.SeriesSet.Next() {
		if s.shard.Contains(s.At().Labels()) {
			return true
		}
	}
	return false
}

// downstream is Strata's querier API over the test data, reached through a RoundTripper that counts the
// requests and keeps their queries.
type downstream struct {
	handler http.Handler

	mu      sync.Mutex
	queries []string
	// fail, when set, answers a request instead of the API when it returns a response.
	fail func(*http.Request) *http.Response
}

func newDownstream(t *testing.T) *downstream {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	writeTestData(t, db)
	cfg := querier.Config{MaxSamples: 50_000_000, Timeout: time.Minute, MaxConcurrent: 8, LookbackDelta: 5 * time.Minute, DefaultEvaluationInterval: time.Minute}
	logger := slog.New(slog.DiscardHandler)
	a := api.NewPrometheusAPI(querier.NewEngine(cfg, nil, logger), shardingQueryable{db}, nil, cfg, validation.NewOverrides(validation.DefaultLimits(), nil), logger)
	mux := http.NewServeMux()
	a.Register(mux, "/prometheus/api/v1", tenant.Middleware(true))
	return &downstream{handler: mux}
}

func (d *downstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.queries = append(d.queries, r.Form.Get("query"))
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		if resp := fail(r); resp != nil {
			return resp, nil
		}
	}
	rec := httptest.NewRecorder()
	d.handler.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// sent returns the queries received since the last call.
func (d *downstream) sent() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.queries
	d.queries = nil
	return out
}
