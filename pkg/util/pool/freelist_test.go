package pool

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFreeList_ReusesReleasedObjectsAcrossGoroutinesAndGC(t *testing.T) {
	allocated := 0
	f := NewFreeList(2, func() *[]byte { allocated++; b := make([]byte, 0, 1024); return &b })

	a := f.Get()
	done := make(chan struct{})
	go func() { f.Put(a); close(done) }() // released by another goroutine
	<-done
	runtime.GC()
	runtime.GC()
	require.Same(t, a, f.Get(), "kept through garbage collections, visible to every goroutine")
	require.Equal(t, 1, allocated)

	b, c, d := f.Get(), f.Get(), f.Get()
	require.Equal(t, 4, allocated)
	f.Put(b)
	f.Put(c)
	f.Put(d) // over the limit: dropped
	require.Same(t, b, f.Get())
	require.Same(t, c, f.Get())
	f.Get()
	require.Equal(t, 5, allocated)
}
