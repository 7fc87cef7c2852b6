// Package storegateway serves queries over the TSDB blocks in object storage. Each store-gateway loads the
// index of the blocks it owns (by the ring, with BlockToken) into a local sync directory, keeps it up to date
// from the tenants' bucket indexes, and answers the querier's Series, LabelNames and LabelValues requests:
// postings and series come from the local index, chunks from range reads of the bucket, both cached in
// memory with a size bound.
package storegateway
