package querysharding

import (
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestParse_RoundTripsWithString(t *testing.T) {
	for _, s := range []Shard{{Index: 1, Count: 1}, {Index: 1, Count: 16}, {Index: 16, Count: 16}, {Index: 7, Count: 100}} {
		got, err := Parse(s.String())
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	require.Equal(t, "3_of_16", Shard{Index: 3, Count: 16}.String())
}

func TestParse_RefusesMalformedValues(t *testing.T) {
	for _, value := range []string{
		"", "1", "1_of_", "_of_16", "1of16", "1_of_16_of_16", "0_of_16", "17_of_16", "1_of_0", "0_of_0",
		"-1_of_16", "+1_of_16", "01_of_16", "1_of_016", "a_of_16", "1_of_b", " 1_of_16", "1_of_99999999999",
	} {
		_, err := Parse(value)
		require.Error(t, err, "%q", value)
		require.Contains(t, err.Error(), Label, "the error names the label")
	}
}

func TestRemoveShardMatcher(t *testing.T) {
	name := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")
	job := labels.MustNewMatcher(labels.MatchRegexp, "job", "a.*")
	shard := func(typ labels.MatchType, v string) *labels.Matcher { return labels.MustNewMatcher(typ, Label, v) }

	for _, tc := range []struct {
		name      string
		in        []*labels.Matcher
		wantShard Shard
		wantRest  []*labels.Matcher
		wantErr   string
	}{
		{name: "no shard matcher", in: []*labels.Matcher{name, job}, wantRest: []*labels.Matcher{name, job}},
		{name: "no matchers at all", in: nil, wantRest: nil},
		{name: "one shard matcher among others", in: []*labels.Matcher{name, shard(labels.MatchEqual, "2_of_4"), job},
			wantShard: Shard{Index: 2, Count: 4}, wantRest: []*labels.Matcher{name, job}},
		{name: "the shard matcher alone", in: []*labels.Matcher{shard(labels.MatchEqual, "1_of_1")},
			wantShard: Shard{Index: 1, Count: 1}, wantRest: []*labels.Matcher{}},
		{name: "the same shard twice", in: []*labels.Matcher{shard(labels.MatchEqual, "2_of_4"), name, shard(labels.MatchEqual, "2_of_4")},
			wantShard: Shard{Index: 2, Count: 4}, wantRest: []*labels.Matcher{name}},
		{name: "two shards that disagree", in: []*labels.Matcher{shard(labels.MatchEqual, "2_of_4"), shard(labels.MatchEqual, "3_of_4")},
			wantErr: "conflicting shard selectors"},
		{name: "same index, other count", in: []*labels.Matcher{shard(labels.MatchEqual, "1_of_4"), shard(labels.MatchEqual, "1_of_8")},
			wantErr: "conflicting shard selectors"},
		{name: "malformed value", in: []*labels.Matcher{name, shard(labels.MatchEqual, "5_of_4")}, wantErr: "between 1 and the shard count"},
		{name: "empty value", in: []*labels.Matcher{name, shard(labels.MatchEqual, "")}, wantErr: "want <index>_of_<count>"},
		{name: "regular expression", in: []*labels.Matcher{name, shard(labels.MatchRegexp, "1_of_4")}, wantErr: "equality matcher only"},
		{name: "negative matcher", in: []*labels.Matcher{name, shard(labels.MatchNotEqual, "1_of_4")}, wantErr: "equality matcher only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]*labels.Matcher(nil), tc.in...)
			gotShard, gotRest, err := RemoveShardMatcher(tc.in)
			require.Equal(t, before, tc.in, "the input is not modified")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantShard, gotShard)
			require.Equal(t, tc.wantRest, gotRest)
		})
	}
}

func TestShard_EverySeriesIsInExactlyOneShard(t *testing.T) {
	var series []labels.Labels
	for i := range 1000 {
		series = append(series, labels.FromStrings("__name__", "requests_total", "instance", fmt.Sprintf("host-%d", i), "job", "api"))
	}
	for _, count := range []uint64{1, 2, 3, 16, 64} {
		perShard := make([]int, count)
		for _, ls := range series {
			in := 0
			for i := uint64(1); i <= count; i++ {
				if (Shard{Index: i, Count: count}).Contains(ls) {
					in++
					perShard[i-1]++
				}
			}
			require.Equal(t, 1, in, "%s in %d shards of %d", ls, in, count)
		}
		// The hash spreads series evenly enough that no shard of a few is empty or holds most of them.
		if count <= 16 {
			for i, n := range perShard {
				require.Greater(t, n, len(series)/int(count)/2, "shard %d of %d holds %d series", i+1, count, n)
			}
		}
	}
}

func TestShard_ZeroContainsEverySeries(t *testing.T) {
	require.False(t, Shard{}.Sharded())
	require.True(t, Shard{}.Contains(labels.FromStrings("a", "b")))
	require.True(t, Shard{Index: 1, Count: 1}.Sharded())
}

// The shard of a series must not change between versions: ingesters and store-gateways of different
// versions answer the shards of one query during a rolling upgrade, and a series in no shard or in two
// would be missed or counted twice. The hash is xxhash64 over the sorted names and values, each followed
// by 0xff; this pins it.
func TestShard_HashIsStableAcrossVersions(t *testing.T) {
	ls := labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", "host-1:9090")
	require.Equal(t, xxhash.Sum64String("__name__\xffhttp_requests_total\xffinstance\xffhost-1:9090\xffjob\xffapi\xff"), labels.StableHash(ls))
	require.Equal(t, uint64(0x6e73639e9dc776e5), labels.StableHash(ls))
	var in []uint64
	for i := uint64(1); i <= 16; i++ {
		if (Shard{Index: i, Count: 16}).Contains(ls) {
			in = append(in, i)
		}
	}
	require.Equal(t, []uint64{labels.StableHash(ls)%16 + 1}, in)
}

func TestShard_MatcherSelectsTheShard(t *testing.T) {
	m := Shard{Index: 2, Count: 8}.Matcher()
	require.Equal(t, `__query_shard__="2_of_8"`, m.String())
	s, rest, err := RemoveShardMatcher([]*labels.Matcher{m})
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Equal(t, Shard{Index: 2, Count: 8}, s)
}

// Contains runs once per selected series in ingesters and store-gateways while a sharded query reads.
func BenchmarkShard_Contains(b *testing.B) {
	ls := labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", "host-1:9090", "code", "200", "method", "GET")
	s := Shard{Index: 3, Count: 16}
	b.ReportAllocs()
	for b.Loop() {
		s.Contains(ls)
	}
}
