// Package distributor receives remote-write requests, validates them, and replicates each series to the
// ingesters that own it in the ring.
package distributor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/prompb"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/remotewrite"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// maxReportedErrors bounds how many rejected series a 400 response describes.
const maxReportedErrors = 10

// Config configures the distributor.
type Config struct {
	ReplicationFactor int
	MaxRecvMsgSize    int
	RemoteTimeout     time.Duration
	InstanceLimits    InstanceLimits
	HATracker         HATrackerConfig
}

// RegisterFlags registers the distributor's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&c.ReplicationFactor, "distributor.replication-factor", 0, "Number of ingesters each series is written to. 0 picks 1 with the in-process ring (-target=all) and 3 otherwise.")
	f.IntVar(&c.MaxRecvMsgSize, "distributor.max-recv-msg-size", 100<<20, "Largest remote-write or OTLP request accepted, in bytes, both compressed and decompressed.")
	f.DurationVar(&c.RemoteTimeout, "distributor.remote-timeout", 2*time.Second, "Timeout of each push to an ingester.")
	c.InstanceLimits.RegisterFlags(f)
	c.HATracker.RegisterFlags(f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ReplicationFactor < 0 {
		return errors.New("-distributor.replication-factor must not be negative")
	}
	if c.MaxRecvMsgSize <= 0 {
		return errors.New("-distributor.max-recv-msg-size must be positive")
	}
	if err := c.HATracker.Validate(); err != nil {
		return err
	}
	return c.InstanceLimits.Validate()
}

// IngesterClients gives the distributor the pusher of an ingester address.
type IngesterClients interface {
	PusherFor(addr string) (client.Pusher, error)
}

// Distributor validates pushed series and writes them to their replication set with quorum.
type Distributor struct {
	cfg      Config
	limits   *validation.Overrides
	rates    *rateLimiters
	instance *instanceLimiter
	// failureLogs rate-limits the log lines of failed pushes.
	failureLogs *rate.Limiter
	ring        ring.ReadRing
	clients     IngesterClients
	haTracker   *HATracker // nil without -distributor.ha-tracker.enable
	logger      *slog.Logger
	now         func() time.Time

	discardedSamples  *prometheus.CounterVec
	discardedMetadata *prometheus.CounterVec
	receivedSamples   *prometheus.CounterVec
	pushDuration      *prometheus.HistogramVec
}

// New builds a distributor. distributors counts the distributors that share the tenants' rate limits;
// nil means this one alone.
func New(cfg Config, limits *validation.Overrides, distributors ring.HealthyCounter, r ring.ReadRing, clients IngesterClients, discardedSamples, discardedMetadata *prometheus.CounterVec, reg prometheus.Registerer, logger *slog.Logger) (*Distributor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Distributor{
		cfg:               cfg,
		limits:            limits,
		rates:             newRateLimiters(distributors),
		instance:          newInstanceLimiter(cfg.InstanceLimits),
		failureLogs:       rate.NewLimiter(1, 1),
		ring:              r,
		clients:           clients,
		logger:            logger,
		now:               time.Now,
		discardedSamples:  discardedSamples,
		discardedMetadata: discardedMetadata,
		receivedSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_distributor_received_samples_total",
			Help: "Samples, histograms included, that passed validation and were sent to ingesters.",
		}, []string{"user"}),
		pushDuration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "strata_distributor_push_duration_seconds",
			Help:                        "Time to validate and replicate one remote-write request.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"status"}),
	}, nil
}

// ServeHTTP handles POST /api/v1/push (remote write 1.0).
func (d *Distributor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		http.Error(w, "remote write requires POST", http.StatusMethodNotAllowed)
		return
	}
	err := d.instance.admit()
	if err == nil {
		defer d.instance.release()
		// Requests over the tenant's request rate are refused before their body is read and decoded.
		err = d.checkRequestRate(r.Context())
	}
	var (
		decoded *decodedRequest
		written writeStats // for a 2.0 request's response headers
	)
	if err == nil {
		decoded, err = decodeWriteRequest(r, d.cfg.MaxRecvMsgSize)
	}
	if err == nil {
		// Counted once read: what a client only announces (Content-Length) holds no budget.
		size := int64(decoded.size)
		if err = d.instance.holdBytes(size); err == nil {
			defer d.instance.releaseBytes(size)
		} else {
			decoded.body.Free()
		}
	}
	if err == nil {
		written, err = d.push(r.Context(), decoded.req, decoded)
	}
	code := http.StatusNoContent
	if err != nil {
		code = statusOf(err)
	}
	if decoded != nil && decoded.version == 2 {
		written.setHeaders(w.Header())
	}
	if err != nil {
		// A flood of failing pushes must not become a flood of log lines.
		if code >= 500 && d.failureLogs.Allow() {
			d.logger.Warn("push failed (at most one such line per second)", "err", err)
		}
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			// Prometheus waits this long before it retries a 429 (retry_on_http_429) or 5xx.
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, err.Error(), code)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	d.pushDuration.WithLabelValues(fmt.Sprint(code)).Observe(time.Since(start).Seconds())
}

