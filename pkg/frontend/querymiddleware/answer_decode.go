package querymiddleware

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// decodeAnswer reads a querier's successful answer to the range query start..end (on its grid) as an
// extent. Points outside the range or out of time order are an error: merging relies on them.
//
// Every part's answer goes through here, so it is a parser of this one shape of JSON rather than
// encoding/json, which takes about five times as long and three allocations per point; strings with
// escapes, rare in answers, are handed to encoding/json so that they read exactly as it reads them.
func decodeAnswer(body []byte, start, end int64) (*extent, error) {
	d := &answerDecoder{b: body}
	e := &extent{start: start, end: end}
	var status, resultType string
	err := d.object(func(key []byte) (err error) {
		switch string(key) {
		case "status":
			status, err = d.string()
		case "data":
			return d.object(func(key []byte) (err error) {
				switch string(key) {
				case "resultType":
					resultType, err = d.string()
				case "result":
					return d.array(func() error {
						s, err := d.series()
						if err == nil {
							err = checkPoints(s, start, end)
						}
						if err != nil {
							return fmt.Errorf("series %d: %w", len(e.series), err)
						}
						e.series = append(e.series, s)
						return nil
					})
				default:
					return d.skip()
				}
				return err
			})
		case "warnings":
			e.warnings, err = d.strings()
		case "infos":
			e.infos, err = d.strings()
		default:
			return d.skip()
		}
		return err
	})
	if err == nil {
		if d.space(); d.pos != len(d.b) {
			err = d.errorf("data after the answer")
		}
	}
	if err != nil {
		return nil, err
	}
	if status != "success" || resultType != "matrix" {
		return nil, fmt.Errorf("expected a successful matrix answer, got status %q and result type %q", status, resultType)
	}
	return e, nil
}

// answerDecoder reads JSON from b at pos.
type answerDecoder struct {
	b       []byte
	pos     int
	builder labels.ScratchBuilder
}

