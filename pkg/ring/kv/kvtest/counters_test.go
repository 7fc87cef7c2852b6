package kvtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

func TestCounters_MergeKeepsTheHigherCountAndReturnsTheChange(t *testing.T) {
	tests := map[string]struct {
		into, other Counters
		want        Counters
		wantChange  kv.Mergeable
	}{
		"higher count wins":           {into: Counters{"a": 1, "b": 5}, other: Counters{"a": 3, "b": 2}, want: Counters{"a": 3, "b": 5}, wantChange: Counters{"a": 3}},
		"new name is added":           {into: Counters{"a": 1}, other: Counters{"b": 0}, want: Counters{"a": 1, "b": 0}, wantChange: Counters{"b": 0}},
		"missing name is kept":        {into: Counters{"a": 1, "b": 1}, other: Counters{"a": 1}, want: Counters{"a": 1, "b": 1}},
		"equal counts change nothing": {into: Counters{"a": 1}, other: Counters{"a": 1}, want: Counters{"a": 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			change, err := tc.into.Merge(tc.other, true)
			require.NoError(t, err)
			require.Equal(t, tc.wantChange, change, "no change must be a nil interface, not a nil Counters")
			require.Equal(t, tc.want, tc.into)
		})
	}
}

func TestCounters_MergeIsCommutative(t *testing.T) {
	a, b := Counters{"x": 1, "y": 4}, Counters{"x": 2, "z": 1}
	ab, ba := a.Clone().(Counters), b.Clone().(Counters)
	_, err := ab.Merge(b, false)
	require.NoError(t, err)
	_, err = ba.Merge(a, false)
	require.NoError(t, err)
	require.Equal(t, ab, ba)
}

func TestCounters_MergeRejectsOtherValues(t *testing.T) {
	_, err := Counters{}.Merge(fakeMergeable{}, false)
	require.ErrorContains(t, err, "cannot merge kvtest.fakeMergeable into Counters")
}

// fakeMergeable is a kv.Mergeable of another type.
type fakeMergeable struct{ kv.Mergeable }

func TestCounters_CloneIsDeep(t *testing.T) {
	c := Counters{"a": 1}
	clone := c.Clone().(Counters)
	clone["a"] = 2
	require.Equal(t, Counters{"a": 1}, c)
	require.Equal(t, []string{"a"}, clone.MergeContent())
}

func TestCountersCodec_RoundTripsAndRejectsBadInput(t *testing.T) {
	codec := CountersCodec{}
	data, err := codec.Encode(Counters{"b": 2, "a": 1})
	require.NoError(t, err)
	require.JSONEq(t, `{"a":1,"b":2}`, string(data))
	v, err := codec.Decode(data)
	require.NoError(t, err)
	require.Equal(t, Counters{"a": 1, "b": 2}, v)

	_, err = codec.Encode(map[string]int{"a": 1})
	require.ErrorContains(t, err, "want Counters")
	_, err = codec.Decode([]byte("not json"))
	require.ErrorContains(t, err, "decode counters")
}

func TestIncrement_RejectsOtherValues(t *testing.T) {
	_, _, err := Increment("n")("a string")
	require.ErrorContains(t, err, "key holds string, want Counters")
}
