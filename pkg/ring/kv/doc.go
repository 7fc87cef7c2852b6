// Package kv is the small key-value seam the rings are stored behind. A ring descriptor lives under one
// key; writers change it with compare-and-swap and readers watch it. Backends (inmemory, memberlist,
// etcd, and multi to migrate between two) store values as bytes through a Codec, so no two callers ever
// share a decoded value.
package kv