// Push validates and writes req for the tenant in ctx, within the same limits as a remote write: the
// ruler writes its recording rules' results and alert state through it.
func (d *Distributor) Push(ctx context.Context, req *prompb.WriteRequest) error {
	_, err := d.pushCounted(ctx, req)
	return err
}

// pushCounted is Push that also says what was written, for a partial success's counts.
func (d *Distributor) pushCounted(ctx context.Context, req *prompb.WriteRequest) (writeStats, error) {
	return d.admitted(ctx, func() (writeStats, error) { return d.push(ctx, req, nil) })
}

// admitted runs push within the instance's limit on requests in flight and the tenant's request rate, as
// a pushed request that did not come through ServeHTTP.
func (d *Distributor) admitted(ctx context.Context, push func() (writeStats, error)) (writeStats, error) {
	if err := d.instance.admit(); err != nil {
		return writeStats{}, err
	}
	defer d.instance.release()
	if err := d.checkRequestRate(ctx); err != nil {
		return writeStats{}, err
	}
	return push()
}

// push validates req and replicates its valid series. Invalid series are counted and dropped while the
// valid ones are still written; the error is then a 400 that lists the first few rejections. When
// received is not nil, req was decoded from received.body: series passed on unchanged are sent as the
// bytes they arrived in, and the distributor's reference to the body is freed once the last replication
// to an ingester has finished, which may be after push returned. written counts what was written, for
// remote write 2.0's response headers.
func (d *Distributor) push(ctx context.Context, req *prompb.WriteRequest, received *decodedRequest) (written writeStats, _ error) {
	release := func() {}
	var body mem.Buffer
	if received != nil {
		body, release = received.body, received.body.Free
	}
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		release()
		return written, httpError(http.StatusUnauthorized, "%v", err)
	}
	limits := d.limits.For(tenantID)
	removeReplica, err := d.checkHAReplica(ctx, tenantID, limits, req)
	if err != nil {
		if statusOf(err) == http.StatusAccepted {
			// Samples of an HA replica that is not the elected one are dropped because the elected one
			// writes the same: for the sender they are delivered, and a 2xx that says nothing was written
			// would make Prometheus take the batch for failed.
			written = countWrites(req)
		}
		release()
		return written, err
	}
	now := d.now()
	rejections := rejectionList{}
	if received != nil && received.decoderV2 != nil {
		for _, invalid := range received.decoderV2.Invalid() {
			err := &validation.Error{Reason: validation.ReasonInvalidSeries, Message: "remote write 2.0 series left out: " + invalid.Err.Error()}
			d.discard(tenantID, err, invalid.Samples)
			rejections.add(err)
		}
	}

	keys := make([]uint32, 0, len(req.Timeseries)+len(req.Metadata))
	accepted := req.Timeseries[:0]
	var fields []remotewrite.FieldRange // where each accepted series is in body, if unchanged
	if received != nil {
		fields = make([]remotewrite.FieldRange, 0, len(req.Timeseries))
	}
	samples := 0
	var relabelledV2 []relabelledSeries
	for i, ts := range req.Timeseries {
		// Relabelled series are encoded again rather than forwarded as received.
		relabelled := removeReplica && dropLabel(&ts.Labels, limits.HAReplicaLabel)
		if err := validation.ValidateLabels(limits, ts.Labels); err != nil {
			d.discard(tenantID, err, len(ts.Samples)+len(ts.Histograms))
			rejections.add(err)
			continue
		}
		floats, histograms := len(ts.Samples), len(ts.Histograms)
		ts.Samples = d.dropFutureSamples(tenantID, limits, now, ts, &rejections)
		ts.Histograms = d.dropFutureHistograms(tenantID, limits, now, ts, &rejections)
		// Prometheus sends exemplars apart from their samples, in series of their own.
		if len(ts.Samples)+len(ts.Histograms)+len(ts.Exemplars) == 0 {
			continue
		}
		samples += len(ts.Samples) + len(ts.Histograms)
		written.add(&ts)
		accepted = append(accepted, ts)
		keys = append(keys, seriesToken(tenantID, ts.Labels))
		if received != nil {
			var field remotewrite.FieldRange // empty: encode the changed series again
			unchanged := len(ts.Samples) == floats && len(ts.Histograms) == histograms
			switch {
			case unchanged && !relabelled:
				field = received.seriesField(i)
			case received.decoderV2 != nil:
				// A 2.0 series that lost its replica label or samples too far in the future stays a 2.0
				// series, start timestamps included.
				relabelledV2 = append(relabelledV2, relabelledSeries{accepted: len(accepted) - 1, received: i, dropLabel: relabelled})
			}
			fields = append(fields, field)
		}
	}
	metadata := req.Metadata[:0]
	for _, m := range req.Metadata {
		if err := validation.ValidateMetadata(limits, &m); err != nil {
			d.discardedMetadata.WithLabelValues(reasonOf(err), tenantID).Inc()
			rejections.add(err)
			continue
		}
		metadata = append(metadata, m)
		keys = append(keys, metadataToken(tenantID, m.MetricFamilyName))
	}

	if len(keys) == 0 {
		release()
		return written, rejections.err()
	}
	if err := d.instance.allowSamples(now, samples); err != nil {
		release()
		return writeStats{}, err
	}
	if !d.rates.allowSamples(tenantID, limits, now, samples) {
		release()
		d.discardedSamples.WithLabelValues(validation.ReasonIngestionRate, tenantID).Add(float64(samples))
		return writeStats{}, httpError(http.StatusTooManyRequests, "%v", validation.NewLimitError("ingestion_rate",
			"the request's %d samples would take the tenant over its ingestion rate of %g samples/s (burst %d)",
			samples, limits.IngestionRate, limits.IngestionBurstSize))
	}
	d.receivedSamples.WithLabelValues(tenantID).Add(float64(samples))
	var v2 *receivedV2
	if received != nil && received.decoderV2 != nil {
		v2 = &receivedV2{symbols: received.decoderV2.SymbolFields(), decoder: received.decoderV2,
			body: received.body.ReadOnlyData(), relabelled: relabelledV2, droppedLabel: limits.HAReplicaLabel,
			maxT: validation.LatestSampleTimestamp(limits, now)}
	}
	encoded, err := encodeEntries(body, accepted, fields, v2, metadata)
	if err != nil {
		release()
		return writeStats{}, httpError(http.StatusInternalServerError, "encode series: %v", err)
	}
	if rejected, err := d.replicate(ctx, encoded, keys, release); err != nil {
		if statusOf(err) >= 500 {
			written = writeStats{}
		}
		written.samples = max(0, written.samples-rejected.samples)
		written.histograms = max(0, written.histograms-rejected.histograms)
		return written, err
	}
	return written, rejections.err()
}

