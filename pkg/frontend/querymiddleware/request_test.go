package querymiddleware

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Requests the querier refuses, or whose parameters the middleware cannot read exactly as the querier
// does, go to the querier as they are: the client gets the querier's 400 in the API's error envelope.
func TestRangeQuery_BadInputIsTheQuerierRefusal(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd)
	start, end := formatMillis(dataStart.UnixMilli()), formatMillis(dataEnd.UnixMilli())
	for name, params := range map[string]url.Values{
		"start not a time":           {"query": {"up"}, "start": {"yesterday"}, "end": {end}, "step": {"60"}},
		"start NaN":                  {"query": {"up"}, "start": {"NaN"}, "end": {end}, "step": {"60"}},
		"start +Inf":                 {"query": {"up"}, "start": {"+Inf"}, "end": {end}, "step": {"60"}},
		"start 1e30":                 {"query": {"up"}, "start": {"1e30"}, "end": {end}, "step": {"60"}},
		"end missing":                {"query": {"up"}, "start": {start}, "step": {"60"}},
		"end before start":           {"query": {"up"}, "start": {end}, "end": {start}, "step": {"60"}},
		"step missing":               {"query": {"up"}, "start": {start}, "end": {end}},
		"step zero":                  {"query": {"up"}, "start": {start}, "end": {end}, "step": {"0"}},
		"step negative":              {"query": {"up"}, "start": {start}, "end": {end}, "step": {"-60"}},
		"step not a duration":        {"query": {"up"}, "start": {start}, "end": {end}, "step": {"often"}},
		"step overflows":             {"query": {"up"}, "start": {start}, "end": {end}, "step": {"1e300"}},
		"100 years at 1s":            {"query": {"up"}, "start": {"0"}, "end": {formatMillis(100 * 365 * 24 * 3600 * 1000)}, "step": {"1"}},
		"11001 points":               {"query": {"up"}, "start": {"0"}, "end": {"11001"}, "step": {"1"}},
		"query missing":              {"start": {start}, "end": {end}, "step": {"60"}},
		"query does not parse":       {"query": {"sum(up"}, "start": {start}, "end": {end}, "step": {"60"}},
		"query too complex":          {"query": {strings.Repeat("(", 2000) + "up" + strings.Repeat(")", 2000)}, "start": {start}, "end": {end}, "step": {"60"}},
		"timeout not a duration":     {"query": {"up"}, "start": {start}, "end": {end}, "step": {"60"}, "timeout": {"soon"}},
		"lookback_delta not a value": {"query": {"up"}, "start": {start}, "end": {end}, "step": {"60"}, "lookback_delta": {"x"}},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://frontend/prometheus/api/v1/query_range?"+params.Encode(), nil)
			require.NoError(t, err)
			req.Header.Set("X-Scope-OrgID", testTenant)
			want := directAnswer(t, handler, req)
			require.Equal(t, http.StatusBadRequest, want.status, string(want.body))

			got := roundTrip(t, rt, req)
			requireSameAnswer(t, want, got, "%s", name)
			var envelope struct{ Status, ErrorType, Error string }
			require.NoError(t, json.Unmarshal(got.body, &envelope))
			require.Equal(t, "error", envelope.Status)
			require.Equal(t, "bad_data", envelope.ErrorType)
			require.NotEmpty(t, envelope.Error)
			require.Len(t, d.takeRequests(), 1, "sent to the querier as it is, not split")
		})
	}
}

func TestParseTimeMillis_ReadsAsTheQuerierDoes(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"1740808020", 1740808020000, true},
		{"1740808020.5", 1740808020500, true},
		{"1740808020.123", 1740808020123, true},
		{"1740808020.1234", 1740808020123, true}, // the querier rounds to the millisecond too
		{"1740808020.1236", 1740808020124, true},
		{"-1.5", -1500, true},
		{"0", 0, true},
		{"2025-03-01T05:17:00Z", 1740806220000, true},
		{"2025-03-01T05:17:00.25+01:00", 1740802620250, true},
		{"2025-03-01T05:17:00.0000001Z", 0, false}, // the querier keeps the nanoseconds
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"1e30", 0, false},
		{"", 0, false},
		{"tomorrow", 0, false},
		{"-292277026596-12-04T15:30:07Z", 0, false}, // the querier's "no bound", not for range queries
	} {
		got, ok := parseTimeMillis(tc.in)
		require.Equal(t, tc.wantOK, ok, tc.in)
		if ok {
			require.Equal(t, tc.want, got, tc.in)
		}
	}
}

