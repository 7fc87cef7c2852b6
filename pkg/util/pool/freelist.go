// Package pool keeps large, reusable objects between requests.
package pool

// FreeList keeps up to a fixed number of released objects for reuse. Unlike sync.Pool it does not drop
// them at every garbage collection, and an object released on one goroutine is at once available to all
// (sync.Pool first keeps it in a slot private to the releasing goroutine's processor): requests whose
// buffers are released by another goroutine than the one that takes them then reuse those buffers
// instead of growing new ones.
type FreeList[T any] struct {
	items chan T
	alloc func() T
}

// NewFreeList returns a free list keeping at most size objects; Get calls alloc when it is empty.
func NewFreeList[T any](size int, alloc func() T) *FreeList[T] {
	return &FreeList[T]{items: make(chan T, size), alloc: alloc}
}

// Get returns a released object, or a new one.
func (f *FreeList[T]) Get() T {
	select {
	case v := <-f.items:
		return v
	default:
		return f.alloc()
	}
}

// Put releases v for reuse; it is dropped when the list is full.
func (f *FreeList[T]) Put(v T) {
	select {
	case f.items <- v:
	default:
	}
}