// writeStats counts what a push wrote, as remote write 2.0 reports it.
type writeStats struct {
	samples, histograms, exemplars int
}

func (s *writeStats) add(ts *prompb.TimeSeries) {
	s.samples += len(ts.Samples)
	s.histograms += len(ts.Histograms)
	s.exemplars += len(ts.Exemplars)
}

// countWrites counts what req holds.
func countWrites(req *prompb.WriteRequest) writeStats {
	var s writeStats
	for i := range req.Timeseries {
		s.add(&req.Timeseries[i])
	}
	return s
}

// setHeaders sets the X-Prometheus-Remote-Write-*-Written headers a 2.0 sender reads.
func (s writeStats) setHeaders(h http.Header) {
	h.Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(s.samples))
	h.Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.Itoa(s.histograms))
	h.Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.Itoa(s.exemplars))
}

// checkRequestRate refuses a request beyond the tenant's request rate with 429.
func (d *Distributor) checkRequestRate(ctx context.Context) error {
	tenantID, err := tenant.FromContext(ctx)
	if err != nil {
		return nil // push answers it
	}
	limits := d.limits.For(tenantID)
	if d.rates.allowRequest(tenantID, limits, d.now()) {
		return nil
	}
	return httpError(http.StatusTooManyRequests, "%v", validation.NewLimitError("request_rate",
		"the tenant sends more than its request rate of %g requests/s (burst %d)", limits.RequestRate, max(limits.RequestBurstSize, 1)))
}

