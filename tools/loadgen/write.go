package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/golang/snappy"
)

// writeConfig configures the write mode.
type writeConfig struct {
	URLs            urlList
	Tenant          tenantConfig
	Tenants         int
	TenantPrefix    string
	SeriesPerTen    int
	Interval        time.Duration
	BackfillFrom    time.Duration
	BackfillStep    time.Duration
	BackfillStartMs int64
	BackfillSendMs  int64
	Batch           int
	Concurrency     int
	ChurnPerMinute  float64
	Duration        time.Duration
	Rounds          int
	Warmup          int
	Push            pushConfig
	StatePath       string
	Seed            uint64
	Protocol        string
}

// RegisterFlags registers the write mode's flags.
func (c *writeConfig) RegisterFlags(f *flag.FlagSet) {
	c.URLs = urlList{urls: []string{"http://127.0.0.1:8080/api/v1/push"}}
	f.Var(&c.URLs, "url", "remote-write URL; repeat the flag or give a comma-separated list to spread requests over several distributors")
	c.Tenant.RegisterFlags(f)
	f.IntVar(&c.Tenants, "tenants", 1, "number of tenants, named <tenant-prefix>0, <tenant-prefix>1, ...")
	f.StringVar(&c.TenantPrefix, "tenant-prefix", "tenant-", "prefix of the tenant IDs")
	f.IntVar(&c.SeriesPerTen, "series", 10000, "active series per tenant")
	f.DurationVar(&c.BackfillFrom, "backfill-from", 0, "write past data instead of live data: round r gets the timestamp (start - backfill-from + r*backfill-step), as fast as accepted; stops at the present. Two runs with the same seed write identical data to two receivers")
	f.DurationVar(&c.BackfillStep, "backfill-step", 15*time.Second, "spacing of the rounds' timestamps with -backfill-from")
	f.Int64Var(&c.BackfillStartMs, "backfill-start-ms", 0, "with -backfill-from: the first round's timestamp (unix ms) instead of now minus -backfill-from, so runs against several receivers write the very same timestamps")
	f.Int64Var(&c.BackfillSendMs, "backfill-send-from-ms", 0, "with -backfill-from: generate the rounds before this time (unix ms) but send none of them, so that the data continues what `loadgen blocks -end-ms` wrote with the same -seed, -series, start and step")
	f.DurationVar(&c.Interval, "interval", 15*time.Second, "scrape interval: one sample per series per interval; 0 sends rounds as fast as the target accepts them")
	f.StringVar(&c.Protocol, "protocol", "1.0", "remote write protocol: 1.0 (prometheus.WriteRequest) or 2.0 (io.prometheus.write.v2.Request, each series with its metadata)")
	f.IntVar(&c.Batch, "batch", 2000, "samples per request, like Prometheus' max_samples_per_send")
	f.IntVar(&c.Concurrency, "concurrency", 4, "concurrent senders; each owns a fixed set of batches so a series' samples stay in order")
	f.Float64Var(&c.ChurnPerMinute, "churn-per-minute", 0, "series replaced by new ones per tenant per minute, a whole target (~84 series) at a time")
	f.DurationVar(&c.Duration, "duration", 3*time.Minute, "how long the measured phase runs")
	f.IntVar(&c.Rounds, "rounds", 0, "stop the measured phase after this many rounds (0: run for -duration)")
	f.IntVar(&c.Warmup, "warmup", 0, "rounds sent before measuring; they are acknowledged in -state but not in the summary")
	c.Push.RegisterFlags(f)
	f.StringVar(&c.StatePath, "state", "", "write acknowledged samples to this file for the verify mode")
	f.Uint64Var(&c.Seed, "seed", 1, "seed of the value generator")
}

