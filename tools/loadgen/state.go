package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
)

// The state file is what write hands to verify: every series it created and, per series, the
// rounds whose push was acknowledged, as ranges of round indexes into the round timestamps.

// state is the JSON layout of the state file.
type state struct {
	Version  int           `json:"version"`
	RoundsMs []int64       `json:"rounds_ms"` // round index → sample timestamp in milliseconds
	Tenants  []tenantState `json:"tenants"`
}

type tenantState struct {
	Name   string        `json:"name"`
	Series []seriesState `json:"series"`
}

type seriesState struct {
	Labels map[string]string `json:"labels"`
	Acked  [][2]int32        `json:"acked"` // inclusive ranges of acknowledged round indexes
}

const stateVersion = 1

// tracker records acknowledged samples while write runs.
type tracker struct {
	roundsMs []int64 // appended by the builder only
	tenants  []*tenantRecords
}

// tenantRecords is one tenant's series; the builder adds series while senders acknowledge.
type tenantRecords struct {
	name   string
	mu     sync.Mutex
	series []seriesState
}

func newTracker(tenants []string) *tracker {
	tr := &tracker{}
	for _, name := range tenants {
		tr.tenants = append(tr.tenants, &tenantRecords{name: name})
	}
	return tr
}

// add registers a new series and returns its id.
func (r *tenantRecords) add(ls []label) int32 {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.name] = l.value
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.series = append(r.series, seriesState{Labels: m})
	return int32(len(r.series) - 1)
}

// ack records that round's samples of the series ids were acknowledged. A series' rounds are
// pushed by one sender in order, so extending the last range is the usual case.
func (r *tenantRecords) ack(ids []int32, round int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		s := &r.series[id]
		if n := len(s.Acked); n > 0 && s.Acked[n-1][1]+1 == round {
			s.Acked[n-1][1] = round
			continue
		}
		s.Acked = append(s.Acked, [2]int32{round, round})
	}
}

// state returns the tracked records with each series' ranges sorted and merged.
func (tr *tracker) state() *state {
	st := &state{Version: stateVersion, RoundsMs: tr.roundsMs}
	for _, r := range tr.tenants {
		r.mu.Lock()
		ts := tenantState{Name: r.name, Series: r.series}
		for i := range ts.Series {
			ts.Series[i].Acked = mergeRanges(ts.Series[i].Acked)
		}
		r.mu.Unlock()
		st.Tenants = append(st.Tenants, ts)
	}
	return st
}

func mergeRanges(rs [][2]int32) [][2]int32 {
	slices.SortFunc(rs, func(a, b [2]int32) int { return cmp.Compare(a[0], b[0]) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

func writeState(path string, st *state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func readState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state %s has version %d, this loadgen reads version %d", path, st.Version, stateVersion)
	}
	for _, t := range st.Tenants {
		for _, s := range t.Series {
			for _, r := range s.Acked {
				if r[0] < 0 || r[0] > r[1] || int(r[1]) >= len(st.RoundsMs) {
					return nil, fmt.Errorf("state %s: tenant %s has acknowledged rounds %d-%d outside the %d recorded rounds", path, t.Name, r[0], r[1], len(st.RoundsMs))
				}
			}
		}
	}
	return &st, nil
}
