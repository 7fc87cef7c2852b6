package distributor

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// OTLPHandler serves OTLP/HTTP metric exports (POST /otlp/v1/metrics): it translates them with
// Prometheus' OTLP translator and writes the result through the distributor, as a remote write.
type OTLPHandler struct {
	d *Distributor

	requests *prometheus.CounterVec
	points   *prometheus.CounterVec
}

// NewOTLPHandler returns the OTLP endpoint of d.
func NewOTLPHandler(d *Distributor, reg prometheus.Registerer) *OTLPHandler {
	return &OTLPHandler{
		d: d,
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_distributor_otlp_requests_total",
			Help: "OTLP metric export requests received, per tenant, whether accepted or not.",
		}, []string{"user"}),
		points: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_distributor_otlp_received_data_points_total",
			Help: "OTLP data points received in requests that decoded, per tenant, before translation and validation.",
		}, []string{"user"}),
	}
}

// otlpEncoding is how an OTLP/HTTP body and its response are encoded.
type otlpEncoding int

const (
	otlpProtobuf otlpEncoding = iota
	otlpJSON
)

func (e otlpEncoding) contentType() string {
	if e == otlpJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// ServeHTTP answers as OTLP/HTTP specifies: 200 with an ExportMetricsServiceResponse (with a partial
// success when some points were rejected), or an error status with a google.rpc.Status body, each in
// the request's encoding.
func (h *OTLPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	enc := otlpProtobuf
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOTLPError(w, enc, httpError(http.StatusMethodNotAllowed, "OTLP export requires POST"))
		return
	}
	enc, err := otlpEncodingOf(r)
	if err != nil {
		writeOTLPError(w, enc, err)
		return
	}
	tenantID, err := tenant.FromContext(r.Context())
	if err != nil {
		writeOTLPError(w, enc, httpError(http.StatusUnauthorized, "%v", err))
		return
	}
	h.requests.WithLabelValues(tenantID).Inc()

	req, err := h.translate(r, enc, tenantID)
	if err != nil {
		writeOTLPError(w, enc, err)
		return
	}
	samples := 0
	for _, ts := range req.wr.Timeseries {
		samples += len(ts.Samples) + len(ts.Histograms)
	}
	var (
		written writeStats
		pushErr error
	)
	switch {
	case len(req.wr.Timeseries) == 0:
	case req.starts != nil:
		written, pushErr = h.d.pushWithStarts(r.Context(), &req.wr, req.starts)
	default:
		written, pushErr = h.d.pushCounted(r.Context(), &req.wr)
	}
	resp, err := otlpOutcome(req, samples, written, pushErr)
	if err != nil {
		if code := statusOf(err); code >= 500 && h.d.failureLogs.Allow() {
			h.d.logger.Warn("OTLP push failed (at most one such line per second)", "tenant", tenantID, "err", err)
		}
		writeOTLPError(w, enc, err)
		return
	}
	writeOTLPResponse(w, enc, resp)
}