// Validate reports the first invalid flag.
func (c *writeConfig) Validate() error {
	switch {
	case c.Tenants < 1:
		return fmt.Errorf("-tenants must be at least 1, got %d", c.Tenants)
	case c.Tenants > 1 && c.Tenant.headerName() == "":
		return errors.New("-tenants > 1 needs a -tenant-header: without it all tenants write the same series to one store")
	case c.SeriesPerTen < 1:
		return fmt.Errorf("-series must be at least 1, got %d", c.SeriesPerTen)
	case c.Interval < 0:
		return fmt.Errorf("-interval must not be negative, got %s", c.Interval)
	case c.Protocol != "1.0" && c.Protocol != "2.0":
		return fmt.Errorf("-protocol must be 1.0 or 2.0, got %q", c.Protocol)
	case c.Batch < 1:
		return fmt.Errorf("-batch must be at least 1, got %d", c.Batch)
	case c.Concurrency < 1:
		return fmt.Errorf("-concurrency must be at least 1, got %d", c.Concurrency)
	case c.ChurnPerMinute < 0:
		return fmt.Errorf("-churn-per-minute must not be negative, got %g", c.ChurnPerMinute)
	case c.Duration <= 0 && c.Rounds == 0:
		return errors.New("-duration must be positive unless -rounds is set")
	case c.Rounds < 0 || c.Warmup < 0:
		return errors.New("-rounds and -warmup must not be negative")
	case c.BackfillFrom < 0 || (c.BackfillFrom > 0 && (c.BackfillStep <= 0 || c.Interval != 0)):
		return errors.New("-backfill-from needs a positive -backfill-step and -interval 0")
	case c.BackfillSendMs != 0 && c.BackfillFrom == 0:
		return errors.New("-backfill-send-from-ms needs -backfill-from")
	}
	return c.Push.Validate()
}

// pushConfig says how one request is sent and retried.
type pushConfig struct {
	Timeout    time.Duration
	MaxRetries int
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// TLSCAPath and BasicAuth reach a receiver that serves TLS and authenticates (Strata's -auth.type=basic).
	TLSCAPath string
	BasicAuth string
}

// RegisterFlags registers the retry flags; the defaults are Prometheus' queue_config defaults.
func (c *pushConfig) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.Timeout, "timeout", 30*time.Second, "timeout of one HTTP attempt")
	f.StringVar(&c.TLSCAPath, "tls-ca-path", "", "CA bundle (PEM) to verify an https receiver with")
	f.StringVar(&c.BasicAuth, "basic-auth", "", "user:password sent as HTTP basic auth")
	f.IntVar(&c.MaxRetries, "max-retries", 10, "retries of a request answered with 5xx, 429 or a network error before it counts as failed")
	f.DurationVar(&c.MinBackoff, "min-backoff", 30*time.Millisecond, "first retry delay, doubled on each retry")
	f.DurationVar(&c.MaxBackoff, "max-backoff", 5*time.Second, "longest retry delay, also the cap on Retry-After")
}

