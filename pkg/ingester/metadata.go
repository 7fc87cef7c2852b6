package ingester

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/validation"
)

// metadataStore keeps the metric metadata (type, help, unit) that remote write sends, per metric family,
// for one tenant. Entries not received again within the retain period are dropped, as Prometheus resends
// metadata periodically.
type metadataStore struct {
	retain time.Duration
	now    func() time.Time

	mtx      sync.Mutex
	families map[string]map[metadataEntry]time.Time
}

// metadataEntry is one distinct metadata of a metric family; comparable, so it can key a map.
type metadataEntry struct {
	typ, help, unit string
}

func newMetadataStore(retain time.Duration) *metadataStore {
	return &metadataStore{
		retain:   retain,
		now:      time.Now,
		families: map[string]map[metadataEntry]time.Time{},
	}
}

// add keeps m unless it would take the tenant over maxFamilies metric families or the family over
// maxPerMetric distinct entries (0: no limit); it then returns the error that names the limit.
func (s *metadataStore) add(m prompb.MetricMetadata, maxFamilies, maxPerMetric int) error {
	if m.MetricFamilyName == "" {
		return nil
	}
	entry := metadataEntry{typ: strings.ToLower(m.Type.String()), help: m.Help, unit: m.Unit}
	now := s.now()
	s.mtx.Lock()
	defer s.mtx.Unlock()
	set := s.families[m.MetricFamilyName]
	if set == nil {
		if maxFamilies > 0 && len(s.families) >= maxFamilies {
			// Families that are no longer sent must not keep the tenant full until the next list.
			s.dropExpiredLocked(now.Add(-s.retain))
			if len(s.families) >= maxFamilies {
				return metadataLimitError(validation.ReasonMaxGlobalMetadataPerUser,
					fmt.Sprintf("the tenant has metadata of %d metric families in this ingester, its share of the limit", len(s.families)))
			}
		}
		set = map[metadataEntry]time.Time{}
		s.families[m.MetricFamilyName] = set
	}
	if _, ok := set[entry]; !ok && maxPerMetric > 0 && len(set) >= maxPerMetric {
		// Entries that are no longer sent must not keep the family full until the next list.
		dropExpired(set, now.Add(-s.retain))
		if len(set) >= maxPerMetric {
			return metadataLimitError(validation.ReasonMaxGlobalMetadataPerMetric,
				fmt.Sprintf("metric family %q has %d distinct metadata entries, the limit", m.MetricFamilyName, len(set)))
		}
	}
	set[entry] = now
	return nil
}

func metadataLimitError(reason, message string) error {
	return &validation.Error{Reason: reason, Message: message, Flag: "-" + validation.FlagOf(reason)}
}

// dropExpiredLocked removes the entries, and then the families, last received before cutoff.
func (s *metadataStore) dropExpiredLocked(cutoff time.Time) {
	for name, set := range s.families {
		dropExpired(set, cutoff)
		if len(set) == 0 {
			delete(s.families, name)
		}
	}
}

// dropExpired removes the entries last received before cutoff.
func dropExpired(set map[metadataEntry]time.Time, cutoff time.Time) {
	for e, seen := range set {
		if seen.Before(cutoff) {
			delete(set, e)
		}
	}
}

// list returns the live metadata, one family (or all when metric is empty), sorted for stable answers.
func (s *metadataStore) list(metric string, limit, limitPerMetric int) []*ingesterpb.MetricMetadata {
	cutoff := s.now().Add(-s.retain)
	s.mtx.Lock()
	defer s.mtx.Unlock()
	names := make([]string, 0, len(s.families))
	for name, set := range s.families {
		dropExpired(set, cutoff)
		if len(set) == 0 {
			delete(s.families, name)
			continue
		}
		if metric == "" || metric == name {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []*ingesterpb.MetricMetadata
	for n, name := range names {
		if limit > 0 && n >= limit {
			break
		}
		entries := make([]metadataEntry, 0, len(s.families[name]))
		for e := range s.families[name] {
			entries = append(entries, e)
		}
		slices.SortFunc(entries, func(a, b metadataEntry) int {
			return strings.Compare(a.typ+"\xff"+a.help+"\xff"+a.unit, b.typ+"\xff"+b.help+"\xff"+b.unit)
		})
		if limitPerMetric > 0 && len(entries) > limitPerMetric {
			entries = entries[:limitPerMetric]
		}
		for _, e := range entries {
			out = append(out, &ingesterpb.MetricMetadata{MetricFamilyName: name, Type: e.typ, Help: e.help, Unit: e.unit})
		}
	}
	return out
}
