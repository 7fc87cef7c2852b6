package ring

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGenerateTokens_UniqueSortedAndNotTaken(t *testing.T) {
	tests := map[string]struct {
		n     int
		taken []uint32
	}{
		"none":           {n: 0},
		"one":            {n: 1},
		"many":           {n: 512},
		"avoids taken":   {n: 256, taken: GenerateTokens(10_000, nil)},
		"with duplicate": {n: 64, taken: []uint32{1, 1, 2, 3}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := GenerateTokens(tc.n, tc.taken)
			require.Len(t, got, tc.n)
			require.True(t, slices.IsSorted(got))
			require.Len(t, slices.Compact(slices.Clone(got)), tc.n, "tokens must be unique")
			for _, tok := range got {
				require.NotContains(t, tc.taken, tok)
			}
		})
	}
}