// otlpEncodingOf reads the request's content type and encoding; anything else is a 415.
func otlpEncodingOf(r *http.Request) (otlpEncoding, error) {
	ct := r.Header.Get("Content-Type")
	media, _, _ := mime.ParseMediaType(ct)
	var enc otlpEncoding
	switch media {
	case "application/x-protobuf":
		enc = otlpProtobuf
	case "application/json":
		enc = otlpJSON
	default:
		return otlpProtobuf, httpError(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: OTLP bodies must be application/x-protobuf or application/json", ct)
	}
	switch ce := strings.ToLower(r.Header.Get("Content-Encoding")); ce {
	case "", "identity", "gzip":
	default:
		return enc, httpError(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: OTLP bodies may be sent as they are or gzip-compressed", ce)
	}
	return enc, nil
}

// otlpRequest is an OTLP export translated into a remote-write request.
type otlpRequest struct {
	wr         prompb.WriteRequest
	dataPoints int // in the OTLP export
	translated int // data points that became samples
	errs       error
	warnings   []string
	// starts are the points' start times, when the tenant ingests them and some point has one.
	starts []pointStarts
}

// translate reads, decodes and translates the body. The body is held within the distributor's limits
// on requests in flight while it is decoded; the translated request is pushed after they are released,
// since Push counts itself.
func (h *OTLPHandler) translate(r *http.Request, enc otlpEncoding, tenantID string) (*otlpRequest, error) {
	if err := h.d.instance.admit(); err != nil {
		return nil, err
	}
	defer h.d.instance.release()
	maxSize := h.d.cfg.MaxRecvMsgSize

	compressed := compressedBuffers.Get()
	defer putBuffer(compressedBuffers, compressed)
	raw, err := readBounded(compressed, r.Body, r.ContentLength, maxSize, "request body")
	if err != nil {
		return nil, asClientError(err, "read request body")
	}
	size := int64(len(raw))
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, httpError(http.StatusBadRequest, "body is not valid gzip: %v", err)
		}
		decompressed := decompressedBuffers.Get()
		defer putBuffer(decompressedBuffers, decompressed)
		// Reading stops one byte past the limit: a gzip bomb costs at most the limit in memory.
		if raw, err = readBounded(decompressed, gz, -1, maxSize, "decompressed body"); err != nil {
			return nil, asClientError(err, "body is not valid gzip")
		}
		size += int64(len(raw))
	}
	// Held at what the request will take once decoded, which can be many times its size.
	decoded := decodedSize(raw, enc == otlpJSON)
	if decoded > maxDecodedExpansion*maxSize {
		return nil, httpError(http.StatusRequestEntityTooLarge, "the request would take about %d bytes once decoded, more than %d times the limit of %d (-distributor.max-recv-msg-size): send fewer data points or attributes per request",
			decoded, maxDecodedExpansion, maxSize)
	}
	size += int64(decoded)
	if err := h.d.instance.holdBytes(size); err != nil {
		return nil, err
	}
	defer h.d.instance.releaseBytes(size)

	export := pmetricotlp.NewExportRequest()
	if enc == otlpJSON {
		err = export.UnmarshalJSON(raw)
	} else {
		err = export.UnmarshalProto(raw)
	}
	if err != nil {
		return nil, httpError(http.StatusBadRequest, "body is not an OTLP ExportMetricsServiceRequest in %s: %v", enc.contentType(), err)
	}
	md := export.Metrics()
	points := md.DataPointCount()
	h.points.WithLabelValues(tenantID).Add(float64(points))

	limits := h.d.limits.For(tenantID)
	if names, n := deltaMetrics(md, maxReportedErrors); n > 0 && !limits.OTelNativeDeltaIngestion {
		more := ""
		if n > len(names) {
			more = fmt.Sprintf(" (and %d more)", n-len(names))
		}
		return nil, httpError(http.StatusBadRequest, "metric %s%s has delta temporality: Strata stores cumulative metrics only; export with cumulative temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative in OTel SDKs) or convert with the OpenTelemetry Collector's deltatocumulative processor, or ask for otel_native_delta_ingestion to store them as they are",
			strings.Join(names, ", "), more)
	}

	t := translateOTLP(r.Context(), md, limits, maxDecodedExpansion*maxSize)
	if t.tooLarge {
		return nil, httpError(http.StatusRequestEntityTooLarge, "the request translates to more than %d bytes of series and samples, %d times the limit of %d (-distributor.max-recv-msg-size): send fewer data points per request",
			maxDecodedExpansion*maxSize, maxDecodedExpansion, maxSize)
	}
	if err := r.Context().Err(); err != nil {
		return nil, httpError(http.StatusServiceUnavailable, "request cancelled during translation: %v", err)
	}
	return &otlpRequest{wr: t.req, dataPoints: points, translated: min(t.points, points), errs: t.errs, warnings: t.warnings, starts: t.starts}, nil
}

