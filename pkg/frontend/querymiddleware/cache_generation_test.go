package querymiddleware

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeGenerations gives every tenant the same generation, or err.
type fakeGenerations struct {
	gen string
	err error
}

func (f *fakeGenerations) CacheGeneration(context.Context, string) (string, error) {
	return f.gen, f.err
}

// A series deletion changes the tenant's generation: answers cached before it are not used after it.
func TestResultsCache_ANewGenerationIsANewEntry(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	gens := &fakeGenerations{}
	rt.UseCacheGenerations(gens)
	req := rangeRequest(t, `up`, dataStart, dataEnd, "5m")
	require.Equal(t, CacheMiss, roundTrip(t, rt, req).header.Get(CacheHeader))
	require.Equal(t, CacheHit, roundTrip(t, rt, req).header.Get(CacheHeader))

	gens.gen = "01JDELETION"
	require.Equal(t, CacheMiss, roundTrip(t, rt, req).header.Get(CacheHeader), "entries of the old generation are not used")
	require.Equal(t, CacheHit, roundTrip(t, rt, req).header.Get(CacheHeader))

	// When the generation cannot be read, the cache is not used at all.
	gens.err = errors.New("bucket down")
	got := roundTrip(t, rt, req)
	require.Empty(t, got.header.Get(CacheHeader))
	requireSameAnswer(t, directAnswer(t, handler, req), got, "answered by the querier")
}
