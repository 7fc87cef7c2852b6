package distributor

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

func TestSeriesToken(t *testing.T) {
	up := series(lbls("__name__", "up", "job", "api")).Labels
	tests := []struct {
		name       string
		aTenant    string
		a          []prompb.Label
		bTenant    string
		b          []prompb.Label
		wantsEqual bool
	}{
		{name: "same tenant and labels", aTenant: "a", a: up, bTenant: "a", b: up, wantsEqual: true},
		{name: "same labels, different tenants", aTenant: "team-a", a: up, bTenant: "team-b", b: up},
		{
			name:    "different label value",
			aTenant: "a", a: up,
			bTenant: "a", b: series(lbls("__name__", "up", "job", "db")).Labels,
		},
		{
			name:    "name and value boundary moved",
			aTenant: "a", a: series(lbls("__name__", "up", "ab", "c")).Labels,
			bTenant: "a", b: series(lbls("__name__", "up", "a", "bc")).Labels,
		},
		{
			name:    "tenant and label boundary moved",
			aTenant: "a", a: series(lbls("b", "c")).Labels,
			bTenant: "ab", b: series(lbls("", "c")).Labels,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := seriesToken(tt.aTenant, tt.a), seriesToken(tt.bTenant, tt.b)
			if tt.wantsEqual {
				require.Equal(t, a, b)
			} else {
				require.NotEqual(t, a, b)
			}
		})
	}
}

func TestMetadataToken_DiffersByTenant(t *testing.T) {
	require.Equal(t, metadataToken("a", "up"), metadataToken("a", "up"))
	require.NotEqual(t, metadataToken("a", "up"), metadataToken("b", "up"))
	require.NotEqual(t, metadataToken("a", "up"), metadataToken("a", "down"))
}

// TestPush_SameSeriesOfTwoTenantsLandsOnDifferentIngesters checks through the HTTP path that the tenant
// takes part in sharding: with one replica among many ingesters, series identical but for their tenant are
// spread independently.
func TestPush_SameSeriesOfTwoTenantsLandsOnDifferentIngesters(t *testing.T) {
	env := newTestEnv(t, withReplication(16, 1))
	req := func() *prompb.WriteRequest {
		r := &prompb.WriteRequest{}
		for i := range 20 {
			r.Timeseries = append(r.Timeseries, series(lbls("__name__", "up", "n", itoa(int64(i))), testNow.UnixMilli()))
		}
		return r
	}
	require.Equal(t, http.StatusNoContent, env.push(t, "team-a", req()).Code)
	require.Equal(t, http.StatusNoContent, env.push(t, "team-b", req()).Code)

	placement := func(tenantID string) map[string]int {
		out := map[string]int{}
		for i, ing := range env.ingesters {
			for s := range ing.seriesOf(tenantID) {
				out[s] = i
			}
		}
		return out
	}
	a, b := placement("team-a"), placement("team-b")
	require.Len(t, a, 20)
	require.Len(t, b, 20)
	require.NotEqual(t, a, b)
}

// Tokens must not change between versions: distributors of two versions during a rolling upgrade, and
// ingesters' series, rely on the same series having the same token.
func TestSeriesToken_IsXXHashOfTenantAndLabelsWithSeparators(t *testing.T) {
	long := strings.Repeat("v", 700) // beyond the stack buffer
	for _, ls := range [][]prompb.Label{
		series(lbls("__name__", "up", "job", "api")).Labels,
		series(lbls("__name__", "up", "job", long)).Labels,
		nil,
	} {
		want := "tenant\xff"
		for _, l := range ls {
			want += l.Name + "\xff" + l.Value + "\xff"
		}
		h := xxhash.Sum64String(want)
		require.Equal(t, uint32(h)^uint32(h>>32), seriesToken("tenant", ls))
	}
}

func BenchmarkSeriesToken(b *testing.B) {
	ls := benchmarkRequest(1, 0).Timeseries[0].Labels
	b.ReportAllocs()
	for b.Loop() {
		seriesToken("tenant-0", ls)
	}
}
