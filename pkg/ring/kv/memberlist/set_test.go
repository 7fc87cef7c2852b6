package memberlist

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// set is a grow-only set: the smallest Mergeable, with a codec whose output is not JSON.
type set map[string]bool

func (s set) Merge(other kv.Mergeable, _ bool) (kv.Mergeable, error) {
	o, ok := other.(set)
	if !ok {
		return nil, fmt.Errorf("cannot merge %T into set", other)
	}
	change := set{}
	for e := range o {
		if !s[e] {
			s[e] = true
			change[e] = true
		}
	}
	if len(change) == 0 {
		return nil, nil
	}
	return change, nil
}

func (s set) MergeContent() []string                { return slices.Sorted(maps.Keys(s)) }
func (s set) RemoveTombstones(time.Time) (int, int) { return 0, 0 }
func (s set) Clone() kv.Mergeable                   { return maps.Clone(s) }

type setCodec struct{}

func (setCodec) Name() string { return "set/lines" }
func (setCodec) Encode(v any) ([]byte, error) {
	return []byte(strings.Join(v.(set).MergeContent(), "\n")), nil
}
func (setCodec) Decode(b []byte) (any, error) {
	s := set{}
	for e := range strings.SplitSeq(string(b), "\n") {
		s[e] = true
	}
	return s, nil
}

func addToSet(elems ...string) func(any) (any, bool, error) {
	return func(in any) (any, bool, error) {
		s, _ := in.(set)
		if s == nil {
			s = set{}
		}
		for _, e := range elems {
			s[e] = true
		}
		return s, false, nil
	}
}