func TestParseStepMillis_ReadsAsTheQuerierDoes(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"15", 15000, true},
		{"0.5", 500, true},
		{"0.001", 1, true},
		{"1m30s", 90000, true},
		{"1d", 86400000, true},
		{"250ms", 250, true},
		{"0.0005", 0, false}, // half a millisecond: the engine would truncate it
		{"0", 0, false},
		{"-1", 0, false},
		{"0s", 0, false},
		{"NaN", 0, false},
		{"1e300", 0, false},
		{"often", 0, false},
	} {
		got, ok := parseStepMillis(tc.in)
		require.Equal(t, tc.wantOK, ok, tc.in)
		if ok {
			require.Equal(t, tc.want, got, tc.in)
		}
	}
}

// Times are sent to parts as Unix seconds with three decimals; they must read back to the same
// millisecond, before 1970 too.
func TestFormatMillis_ReadsBackExactly(t *testing.T) {
	for _, ms := range []int64{0, 1, -1, 999, -999, 1000, -1000, 1740808020123, -1740808020123, 9_000_000_000_000, maxEvalMillis - 1} {
		s := formatMillis(ms)
		got, ok := parseTimeMillis(s)
		require.True(t, ok, s)
		require.Equal(t, ms, got, s)
	}
	require.Equal(t, "-0.005", formatMillis(-5))
	require.Equal(t, "1740808020.050", formatMillis(1740808020050))
}

func TestReadForm_PostBodyIsReadAndPutBack(t *testing.T) {
	body := "query=up&start=1&end=2"
	req, err := http.NewRequest(http.MethodPost, "http://frontend/api/v1/query_range?step=1&start=9", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")

	form, sent, err := readForm(req)
	require.NoError(t, err)
	require.Equal(t, url.Values{"query": {"up"}, "start": {"1", "9"}, "end": {"2"}, "step": {"1"}}, form, "the body first, as ParseForm")
	require.NoError(t, sent.ParseForm())
	require.Equal(t, "1", sent.FormValue("start"), "the request to send on still has its body")

	large := strings.NewReader("query=" + strings.Repeat("x", maxFormBytes))
	req, err = http.NewRequest(http.MethodPost, "http://frontend/api/v1/query_range", large)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	form, sent, err = readForm(req)
	require.NoError(t, err)
	require.Nil(t, form, "a body too large to read is left to the querier")
	n, err := sent.Body.Read(make([]byte, 6))
	require.NoError(t, err)
	require.Equal(t, 6, n)
}

func TestSplitRange_PartsConcatenateToTheQueryPoints(t *testing.T) {
	day := int64(24 * time.Hour / time.Millisecond)
	for _, tc := range []struct{ start, end, step, interval int64 }{
		{0, 3 * day, 60_000, day},
		{-day - 7, day + 13, 17_000, day},        // before 1970
		{5, 10 * day, 3 * day, day},              // a step longer than the interval
		{1740808020123, 1740808020123, 1, day},   // one point
		{day - 1, day, 1, day},                   // a point on each side of a midnight
		{0, 11000 * 7_000, 7_000, 3_600_000},     // 11,000 points, hourly
		{1000, 5 * day, day, day},                // one point per interval
		{1000, 5 * day, 60_000, 0},               // not split
		{-5 * day, -day, 3_600_000, 7 * day},     // a week interval before 1970
		{123, 123 + 10000*999, 999, 1_000_000},   // step and interval share no factor
		{0, math.MaxInt32, math.MaxInt32 / 3, 1}, // a tiny interval: one part per point
	} {
		parts := splitRange(tc.start, tc.end, tc.step, tc.interval)
		var got []int64
		for i, p := range parts {
			require.LessOrEqual(t, p.start, p.end)
			if tc.interval > 0 {
				require.Equal(t, floorDiv(p.start, tc.interval), p.index)
				require.Equal(t, p.index, floorDiv(p.end, tc.interval), "a part stays within its interval")
				if i > 0 {
					require.Greater(t, p.index, parts[i-1].index)
				}
			}
			for ts := p.start; ts <= p.end; ts += tc.step {
				got = append(got, ts)
			}
		}
		var want []int64
		for ts := tc.start; ts <= tc.end; ts += tc.step {
			want = append(want, ts)
		}
		require.Equal(t, want, got, "%+v", tc)
		require.LessOrEqual(t, len(parts), len(want))
	}
}

// The split allocates its parts once, sized by the smaller of the points and the intervals, so that
// nothing is allocated per interval before the points are counted.
func TestSplitRange_AllocatesOnceWhateverTheIntervals(t *testing.T) {
	// AllocsPerRun counts the whole process' allocations, which goroutines other tests left behind can add
	// to: the fewest of a few measurements is the function's own.
	allocs := math.Inf(1)
	for range 5 {
		allocs = min(allocs, testing.AllocsPerRun(10, func() {
			splitRange(0, 100*365*24*3600*1000, 365*24*3600*1000/100, 1) // 100 years, 1ms intervals, 10,001 points
		}))
	}
	require.Equal(t, 1.0, allocs)
}
