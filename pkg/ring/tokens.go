package ring

import (
	"math/rand/v2"
	"slices"
)

// GenerateTokens returns n random tokens, sorted, distinct from each other and from taken. Random tokens
// spread each instance's share of the token space evenly once instances own ~100 or more of them.
func GenerateTokens(n int, taken []uint32) []uint32 {
	if n <= 0 {
		return nil
	}
	used := make(map[uint32]struct{}, len(taken)+n)
	for _, t := range taken {
		used[t] = struct{}{}
	}
	tokens := make([]uint32, 0, n)
	for len(tokens) < n {
		t := rand.Uint32()
		if _, dup := used[t]; dup {
			continue
		}
		used[t] = struct{}{}
		tokens = append(tokens, t)
	}
	slices.Sort(tokens)
	return tokens
}
