package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// summary is everything one run reports, printed as text and optionally written as JSON.
type summary struct {
	Mode        string         `json:"mode"`
	WallSeconds float64        `json:"wall_seconds"`
	Write       *writeSummary  `json:"write,omitempty"`
	Query       *querySummary  `json:"query,omitempty"`
	Verify      *verifySummary `json:"verify,omitempty"`
	Blocks      *blocksSummary `json:"blocks,omitempty"`
	CPU         cpuSummary     `json:"generator_cpu"`
}

type writeSummary struct {
	Tenants                  int              `json:"tenants"`
	SeriesPerTenant          int              `json:"series_per_tenant"`
	Rounds                   int              `json:"rounds"`
	LateRounds               int              `json:"late_rounds"` // rounds that started after their tick
	ChurnedSeries            int              `json:"churned_series"`
	Requests                 int64            `json:"requests"`
	SamplesAccepted          int64            `json:"samples_accepted"`
	SamplesFailed            int64            `json:"samples_failed"`
	AcceptedSamplesPerSecond float64          `json:"accepted_samples_per_second"`
	FailedRequests           map[string]int64 `json:"failed_requests"` // by HTTP status, or "network"
	Retries                  map[string]int64 `json:"retries"`
	PushLatency              latency          `json:"push_latency_seconds"` // per HTTP attempt
	BuildSeconds             float64          `json:"build_seconds"`        // encoding and compressing requests
}

type querySummary struct {
	Runs           int64            `json:"runs"`
	FailedRequests map[string]int64 `json:"failed_requests"`
	CompareFailed  map[string]int64 `json:"compare_failed_requests,omitempty"`
	Latency        latency          `json:"latency_seconds"`
	Cache          map[string]int64 `json:"cache,omitempty"` // answers by X-Strata-Cache value
	PerQuery       []queryLatency   `json:"per_query"`
	Mismatches     []mismatch       `json:"mismatches,omitempty"`
}

type queryLatency struct {
	Query   string           `json:"query"`
	Latency latency          `json:"latency_seconds"`
	Cache   map[string]int64 `json:"cache,omitempty"`
}

type mismatch struct {
	Query string `json:"query"`
	Count int64  `json:"count"`
	First string `json:"first"` // the first difference seen
}

type verifySummary struct {
	SeriesRecorded    int              `json:"series_recorded"`
	SeriesChecked     int              `json:"series_checked"`
	SeriesUnverified  int              `json:"series_unverified"` // their query failed
	SamplesExpected   int64            `json:"samples_expected"`
	SamplesMissing    int64            `json:"samples_missing"`
	SeriesWithMissing int              `json:"series_with_missing"`
	FailedRequests    map[string]int64 `json:"failed_requests"`
	Examples          []missingSeries  `json:"examples,omitempty"`
	Latency           latency          `json:"query_latency_seconds"`
}

type missingSeries struct {
	Tenant       string `json:"tenant"`
	Series       string `json:"series"`
	Missing      int    `json:"missing"`
	FirstMissing int64  `json:"first_missing_ms"`
}

type cpuSummary struct {
	Seconds float64 `json:"seconds"`
	Percent float64 `json:"percent"` // 100 is one core busy for the whole run
	Cores   int     `json:"cores"`
}

// latency holds nearest-rank percentiles in seconds.
type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// latencyOf sorts ds and returns its percentiles.
func latencyOf(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)].Seconds()
	}
	return latency{Count: len(ds), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: ds[len(ds)-1].Seconds()}
}

func (l latency) String() string {
	if l.Count == 0 {
		return "none"
	}
	ms := func(s float64) string { return fmt.Sprintf("%.1fms", s*1000) }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), l.Count)
}

func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// print writes the human-readable summary.
func (s *summary) print(w io.Writer) {
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format+"\n", args...) }
	p("loadgen %s: %.1fs", s.Mode, s.WallSeconds)
	if ws := s.Write; ws != nil {
		p("  series:            %d tenants x %d active series, %d rounds (%d late), %d churned", ws.Tenants, ws.SeriesPerTenant, ws.Rounds, ws.LateRounds, ws.ChurnedSeries)
		p("  accepted samples:  %d (%.0f/s)", ws.SamplesAccepted, ws.AcceptedSamplesPerSecond)
		p("  failed samples:    %d", ws.SamplesFailed)
		p("  requests:          %d, failed by status: %s", ws.Requests, formatCounts(ws.FailedRequests))
		p("  retries by status: %s", formatCounts(ws.Retries))
		p("  push latency:      %s", ws.PushLatency)
		p("  request building:  %.2fs", ws.BuildSeconds)
	}
	if qs := s.Query; qs != nil {
		p("  queries run:       %d, failed by status: %s", qs.Runs, formatCounts(qs.FailedRequests))
		p("  query latency:     %s", qs.Latency)
		if qs.Cache != nil {
			p("  results cache:     %s (X-Strata-Cache)", formatCounts(qs.Cache))
		}
		for _, q := range qs.PerQuery {
			if q.Cache != nil {
				p("    %-36s %s  cache %s", q.Query, q.Latency, formatCounts(q.Cache))
				continue
			}
			p("    %-36s %s", q.Query, q.Latency)
		}
		if qs.CompareFailed != nil {
			p("  compare backend failed by status: %s", formatCounts(qs.CompareFailed))
			p("  mismatching queries: %d", len(qs.Mismatches))
		}
		for _, m := range qs.Mismatches {
			p("    %s (%d times): %s", m.Query, m.Count, m.First)
		}
	}
	if vs := s.Verify; vs != nil {
		p("  series checked:    %d of %d recorded (%d could not be queried)", vs.SeriesChecked, vs.SeriesRecorded, vs.SeriesUnverified)
		p("  samples missing:   %d of %d acknowledged, in %d series", vs.SamplesMissing, vs.SamplesExpected, vs.SeriesWithMissing)
		p("  failed queries:    %s", formatCounts(vs.FailedRequests))
		p("  query latency:     %s", vs.Latency)
		for _, e := range vs.Examples {
			p("    %s %s: %d missing, first at %s", e.Tenant, e.Series, e.Missing, time.UnixMilli(e.FirstMissing).UTC().Format(time.RFC3339Nano))
		}
	}
	if bs := s.Blocks; bs != nil {
		p("  series:            %d, %d rounds from %s to %s", bs.Series, bs.Rounds,
			time.UnixMilli(bs.FirstMs).UTC().Format(time.RFC3339), time.UnixMilli(bs.LastMs).UTC().Format(time.RFC3339))
		p("  samples:           %d in %d blocks (%.1fs writing them)", bs.Samples, len(bs.Blocks), bs.FlushSeconds)
	}
	p("  generator CPU:     %.2fs, %.0f%% of one core (%d cores)", s.CPU.Seconds, s.CPU.Percent, s.CPU.Cores)
}

func (s *summary) writeJSON(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
