// Package blockstore is what ingesters, the compactor, store-gateways and queriers share about TSDB blocks in
// object storage: block metadata (meta.json with a Strata section), the shipper that uploads an
// ingester's blocks, deletion marks, and the per-tenant bucket index.
//
// A tenant's bucket (already prefixed with "<tenant>/" by the caller) holds:
//
//	<ULID>/meta.json                      written last: a block without it is partial
//	<ULID>/index
//	<ULID>/chunks/000001 ...
//	<ULID>/tombstones                     when the TSDB wrote one
//	<ULID>/deletion-mark.json             block marked for deletion
//	markers/<ULID>-deletion-mark.json     the same mark, listable without walking every block
//	bucket-index.json.gz                  the tenant's bucket index
package blockstore
