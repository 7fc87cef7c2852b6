package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testWriteConfig(url string) writeConfig {
	var cfg writeConfig
	cfg.RegisterFlags(newTestFlagSet())
	cfg.URLs = urlList{urls: []string{url}}
	cfg.Interval = 0
	cfg.Push.MinBackoff, cfg.Push.MaxBackoff = time.Microsecond, time.Millisecond
	return cfg
}

func TestWrite_BatchesRespectSize(t *testing.T) {
	tests := []struct {
		name                           string
		tenants, series, batch, rounds int
	}{
		{name: "batch divides series", tenants: 1, series: 400, batch: 100, rounds: 2},
		{name: "last batch partial", tenants: 2, series: 250, batch: 100, rounds: 3},
		{name: "batch larger than series", tenants: 3, series: 50, batch: 2000, rounds: 1},
		{name: "one sample per request", tenants: 1, series: 5, batch: 1, rounds: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv, srv := newFakeReceiver(t, "X-Scope-OrgID")
			cfg := testWriteConfig(srv.URL)
			cfg.Tenants, cfg.SeriesPerTen, cfg.Batch, cfg.Rounds, cfg.Concurrency = tt.tenants, tt.series, tt.batch, tt.rounds, 3
			require.NoError(t, cfg.Validate())

			s, _, err := runWrite(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.NoError(t, err)
			perTenant := (tt.series + tt.batch - 1) / tt.batch
			require.Len(t, recv.requests, tt.rounds*tt.tenants*perTenant)
			total := 0
			for _, wr := range recv.requests {
				require.LessOrEqual(t, len(wr.Timeseries), tt.batch)
				total += len(wr.Timeseries)
			}
			require.Equal(t, tt.rounds*tt.tenants*tt.series, total)
			require.Equal(t, int64(total), s.SamplesAccepted)
			require.Equal(t, tt.rounds, s.Rounds)
		})
	}
}

func TestPush_RetriesServerErrorsAndTooManyRequestsButNotClientErrors(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int // answers in order; the last repeats
		maxRetries   int
		wantOK       bool
		wantAttempts int
		wantFailed   map[string]int64
		wantRetries  map[string]int64
	}{
		{name: "accepted at once", statuses: []int{204}, maxRetries: 3, wantOK: true, wantAttempts: 1},
		{name: "5xx then accepted", statuses: []int{500, 503, 200}, maxRetries: 3, wantOK: true, wantAttempts: 3,
			wantRetries: map[string]int64{"500": 1, "503": 1}},
		{name: "429 then accepted", statuses: []int{429, 200}, maxRetries: 3, wantOK: true, wantAttempts: 2,
			wantRetries: map[string]int64{"429": 1}},
		{name: "400 is not retried", statuses: []int{400}, maxRetries: 3, wantAttempts: 1,
			wantFailed: map[string]int64{"400": 1}},
		{name: "413 is not retried", statuses: []int{413}, maxRetries: 3, wantAttempts: 1,
			wantFailed: map[string]int64{"413": 1}},
		{name: "retries are bounded", statuses: []int{502}, maxRetries: 2, wantAttempts: 3,
			wantFailed: map[string]int64{"502": 1}, wantRetries: map[string]int64{"502": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			var bodies []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(attempts.Add(1)) - 1
				body, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(body))
				require.Equal(t, "tenant-a", r.Header.Get("X-Scope-OrgID"))
				w.WriteHeader(tt.statuses[min(n, len(tt.statuses)-1)])
			}))
			defer srv.Close()
			p := newPusher(pushConfig{Timeout: 5 * time.Second, MaxRetries: tt.maxRetries, MaxBackoff: time.Millisecond},
				[]string{srv.URL}, "X-Scope-OrgID", 1)

			var st pushStats
			ok, counted := p.push(context.Background(), "tenant-a", []byte("body"), &st)
			require.True(t, counted)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.wantAttempts, int(attempts.Load()))
			require.Len(t, st.latencies, tt.wantAttempts)
			require.Equal(t, tt.wantFailed, st.failed)
			require.Equal(t, tt.wantRetries, st.retries)
			for _, b := range bodies {
				require.Equal(t, "body", b, "a retry resends the same request")
			}
		})
	}
}

func TestPush_CancelledRequestIsNotCounted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		w.WriteHeader(503)
	}))
	defer srv.Close()
	p := newPusher(pushConfig{Timeout: 5 * time.Second, MaxRetries: 5, MinBackoff: time.Hour, MaxBackoff: time.Hour}, []string{srv.URL}, "", 1)
	var st pushStats
	_, counted := p.push(ctx, "t", nil, &st)
	require.False(t, counted)
	require.Empty(t, st.failed)
}

