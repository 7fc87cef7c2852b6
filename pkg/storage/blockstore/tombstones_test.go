package blockstore

import (
	"context"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func TestNewTombstone_RejectsBadRequests(t *testing.T) {
	id := ulid.MustNew(1, nil)
	for _, tc := range []struct {
		name      string
		selectors []string
		minT      int64
		maxT      int64
		wantErr   string
	}{
		{name: "no selector", minT: 0, maxT: 1, wantErr: "at least one match[]"},
		{name: "garbage", selectors: []string{"{job="}, maxT: 1, wantErr: "invalid match[] selector"},
		{name: "matches everything", selectors: []string{`{job=~".*"}`}, maxT: 1, wantErr: "non-empty matcher"},
		{name: "end before start", selectors: []string{"up"}, minT: 10, maxT: 9, wantErr: "before start"},
		{name: "too many selectors", selectors: strings.Split(strings.Repeat("up,", maxTombstoneSelectors+1), ",")[:maxTombstoneSelectors+1], maxT: 1, wantErr: "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTombstone(id, tc.selectors, tc.minT, tc.maxT, 0)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestTombstone_MatchesAnySelectorAndOverlapsInclusively(t *testing.T) {
	ts, err := NewTombstone(ulid.MustNew(1, nil), []string{`up{job="a"}`, `{__name__=~"node_.+",instance="x"}`}, 100, 200, 0)
	require.NoError(t, err)
	require.True(t, ts.Matches(labels.FromStrings("__name__", "up", "job", "a", "instance", "y")))
	require.True(t, ts.Matches(labels.FromStrings("__name__", "node_load1", "instance", "x")))
	require.False(t, ts.Matches(labels.FromStrings("__name__", "up", "job", "b")))
	require.False(t, ts.Matches(labels.FromStrings("__name__", "node_load1", "instance", "y")))

	require.True(t, ts.Overlaps(200, 300))
	require.True(t, ts.Overlaps(0, 100))
	require.False(t, ts.Overlaps(201, 300))
	require.False(t, ts.Overlaps(0, 99))

	up := labels.FromStrings("__name__", "up", "job", "a")
	require.True(t, ts.Deletes(up, 100))
	require.True(t, ts.Deletes(up, 200))
	require.False(t, ts.Deletes(up, 201))
	require.False(t, ts.Deletes(labels.FromStrings("__name__", "up", "job", "b"), 150))
}

func TestTombstones_RoundTripSortedAndPending(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	second, err := NewTombstone(ulid.MustNew(2, nil), []string{"b"}, 1, 2, 20)
	require.NoError(t, err)
	first, err := NewTombstone(ulid.MustNew(1, nil), []string{"a"}, 1, 2, 10)
	require.NoError(t, err)
	for _, ts := range []*Tombstone{second, first} {
		require.NoError(t, WriteTombstone(ctx, bkt, ts))
	}
	got, err := ListTombstones(ctx, bkt)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, first.ID, got[0].ID)
	require.Equal(t, []string{"a"}, got[0].Selectors)
	require.True(t, got[0].Matches(labels.FromStrings("__name__", "a")), "matchers are parsed on read")

	second.DoneAt = 30
	require.NoError(t, WriteTombstone(ctx, bkt, second))
	got, err = ListTombstones(ctx, bkt)
	require.NoError(t, err)
	pending := PendingTombstones(got)
	require.Len(t, pending, 1)
	require.Equal(t, first.ID, pending[0].ID)
}

func TestListTombstones_FailsOnACorruptTombstone(t *testing.T) {
	ctx := context.Background()
	for name, body := range map[string]string{
		"not json":         "{",
		"unknown version":  `{"version":7,"selectors":["up"]}`,
		"invalid selector": `{"version":1,"selectors":["{"]}`,
		"too large":        strings.Repeat(" ", maxTombstoneBytes+1),
	} {
		t.Run(name, func(t *testing.T) {
			bkt := objstore.NewInMemBucket()
			require.NoError(t, bkt.Upload(ctx, TombstonePath(ulid.MustNew(1, nil)), strings.NewReader(body)))
			_, err := ListTombstones(ctx, bkt)
			require.ErrorIs(t, err, ErrTombstoneCorrupted)
		})
	}
}

func TestTenantDeletionMark_RoundTrip(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	_, err := ReadTenantDeletionMark(ctx, bkt)
	require.ErrorIs(t, err, ErrTenantDeletionMarkNotFound)

	require.NoError(t, WriteTenantDeletionMark(ctx, bkt, &TenantDeletionMark{DeletionTime: 5}))
	m, err := ReadTenantDeletionMark(ctx, bkt)
	require.NoError(t, err)
	require.Equal(t, int64(5), m.DeletionTime)
	require.Equal(t, "markers/tenant-deletion-mark.json", TenantDeletionMarkPath)

	// The bucket index does not take the tenant's mark for a block's.
	_, ok := DeletionMarkIDFromPath(TenantDeletionMarkPath)
	require.False(t, ok)
}

// FuzzTombstone feeds delete_series selectors and times: a request is refused with an error or becomes a
// tombstone that reads back the same from the bucket.
func FuzzTombstone(f *testing.F) {
	f.Add(`up{job="a"}`, int64(0), int64(10))
	f.Add(`{__name__=~".+"}`, int64(-5), int64(5))
	f.Add(`{job=~".*"}`, int64(1), int64(0))
	f.Add("{", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, selector string, minT, maxT int64) {
		ts, err := NewTombstone(ulid.MustNew(1, nil), []string{selector}, minT, maxT, 0)
		if err != nil {
			return
		}
		ctx := context.Background()
		bkt := objstore.NewInMemBucket()
		require.NoError(t, WriteTombstone(ctx, bkt, ts))
		got, err := ListTombstones(ctx, bkt)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, ts.Selectors, got[0].Selectors)
		require.Equal(t, len(ts.Matchers()), len(got[0].Matchers()))
		lset := labels.FromStrings("__name__", "up", "job", "a")
		require.Equal(t, ts.Matches(lset), got[0].Matches(lset))
	})
}