// Validate reports the first invalid flag.
func (c *pushConfig) Validate() error {
	if c.Timeout <= 0 || c.MaxRetries < 0 || c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff {
		return fmt.Errorf("need -timeout > 0, -max-retries >= 0 and 0 <= -min-backoff <= -max-backoff; got %s, %d, %s, %s",
			c.Timeout, c.MaxRetries, c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// batch is one pre-built, compressed request.
type batch struct {
	tenant  int
	round   int32
	samples int
	body    *[]byte
	ids     []int32 // tracker ids of the batch's series; nil unless tracking
}

// writer generates the rounds and hands their batches to the senders.
type writer struct {
	cfg     writeConfig
	tenants []*tenantSeries
	pusher  *pusher
	tracker *tracker
	now     func() time.Time
	logger  *slog.Logger

	lastTs     int64
	nextRound  time.Time
	round      int32
	lateRounds int
	churned    int
	buildTime  time.Duration
	// backfillStart is the first round's timestamp with -backfill-from; skipped counts the rounds
	// generated but not sent before -backfill-send-from-ms.
	backfillStart int64
	skipped       int64
	raw           []byte
	bodies        sync.Pool
	v2            *v2Encoder // nil for remote write 1.0
}

func newWriter(cfg writeConfig, logger *slog.Logger) *writer {
	w := &writer{cfg: cfg, now: time.Now, logger: logger,
		pusher: newPusher(cfg.Push, cfg.URLs.urls, cfg.Tenant.headerName(), cfg.Concurrency)}
	w.bodies.New = func() any { return new([]byte) }
	if cfg.Protocol == "2.0" {
		w.v2 = newV2Encoder()
		w.pusher.contentType = contentTypeV2
	}
	names := make([]string, cfg.Tenants)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", cfg.TenantPrefix, i)
	}
	if cfg.StatePath != "" {
		w.tracker = newTracker(names)
	}
	for i, name := range names {
		var records *tenantRecords
		if w.tracker != nil {
			records = w.tracker.tenants[i]
		}
		w.tenants = append(w.tenants, newTenantSeries(name, cfg.SeriesPerTen, cfg.Seed+uint64(i), records))
	}
	return w
}

// phaseResult is what the senders of one phase saw.
type phaseResult struct {
	stats   pushStats
	rounds  int
	elapsed time.Duration
}

// runWrite runs the warm-up and measured phases and summarises the measured one.
func runWrite(ctx context.Context, cfg writeConfig, logger *slog.Logger) (*writeSummary, cpuSummary, error) {
	return newWriter(cfg, logger).run(ctx)
}

func (w *writer) run(ctx context.Context) (*writeSummary, cpuSummary, error) {
	cfg, logger := w.cfg, w.logger
	if cfg.Warmup > 0 {
		res := w.runPhase(ctx, cfg.Warmup, time.Time{})
		logger.Info("warm-up done", "rounds", res.rounds, "accepted_samples", res.stats.accepted)
	}
	w.lateRounds, w.churned, w.buildTime = 0, 0, 0
	meter := startCPUMeter()
	var deadline time.Time
	if cfg.Rounds == 0 {
		deadline = w.now().Add(cfg.Duration)
	}
	res := w.runPhase(ctx, cfg.Rounds, deadline)
	cpu := meter.stop()
	s := &writeSummary{
		Tenants: cfg.Tenants, SeriesPerTenant: cfg.SeriesPerTen, Rounds: res.rounds, LateRounds: w.lateRounds,
		ChurnedSeries: w.churned, Requests: res.stats.requests, SamplesAccepted: res.stats.accepted,
		SamplesFailed: res.stats.failedSamples, FailedRequests: res.stats.failed, Retries: res.stats.retries,
		PushLatency: latencyOf(res.stats.latencies), BuildSeconds: w.buildTime.Seconds(),
	}
	if res.elapsed > 0 {
		s.AcceptedSamplesPerSecond = float64(res.stats.accepted) / res.elapsed.Seconds()
	}
	if w.tracker != nil {
		if err := writeState(cfg.StatePath, w.tracker.state()); err != nil {
			return s, cpu, err
		}
	}
	return s, cpu, ctx.Err()
}

// runPhase sends rounds until maxRounds (if > 0) or deadline (if set) or ctx ends, then waits for
// the senders to drain.
func (w *writer) runPhase(ctx context.Context, maxRounds int, deadline time.Time) phaseResult {
	queues := make([]chan *batch, w.cfg.Concurrency)
	stats := make([]pushStats, w.cfg.Concurrency)
	var wg sync.WaitGroup
	start := w.now()
	for i := range queues {
		queues[i] = make(chan *batch, 2)
		wg.Go(func() {
			for b := range queues[i] {
				w.send(ctx, b, &stats[i])
			}
		})
	}
	rounds := 0
	for maxRounds == 0 || rounds < maxRounds {
		if !w.waitForRound(ctx, deadline) || !w.sendRound(ctx, queues) {
			break
		}
		rounds++
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	res := phaseResult{rounds: rounds, elapsed: w.now().Sub(start)}
	// A paced phase ends when its last round is sent, one interval before that round's share of
	// time is over; counting that interval keeps samples/s at series/interval.
	res.elapsed = max(res.elapsed, time.Duration(rounds)*w.cfg.Interval)
	for i := range stats {
		res.stats.merge(&stats[i])
	}
	return res
}

// waitForRound waits for the next scrape tick; false when ctx or the deadline ends first.
func (w *writer) waitForRound(ctx context.Context, deadline time.Time) bool {
	now := w.now()
	if w.cfg.Interval == 0 || w.nextRound.IsZero() {
		w.nextRound = now.Add(w.cfg.Interval)
		return ctx.Err() == nil && (deadline.IsZero() || now.Before(deadline))
	}
	if !deadline.IsZero() && !w.nextRound.Before(deadline) {
		return false
	}
	if wait := w.nextRound.Sub(now); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	} else {
		w.lateRounds++
	}
	// A late round does not make the next ones catch up in a burst, as a scrape loop would not.
	w.nextRound = w.nextRound.Add(w.cfg.Interval)
	if now := w.now(); w.nextRound.Before(now) {
		w.nextRound = now
	}
	return true
}

// sendRound advances every tenant's series and queues the round's batches; batch k of every round
// goes to sender k % concurrency, so each series is pushed by one sender in timestamp order.
func (w *writer) sendRound(ctx context.Context, queues []chan *batch) bool {
	ts := max(w.now().UnixMilli(), w.lastTs+1) // rounds faster than 1ms still get distinct timestamps
	if w.cfg.BackfillFrom > 0 {
		var ok bool
		if ts, ok = w.nextBackfillTimestamp(); !ok {
			return false // caught up with the present
		}
	}
	w.advance(ts)
	round := w.round
	w.round++
	if w.tracker != nil {
		w.tracker.roundsMs = append(w.tracker.roundsMs, ts)
	}
	k := 0
	for ti, t := range w.tenants {
		for lo := 0; lo < t.n; lo += w.cfg.Batch {
			b := w.buildBatch(ti, round, lo, min(lo+w.cfg.Batch, t.n), ts)
			select {
			case queues[k%len(queues)] <- b:
			case <-ctx.Done():
				w.release(b)
				return false
			}
			k++
		}
	}
	return true
}

// nextBackfillTimestamp returns the timestamp of the next round to send with -backfill-from, first
// generating (without sending) the rounds before -backfill-send-from-ms; false once it is in the future.
func (w *writer) nextBackfillTimestamp() (int64, bool) {
	if w.backfillStart == 0 {
		w.backfillStart = w.now().Add(-w.cfg.BackfillFrom).UnixMilli()
		if w.cfg.BackfillStartMs > 0 {
			w.backfillStart = w.cfg.BackfillStartMs
		}
	}
	step := w.cfg.BackfillStep.Milliseconds()
	for {
		ts := w.backfillStart + (w.skipped+int64(w.round))*step
		if ts > w.now().UnixMilli() {
			return 0, false
		}
		if ts >= w.cfg.BackfillSendMs {
			return ts, true
		}
		w.advance(ts)
		w.skipped++
	}
}

// advance moves every tenant's series to the round at ts.
func (w *writer) advance(ts int64) {
	start := time.Now()
	dt := 0.0
	if w.lastTs != 0 {
		dt = float64(ts-w.lastTs) / 1000
	}
	w.lastTs = ts
	for _, t := range w.tenants {
		w.churned += t.advance(dt, w.cfg.ChurnPerMinute)
	}
	w.buildTime += time.Since(start)
}

// buildBatch encodes series lo..hi-1 of tenant ti into a pooled, snappy-compressed body.
func (w *writer) buildBatch(ti int, round int32, lo, hi int, ts int64) *batch {
	start := time.Now()
	t := w.tenants[ti]
	b := &batch{tenant: ti, round: round, samples: hi - lo}
	raw := w.raw[:0]
	track := w.tracker != nil
	if w.v2 != nil {
		w.v2.reset()
	}
	t.series(lo, hi, func(tg *target, j int) {
		if w.v2 != nil {
			// The metric name stands for its help text: a symbol the table holds anyway.
			w.v2.appendSeries(tg.labelSet(t.tpl, j), metricTypeOf(t.tpl.series[j].kind), t.tpl.series[j].name, tg.values[j], ts)
		} else {
			raw = appendSeries(raw, tg.labels[j], tg.values[j], ts)
		}
		if track {
			b.ids = append(b.ids, tg.ids[j])
		}
	})
	if w.v2 != nil {
		raw = w.v2.request(raw)
	}
	w.raw = raw
	b.body = w.bodies.Get().(*[]byte)
	*b.body = snappy.Encode((*b.body)[:cap(*b.body)], raw)
	w.buildTime += time.Since(start)
	return b
}

func (w *writer) release(b *batch) { w.bodies.Put(b.body) }

// send pushes one batch and records the outcome.
func (w *writer) send(ctx context.Context, b *batch, st *pushStats) {
	defer w.release(b)
	if ctx.Err() != nil {
		return
	}
	ok, counted := w.pusher.push(ctx, w.tenants[b.tenant].name, *b.body, st)
	if !counted {
		return
	}
	st.requests++
	if !ok {
		st.failedSamples += int64(b.samples)
		return
	}
	st.accepted += int64(b.samples)
	if w.tracker != nil {
		w.tracker.tenants[b.tenant].ack(b.ids, b.round)
	}
}

// pushStats is one sender's tally; merged after the phase.
type pushStats struct {
	requests      int64
	accepted      int64
	failedSamples int64
	failed        map[string]int64
	retries       map[string]int64
	latencies     []time.Duration
}

func (s *pushStats) merge(o *pushStats) {
	s.requests += o.requests
	s.accepted += o.accepted
	s.failedSamples += o.failedSamples
	if s.failed == nil {
		s.failed, s.retries = map[string]int64{}, map[string]int64{}
	}
	for k, v := range maps.All(o.failed) {
		s.failed[k] += v
	}
	for k, v := range maps.All(o.retries) {
		s.retries[k] += v
	}
	s.latencies = append(s.latencies, o.latencies...)
}

func (s *pushStats) count(m *map[string]int64, key string) {
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[key]++
}
