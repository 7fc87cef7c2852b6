package querymiddleware

import (
	"bytes"
	"context"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// rangeQueryPath ends the path of the Prometheus API's range query endpoint, whatever prefix it is under.
const rangeQueryPath = "/api/v1/query_range"

// maxPointsPerSeries is the querier's bound on a range query's resolution (Prometheus' 11,000): a query
// over it is left to the querier, which refuses it, so the split never makes more parts than points.
const maxPointsPerSeries = 11000

// maxEvalMillis bounds the times the PromQL engine can evaluate at (int64 nanoseconds since 1970), in
// milliseconds; the querier refuses times beyond.
const maxEvalMillis = math.MaxInt64 / int64(time.Millisecond)

// maxFormBytes bounds a form body read to find the query's parameters, as net/http's ParseForm does.
const maxFormBytes = 10 << 20

// rangeQuery is a range query whose parameters the middleware read exactly as the querier reads them.
type rangeQuery struct {
	request *http.Request
	query   string
	// start, end and step are in milliseconds; end is the query's last point (start + k*step), which
	// may be before the end the client asked for.
	start, end, step int64
	// askedEnd is the end the client asked for, which @ end() means.
	askedEnd int64
	// params are the other parameters (timeout, lookback_delta...), sent with every part.
	params url.Values
}

// readRangeQuery returns the range query of req, or nil when the middleware leaves req to the querier as
// it is: a parameter missing, invalid or not read exactly alike by both (a time with sub-millisecond
// digits), or a request the querier will refuse (end before start, over 11,000 points). The querier then
// answers with its own error. The returned request is req, or a copy holding req's form body when it
// had to read it; send that one on.
func readRangeQuery(req *http.Request) (*rangeQuery, *http.Request, error) {
	form, req, err := readForm(req)
	if err != nil || form == nil {
		return nil, req, err
	}
	start, ok := parseTimeMillis(form.Get("start"))
	if !ok {
		return nil, req, nil
	}
	end, ok := parseTimeMillis(form.Get("end"))
	if !ok || end < start {
		return nil, req, nil
	}
	step, ok := parseStepMillis(form.Get("step"))
	if !ok || (end-start)/step > maxPointsPerSeries {
		return nil, req, nil
	}
	q := &rangeQuery{
		request:  req,
		query:    form.Get("query"),
		start:    start,
		end:      start + (end-start)/step*step,
		step:     step,
		askedEnd: end,
		params:   form,
	}
	if q.query == "" || !optionalDuration(form, "timeout") || !optionalDuration(form, "lookback_delta") {
		return nil, req, nil
	}
	for _, name := range []string{"query", "start", "end", "step"} {
		delete(q.params, name)
	}
	return q, req, nil
}

// readForm returns the parameters of req as the querier's ParseForm reads them: the query string, and for
// a POST the form body first. A POST body is read and put back in a copy of req. A body that is not a
// form, or too large, gives no parameters.
func readForm(req *http.Request) (url.Values, *http.Request, error) {
	query, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return nil, req, nil
	}
	switch req.Method {
	case http.MethodGet:
		return query, req, nil
	case http.MethodPost:
	default:
		return nil, req, nil
	}
	if req.Body == nil || req.Body == http.NoBody {
		return query, req, nil
	}
	contentType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if contentType != "application/x-www-form-urlencoded" {
		return nil, req, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxFormBytes+1))
	if err != nil {
		_ = req.Body.Close()
		return nil, req, err
	}
	copied := req.Clone(req.Context())
	if len(body) > maxFormBytes {
		copied.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), req.Body), req.Body}
		return nil, copied, nil
	}
	_ = req.Body.Close()
	copied.Body = io.NopCloser(bytes.NewReader(body))
	copied.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	copied.ContentLength = int64(len(body))
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, copied, nil
	}
	for name, values := range query {
		form[name] = append(form[name], values...)
	}
	return form, copied, nil
}

// parseTimeMillis reads a time as the querier does (Unix seconds with a fraction rounded to the
// millisecond, or RFC 3339), refusing what the querier refuses and times with sub-millisecond digits,
// which the querier reads differently.
func parseTimeMillis(s string) (int64, bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if !(math.Abs(f) < float64(maxEvalMillis/1000+1)) { // NaN, ±Inf and what overflows
			return 0, false
		}
		sec, frac := math.Modf(f)
		ms := int64(sec)*1000 + int64(math.Round(frac*1000))
		return ms, ms >= -maxEvalMillis && ms <= maxEvalMillis
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Nanosecond()%int(time.Millisecond) != 0 {
		return 0, false
	}
	ms := t.UnixMilli()
	if ms < -maxEvalMillis || ms > maxEvalMillis {
		return 0, false
	}
	return ms, true
}

// parseStepMillis reads a positive step as the querier does (seconds with a fraction, or a Prometheus
// duration), refusing steps that are not a whole number of milliseconds, which the engine truncates.
func parseStepMillis(s string) (int64, bool) {
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if !(ns > 0 && ns < math.MaxInt64) {
			return 0, false
		}
		d = time.Duration(ns)
	} else if md, err := model.ParseDuration(s); err == nil {
		d = time.Duration(md)
	} else {
		return 0, false
	}
	if d <= 0 || d%time.Millisecond != 0 {
		return 0, false
	}
	return d.Milliseconds(), true
}

// optionalDuration reports whether parameter name of form is absent or a duration the querier reads:
// otherwise each part would be refused alike, where one request to the querier suffices.
func optionalDuration(form url.Values, name string) bool {
	s := form.Get(name)
	if s == "" {
		return true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		return ns > math.MinInt64 && ns < math.MaxInt64
	}
	_, err := model.ParseDuration(s)
	return err == nil
}

// partRequest is a GET request of the same path with the same headers for query over start..end.
func (q *rangeQuery) partRequest(ctx context.Context, query string, start, end int64) *http.Request {
	values := make(url.Values, len(q.params)+4)
	for name, v := range q.params {
		values[name] = v
	}
	values.Set("query", query)
	values.Set("start", formatMillis(start))
	values.Set("end", formatMillis(end))
	values.Set("step", model.Duration(time.Duration(q.step)*time.Millisecond).String())
	u := *q.request.URL
	u.RawQuery = values.Encode()
	header := q.request.Header.Clone()
	// The parts have no body; and their answers are read here, so they must not come compressed.
	for _, name := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Accept-Encoding"} {
		header.Del(name)
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       q.request.Host,
		RemoteAddr: q.request.RemoteAddr,
	}
	return req.WithContext(ctx)
}

// formatMillis writes a time as Unix seconds with three decimals, which the querier reads back exactly.
func formatMillis(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	frac := strconv.FormatInt(1000+ms%1000, 10)[1:] // zero-padded to 3 digits
	return sign + strconv.FormatInt(ms/1000, 10) + "." + frac
}

// hasNoStore reports whether h has Cache-Control: no-store.
func hasNoStore(h http.Header) bool {
	for _, value := range h.Values("Cache-Control") {
		for _, directive := range strings.Split(value, ",") {
			if strings.EqualFold(strings.TrimSpace(directive), "no-store") {
				return true
			}
		}
	}
	return false
}