// TestWrite_EndToEndThenVerify writes to a receiver that decodes the snappy bodies, refuses one
// request, and then verifies the acknowledged samples through a query API over what it stored.
func TestWrite_EndToEndThenVerify(t *testing.T) {
	recv, srv := newFakeReceiver(t, "X-Scope-OrgID")
	recv.reject = func(n int) int {
		if n == 6 {
			return http.StatusBadRequest
		}
		return 0
	}
	cfg := testWriteConfig(srv.URL + "," + srv.URL)
	cfg.Tenants, cfg.SeriesPerTen, cfg.Batch, cfg.Concurrency = 2, 100, 40, 1
	cfg.Warmup, cfg.Rounds, cfg.ChurnPerMinute = 1, 4, 1000 // a target (84 series) about every 5s round
	cfg.StatePath = filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, cfg.URLs.Set(srv.URL+","+srv.URL))
	require.NoError(t, cfg.Validate())

	w := newWriter(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.now = func() time.Time { clock = clock.Add(5 * time.Second); return clock }
	s, _, err := w.run(context.Background())
	require.NoError(t, err)
	// 3 requests per tenant and round; the warm-up round (6 requests) is not in the summary.
	require.Equal(t, 4, s.Rounds)
	require.Equal(t, int64(4*2*3), s.Requests)
	require.Equal(t, map[string]int64{"400": 1}, s.FailedRequests)
	require.Equal(t, int64(40), s.SamplesFailed, "the refused request was a full batch")
	require.Equal(t, int64(4*2*100-40), s.SamplesAccepted)
	require.Positive(t, s.ChurnedSeries)
	require.Equal(t, 4*2*3, s.PushLatency.Count)

	for tenant, series := range recv.samples {
		require.Contains(t, []string{"tenant-0", "tenant-1"}, tenant)
		for key, samples := range series {
			for i := 1; i < len(samples); i++ {
				require.Greater(t, samples[i].Timestamp, samples[i-1].Timestamp, "%s out of order", key)
			}
		}
	}

	st, err := readState(cfg.StatePath)
	require.NoError(t, err)
	require.Len(t, st.RoundsMs, 5)
	var acked int64
	for _, tenant := range st.Tenants {
		for _, series := range tenant.Series {
			for _, r := range series.Acked {
				acked += int64(r[1] - r[0] + 1)
			}
		}
	}
	require.Equal(t, int64(5*2*100-40), acked, "warm-up and measured samples, less the refused batch")

	api := recv.queryAPI(t)
	vcfg := verifyConfig{StatePath: cfg.StatePath, QueryURL: api.URL, Tenant: cfg.Tenant, Concurrency: 2, MaxSeries: 10000, Timeout: 5 * time.Second}
	require.NoError(t, vcfg.Validate())
	vs, err := runVerify(context.Background(), vcfg)
	require.NoError(t, err)
	require.Equal(t, acked, vs.SamplesExpected)
	require.Zero(t, vs.SamplesMissing)
	require.Zero(t, vs.SeriesUnverified)

	dropped := recv.dropSample("tenant-1")
	vs, err = runVerify(context.Background(), vcfg)
	require.ErrorContains(t, err, "1 acknowledged samples are missing in 1 series")
	require.Equal(t, int64(1), vs.SamplesMissing)
	require.Len(t, vs.Examples, 1)
	require.Equal(t, "tenant-1", vs.Examples[0].Tenant)
	require.Equal(t, dropped, vs.Examples[0].Series)

	vcfg.MaxSeries = 10
	vs, _ = runVerify(context.Background(), vcfg)
	require.Equal(t, 10, vs.SeriesChecked)
	require.Greater(t, vs.SeriesRecorded, 10)
}

func TestWrite_BackfillWritesPastTimestampsUpToThePresent(t *testing.T) {
	recv, srv := newFakeReceiver(t, "X-Scope-OrgID")
	cfg := testWriteConfig(srv.URL)
	cfg.SeriesPerTen, cfg.Batch, cfg.Rounds = 10, 2000, 100
	cfg.BackfillFrom, cfg.BackfillStep = time.Minute, 15*time.Second
	require.NoError(t, cfg.Validate())
	before := time.Now()
	s, _, err := runWrite(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.Equal(t, 5, s.Rounds, "rounds at -60s, -45s, -30s, -15s and now; the next would be in the future")
	var stamps []int64
	for _, wr := range recv.requests {
		stamps = append(stamps, wr.Timeseries[0].Samples[0].Timestamp)
	}
	require.Len(t, stamps, 5)
	for i := 1; i < len(stamps); i++ {
		require.Equal(t, int64(15000), stamps[i]-stamps[i-1])
	}
	require.InDelta(t, before.Add(-time.Minute).UnixMilli(), stamps[0], 1000)

	cfg.Interval = time.Second
	require.ErrorContains(t, cfg.Validate(), "-backfill-from needs")
}
