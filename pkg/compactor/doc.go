// Package compactor owns the layout of every tenant's blocks in object storage. Per tenant and pass it
// merges the replication-factor copies of each 2h range into one de-duplicated block (vertical compaction),
// merges complete ranges upward (2h → 12h → 24h by default: horizontal compaction), marks blocks past the
// retention period for deletion, deletes marked blocks after a delay along with abandoned partial uploads,
// and writes the tenant's bucket index.
//
// Every step is safe to repeat after a crash. A compacted block is complete once its meta.json is in the
// bucket; from then on its Compaction.Sources say which blocks it replaces, so the next pass marks those
// for deletion instead of compacting them again, and BlocksToQuery never returns a block together with one
// that replaces it. Tenants are sharded over compactors with a ring (RingKey), one owner per tenant.
package compactor