func (d *answerDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d of the answer: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *answerDecoder) space() {
	for d.pos < len(d.b) {
		switch d.b[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// consume skips space and c, or fails.
func (d *answerDecoder) consume(c byte) error {
	d.space()
	if d.pos >= len(d.b) || d.b[d.pos] != c {
		return d.errorf("expected %q", c)
	}
	d.pos++
	return nil
}

// next skips space and reports whether the next byte is c, consuming it if so.
func (d *answerDecoder) next(c byte) bool {
	d.space()
	if d.pos < len(d.b) && d.b[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// object reads an object, calling member with each key when the decoder is at its value, which member
// must read.
func (d *answerDecoder) object(member func(key []byte) error) error {
	if err := d.consume('{'); err != nil {
		return err
	}
	if d.next('}') {
		return nil
	}
	for {
		key, err := d.stringBytes()
		if err != nil {
			return err
		}
		if err := d.consume(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		if d.next('}') {
			return nil
		}
		if err := d.consume(','); err != nil {
			return err
		}
	}
}

// array reads an array, calling element at each element, which element must read. null is an empty
// array.
func (d *answerDecoder) array(element func() error) error {
	if d.literal("null") {
		return nil
	}
	if err := d.consume('['); err != nil {
		return err
	}
	if d.next(']') {
		return nil
	}
	for {
		if err := element(); err != nil {
			return err
		}
		if d.next(']') {
			return nil
		}
		if err := d.consume(','); err != nil {
			return err
		}
	}
}

// literal consumes word (null, true, false) if it is next.
func (d *answerDecoder) literal(word string) bool {
	d.space()
	if len(d.b)-d.pos >= len(word) && string(d.b[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

// stringBytes reads a string. Without escapes it is a view of the input; with some, encoding/json
// decodes it.
func (d *answerDecoder) stringBytes() ([]byte, error) {
	if err := d.consume('"'); err != nil {
		return nil, err
	}
	begin, escaped := d.pos, false
	for ; d.pos < len(d.b); d.pos++ {
		switch c := d.b[d.pos]; {
		case c == '"':
			raw := d.b[begin:d.pos]
			d.pos++
			if !escaped && utf8.Valid(raw) {
				return raw, nil
			}
			var s string
			if err := json.Unmarshal(d.b[begin-1:d.pos], &s); err != nil {
				return nil, err
			}
			return []byte(s), nil
		case c == '\\':
			escaped = true
			d.pos++ // the escaped byte cannot end the string
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		}
	}
	return nil, d.errorf("unterminated string")
}

func (d *answerDecoder) string() (string, error) {
	b, err := d.stringBytes()
	return string(b), err
}

func (d *answerDecoder) strings() ([]string, error) {
	var out []string
	err := d.array(func() error {
		s, err := d.string()
		out = append(out, s)
		return err
	})
	return out, err
}

// number returns the next number's bytes, unchecked.
func (d *answerDecoder) number() []byte {
	d.space()
	begin := d.pos
	for ; d.pos < len(d.b); d.pos++ {
		if c := d.b[d.pos]; (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
	}
	return d.b[begin:d.pos]
}

// skip reads any value.
func (d *answerDecoder) skip() error {
	d.space()
	if d.pos >= len(d.b) {
		return d.errorf("expected a value")
	}
	switch d.b[d.pos] {
	case '"':
		_, err := d.stringBytes()
		return err
	case '{':
		return d.object(func([]byte) error { return d.skip() })
	case '[':
		return d.array(d.skip)
	}
	if d.literal("null") || d.literal("true") || d.literal("false") || len(d.number()) > 0 {
		return nil
	}
	return d.errorf("expected a value")
}

// series reads {"metric": {...}, "values": [...], "histograms": [...]}.
func (d *answerDecoder) series() (*series, error) {
	s := &series{}
	err := d.object(func(key []byte) error {
		switch string(key) {
		case "metric":
			return d.metric(s)
		case "values":
			return d.floatPoints(s)
		case "histograms":
			return d.array(func() error {
				p, err := d.histogramPoint()
				s.Histograms = append(s.Histograms, p)
				return err
			})
		}
		return d.skip()
	})
	return s, err
}

func (d *answerDecoder) metric(s *series) error {
	d.builder.Reset()
	err := d.object(func(name []byte) error {
		value, err := d.stringBytes()
		d.builder.Add(string(name), string(value))
		return err
	})
	d.builder.Sort()
	s.Metric = d.builder.Labels()
	return err
}

// floatPoints reads [[<time>, "<value>"], ...], the hot path.
func (d *answerDecoder) floatPoints(s *series) error {
	return d.array(func() error {
		t, err := d.pointTime()
		if err != nil {
			return err
		}
		value, err := d.stringBytes()
		if err != nil {
			return err
		}
		f, err := parseFloat(value)
		if err != nil {
			return d.errorf("sample value: %v", err)
		}
		s.Floats = append(s.Floats, floatPoint{T: t, F: f})
		return d.consume(']')
	})
}

// pointTime reads the opening of a point, [<time>, and returns the time in milliseconds.
func (d *answerDecoder) pointTime() (int64, error) {
	if err := d.consume('['); err != nil {
		return 0, err
	}
	t, err := parseTimestamp(d.number())
	if err != nil {
		return 0, d.errorf("%v", err)
	}
	return t, d.consume(',')
}

// histogramPoint reads [<time>, {"count": "<c>", "sum": "<s>", "buckets": [[<b>, "<l>", "<u>", "<c>"], ...]}].
func (d *answerDecoder) histogramPoint() (histogramPoint, error) {
	var p histogramPoint
	var err error
	if p.T, err = d.pointTime(); err != nil {
		return p, err
	}
	var sawCount, sawSum bool
	err = d.object(func(key []byte) error {
		switch string(key) {
		case "count":
			sawCount = true
			return d.floatString(&p.Count)
		case "sum":
			sawSum = true
			return d.floatString(&p.Sum)
		case "buckets":
			return d.array(func() error {
				var bucket histogramBucket
				if err := d.consume('['); err != nil {
					return err
				}
				boundaries, err := strconv.ParseInt(unsafeString(d.number()), 10, 64)
				if err != nil || boundaries < 0 || boundaries > 3 {
					return d.errorf("histogram bucket boundaries must be 0..3")
				}
				bucket.Boundaries = boundaries
				for _, f := range []*float64{&bucket.Lower, &bucket.Upper, &bucket.Count} {
					if err := d.consume(','); err != nil {
						return err
					}
					if err := d.floatString(f); err != nil {
						return err
					}
				}
				p.Buckets = append(p.Buckets, bucket)
				return d.consume(']')
			})
		}
		return d.skip()
	})
	if err == nil && (!sawCount || !sawSum) {
		err = d.errorf("histogram without count or sum")
	}
	if err != nil {
		return p, err
	}
	return p, d.consume(']')
}

func (d *answerDecoder) floatString(f *float64) error {
	b, err := d.stringBytes()
	if err != nil {
		return err
	}
	if *f, err = parseFloat(b); err != nil {
		return d.errorf("%v", err)
	}
	return nil
}

func parseFloat(b []byte) (float64, error) {
	f, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a float", b) // not err: it would keep a view of the answer
	}
	return f, nil
}

// parseTimestamp reads Unix seconds as float64(ms)/1000 formats them: digits, and at most three
// decimals, which read exactly as integers; any other form goes through ParseFloat.
func parseTimestamp(b []byte) (int64, error) {
	if ms, ok := parseDecimalMillis(b); ok {
		return ms, nil
	}
	f, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil {
		return 0, fmt.Errorf("point time %q is not a number", b)
	}
	ms := math.Round(f * 1000)
	if !(math.Abs(ms) <= float64(maxEvalMillis)) {
		return 0, fmt.Errorf("point time %q is out of range", b)
	}
	return int64(ms), nil
}

// parseDecimalMillis reads -?digits(.d{1,3})? as milliseconds.
func parseDecimalMillis(b []byte) (int64, bool) {
	negative := len(b) > 0 && b[0] == '-'
	if negative {
		b = b[1:]
	}
	var ms int64
	digits, decimals, dot := 0, 0, false
	for _, c := range b {
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9' && !dot && digits < 13:
			ms = ms*10 + int64(c-'0')
			digits++
		case c >= '0' && c <= '9' && dot && decimals < 3:
			ms = ms*10 + int64(c-'0')
			decimals++
		default:
			return 0, false
		}
	}
	if digits == 0 || (dot && decimals == 0) {
		return 0, false
	}
	for ; decimals < 3; decimals++ {
		ms *= 10
	}
	if negative {
		ms = -ms
	}
	return ms, ms >= -maxEvalMillis && ms <= maxEvalMillis
}

// unsafeString views b as a string without copying, for parsing only: the string must not outlive the
// call it is passed to.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
