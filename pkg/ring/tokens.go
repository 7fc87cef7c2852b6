package ring

import (
	"math/rand/v2"
	"slices"
)

// GenerateTokens returns n random tokens, sorted, distinct from each other and from taken. The token
// space is cut into n equal parts and one token is drawn at random in each, which spreads an instance's
// share of the ring more evenly than fully random tokens (with 128 tokens each, three instances own
// 33% ± 3% as a rule).
func GenerateTokens(n int, taken []uint32) []uint32 {
	return generateTokens(globalRand{}, n, taken)
}

// uint64NSource is the part of a random source generateTokens uses; tests pass a seeded one.
type uint64NSource interface{ Uint64N(n uint64) uint64 }

type globalRand struct{}

func (globalRand) Uint64N(n uint64) uint64 { return rand.Uint64N(n) }

func generateTokens(rnd uint64NSource, n int, taken []uint32) []uint32 {
	if n <= 0 {
		return nil
	}
	used := make(map[uint32]struct{}, len(taken)+n)
	for _, t := range taken {
		used[t] = struct{}{}
	}
	tokens := make([]uint32, 0, n)
	width := (uint64(1) << 32) / uint64(n)
	for i := range uint64(n) {
		start := i * width
		if i == uint64(n)-1 {
			width = (uint64(1) << 32) - start // the last part takes the remainder
		}
		for {
			t := uint32(start + rnd.Uint64N(width))
			if _, dup := used[t]; dup {
				continue
			}
			used[t] = struct{}{}
			tokens = append(tokens, t)
			break
		}
	}
	slices.Sort(tokens)
	return tokens
}