// replicate sends every series and metadata entry (keys holds their tokens, series first) to its
// replication set and waits for a quorum of each; release runs once every replication has finished.
// When ingesters refused some samples as bad input, rejected counts them.
func (d *Distributor) replicate(ctx context.Context, encoded *encodedEntries, keys []uint32, release func()) (rejected writeStats, _ error) {
	// Writes that have started must complete even if the client goes away: a quorum may already have
	// acknowledged them elsewhere.
	ctx = context.WithoutCancel(ctx)
	err := ring.DoBatch(ctx, ring.Write, d.ring, keys, func(inst ring.InstanceDesc, indexes []int) error {
		req := encoded.request(indexes)
		pusher, err := d.clients.PusherFor(inst.Addr)
		if err != nil {
			return err
		}
		callCtx, cancel := context.WithTimeout(ctx, d.cfg.RemoteTimeout)
		defer cancel()
		if err := pusher.PushEncoded(callCtx, req); err != nil {
			return fmt.Errorf("push to ingester %s (%s): %w", inst.ID, inst.Addr, err)
		}
		return nil
	}, isClientError, release)
	if err == nil {
		return rejected, nil
	}
	if isClientError(err) {
		st := grpcStatus(err)
		for _, detail := range st.Details() {
			if r, ok := detail.(*ingesterpb.PushRejected); ok {
				rejected.samples, rejected.histograms = int(r.Samples), int(r.Histograms)
			}
		}
		return rejected, httpError(http.StatusBadRequest, "%s", st.Message())
	}
	return rejected, httpError(http.StatusInternalServerError, "%v", err)
}

// isClientError tells an ingester's rejection of bad samples (don't retry) from its failures.
func isClientError(err error) bool {
	s := grpcStatus(err)
	return s != nil && s.Code() == codes.InvalidArgument
}

// grpcStatus is the status of an ingester's answer that replicate wrapped with the ingester's name, or
// nil for an error that is no gRPC status.
func grpcStatus(err error) *status.Status {
	if inner := errors.Unwrap(err); inner != nil {
		if s, ok := status.FromError(inner); ok {
			return s
		}
	}
	if s, ok := status.FromError(err); ok {
		return s
	}
	return nil
}

func (d *Distributor) dropFutureSamples(tenantID string, limits *validation.Limits, now time.Time, ts prompb.TimeSeries, rejections *rejectionList) []prompb.Sample {
	kept := ts.Samples[:0]
	for _, s := range ts.Samples {
		if err := validation.ValidateSampleTimestamp(limits, now, s.Timestamp, ts.Labels); err != nil {
			d.discard(tenantID, err, 1)
			rejections.add(err)
			continue
		}
		kept = append(kept, s)
	}
	return kept
}

func (d *Distributor) dropFutureHistograms(tenantID string, limits *validation.Limits, now time.Time, ts prompb.TimeSeries, rejections *rejectionList) []prompb.Histogram {
	kept := ts.Histograms[:0]
	for _, h := range ts.Histograms {
		if err := validation.ValidateSampleTimestamp(limits, now, h.Timestamp, ts.Labels); err != nil {
			d.discard(tenantID, err, 1)
			rejections.add(err)
			continue
		}
		kept = append(kept, h)
	}
	return kept
}

func (d *Distributor) discard(tenantID string, err error, samples int) {
	if samples > 0 {
		d.discardedSamples.WithLabelValues(reasonOf(err), tenantID).Add(float64(samples))
	}
}

// rejectionList keeps the first few validation errors of a request for its 400 response.
type rejectionList struct {
	count    int
	messages []string
}

func (r *rejectionList) add(err error) {
	r.count++
	if len(r.messages) < maxReportedErrors {
		r.messages = append(r.messages, err.Error())
	}
}

func (r *rejectionList) err() error {
	if r.count == 0 {
		return nil
	}
	more := ""
	if r.count > len(r.messages) {
		more = fmt.Sprintf("\n(and %d more)", r.count-len(r.messages))
	}
	return httpError(http.StatusBadRequest, "%d rejected: %s%s", r.count, strings.Join(r.messages, "\n"), more)
}

func reasonOf(err error) string {
	if reason, ok := validation.ReasonOf(err); ok {
		return reason
	}
	return "other"
}