// readBounded reads src into buf, refusing more than maxSize bytes with 413. announced is the length the
// client gave, -1 if none: only its first MiB is allocated ahead, the rest as bytes arrive. A failed
// read is returned as it is.
func readBounded(buf *bytes.Buffer, src io.Reader, announced int64, maxSize int, what string) ([]byte, error) {
	if announced > int64(maxSize) {
		return nil, httpError(http.StatusRequestEntityTooLarge, "%s is %d bytes, limit is %d (-distributor.max-recv-msg-size)", what, announced, maxSize)
	}
	buf.Reset()
	if announced > 0 {
		buf.Grow(int(min(announced, maxPreallocatedBody)))
	}
	if _, err := buf.ReadFrom(io.LimitReader(src, int64(maxSize)+1)); err != nil {
		return nil, err
	}
	if buf.Len() > maxSize {
		return nil, httpError(http.StatusRequestEntityTooLarge, "%s is larger than the limit of %d bytes (-distributor.max-recv-msg-size)", what, maxSize)
	}
	return buf.Bytes(), nil
}

// asClientError gives a read error without a status of its own a 400 that says what failed.
func asClientError(err error, what string) error {
	var ews *errorWithStatus
	if errors.As(err, &ews) {
		return err
	}
	return httpError(http.StatusBadRequest, "%s: %v", what, err)
}

// otlpOutcome turns the translation's losses and the push's answer into the response: a success,
// partial when some points were lost, or an error when nothing was written or the failure is worth a
// retry.
func otlpOutcome(req *otlpRequest, samples int, written writeStats, pushErr error) (pmetricotlp.ExportResponse, error) {
	resp := pmetricotlp.NewExportResponse()
	var messages []string
	rejected := req.dataPoints - req.translated
	if req.errs != nil {
		messages = append(messages, "translation: "+req.errs.Error())
	}
	if rejected > 0 && len(req.warnings) > 0 {
		messages = append(messages, "translation warnings: "+strings.Join(req.warnings, "; "))
	}
	code := 0
	if pushErr != nil {
		code = statusOf(pushErr)
	}
	switch {
	case pushErr == nil:
	case code >= 200 && code < 300:
		// Dropped on purpose (say, the samples of an HA replica that is not elected): nothing to retry
		// or fix, a warning.
		messages = append(messages, pushErr.Error())
	case code != http.StatusBadRequest:
		return resp, pushErr
	default:
		// Refused by validation or by ingesters; none when only metadata was.
		n := samples - written.samples - written.histograms
		if n >= samples {
			return resp, pushErr // nothing was written
		}
		// Samples, not points: a classic histogram point is several samples, so the count is capped.
		rejected = min(rejected+n, req.dataPoints)
		messages = append(messages, pushErr.Error())
	}
	if req.translated == 0 && req.dataPoints > 0 {
		return resp, httpError(http.StatusBadRequest, "no data point could be translated: %s", strings.Join(messages, "\n"))
	}
	if rejected > 0 || len(messages) > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(strings.Join(messages, "\n"))
	}
	return resp, nil
}

func writeOTLPResponse(w http.ResponseWriter, enc otlpEncoding, resp pmetricotlp.ExportResponse) {
	var body []byte
	var err error
	if enc == otlpJSON {
		body, err = resp.MarshalJSON()
	} else {
		body, err = resp.MarshalProto()
	}
	if err != nil {
		writeOTLPError(w, enc, httpError(http.StatusInternalServerError, "encode response: %v", err))
		return
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeOTLPError answers err's status with a google.rpc.Status carrying its message, as OTLP/HTTP
// clients read it; 429 and 503 say when to retry, as remote write does.
func writeOTLPError(w http.ResponseWriter, enc otlpEncoding, err error) {
	code := statusOf(err)
	st := &rpcstatus.Status{Code: int32(grpcCodeOf(code)), Message: err.Error()}
	var body []byte
	var mErr error
	if enc == otlpJSON {
		body, mErr = protojson.Marshal(st)
	} else {
		body, mErr = proto.Marshal(st)
	}
	if mErr != nil {
		http.Error(w, err.Error(), code)
		return
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// grpcCodeOf is the google.rpc.Code that goes with an HTTP status in an OTLP error body.
func grpcCodeOf(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return codes.Unimplemented
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}
