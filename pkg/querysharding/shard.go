// Package querysharding names the part of a tenant's series that one shard of a sharded query reads.
//
// The query-frontend splits a query into N shard queries; each carries the matcher
// __query_shard__="<i>_of_<N>" (i from 1 to N, the format Mimir uses) on every selector. No series carries
// that label: ingesters and store-gateways remove the matcher before they look up series and keep only the
// series whose label-set hash falls in the shard. Every series is in exactly one of the N shards, and all
// of them agree on which, because the hash is labels.StableHash, which Prometheus keeps stable across
// processes and versions.
package querysharding

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// Label is the name of the pseudo-label whose equality matcher selects a shard of the series.
const Label = "__query_shard__"

// Shard is shard Index (1-based) of Count. The zero Shard is no sharding: it contains every series.
type Shard struct {
	Index uint64
	Count uint64
}

// Sharded reports whether s selects a part of the series rather than all of them.
func (s Shard) Sharded() bool { return s.Count > 0 }

// String formats s as the value of Label: "<Index>_of_<Count>".
func (s Shard) String() string {
	return strconv.FormatUint(s.Index, 10) + "_of_" + strconv.FormatUint(s.Count, 10)
}

// Matcher returns the matcher that selects s, to add to a query's selectors.
func (s Shard) Matcher() *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, Label, s.String())
}

// Contains reports whether the series with label set lset belongs to s. lset must be the series' whole
// label set as stored, with its metric name: that is what every ingester and store-gateway hashes.
func (s Shard) Contains(lset labels.Labels) bool {
	return s.Count == 0 || labels.StableHash(lset)%s.Count == s.Index-1
}

// Parse parses a value of Label. Only the canonical form is accepted (no sign, no leading zeros), so
// that a shard has one spelling and two matchers agree exactly when their values are equal.
func Parse(value string) (Shard, error) {
	index, count, ok := strings.Cut(value, "_of_")
	if !ok {
		return Shard{}, fmt.Errorf("invalid %s %q: want <index>_of_<count>, such as 1_of_16", Label, value)
	}
	i, errIndex := parseCanonicalUint(index)
	n, errCount := parseCanonicalUint(count)
	switch {
	case errIndex != nil || errCount != nil:
		return Shard{}, fmt.Errorf("invalid %s %q: index and count must be decimal numbers, such as 1_of_16", Label, value)
	case n == 0:
		return Shard{}, fmt.Errorf("invalid %s %q: the shard count must be at least 1", Label, value)
	case i == 0 || i > n:
		return Shard{}, fmt.Errorf("invalid %s %q: the shard index must be between 1 and the shard count", Label, value)
	}
	return Shard{Index: i, Count: n}, nil
}

func parseCanonicalUint(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	if strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%q is not in canonical form", s)
	}
	return n, nil
}

// RemoveShardMatcher returns the shard that ms select and ms without its shard matchers, which no series
// would match. Without a shard matcher it returns the zero Shard and ms itself. A shard matcher that is
// not an equality, or a malformed value, or two shard matchers that disagree, are errors. ms is not
// modified.
func RemoveShardMatcher(ms []*labels.Matcher) (Shard, []*labels.Matcher, error) {
	first := -1
	for i, m := range ms {
		if m.Name == Label {
			first = i
			break
		}
	}
	if first < 0 {
		return Shard{}, ms, nil
	}
	var shard Shard
	rest := make([]*labels.Matcher, 0, len(ms)-1)
	rest = append(rest, ms[:first]...)
	for _, m := range ms[first:] {
		if m.Name != Label {
			rest = append(rest, m)
			continue
		}
		if m.Type != labels.MatchEqual {
			return Shard{}, nil, fmt.Errorf("invalid shard selector %s: %s takes an equality matcher only", m, Label)
		}
		s, err := Parse(m.Value)
		if err != nil {
			return Shard{}, nil, err
		}
		if shard.Sharded() && s != shard {
			return Shard{}, nil, fmt.Errorf("conflicting shard selectors %s=%q and %s=%q", Label, shard, Label, s)
		}
		shard = s
	}
	return shard, rest, nil
}
