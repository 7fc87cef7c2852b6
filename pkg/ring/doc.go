// Package ring is Strata's consistent hash ring, used by ingesters, store-gateways, compactors and
// distributors, each kind in a ring of its own. Each instance owns 32-bit tokens, one drawn at random in
// each equal part of the token space; a key (a series, a block, a tenant: keys.go) hashed to a token is
// replicated to the next ReplicationFactor distinct instances clockwise (distinct zones with zone
// awareness). The ring descriptor (Desc) lives under one key of a kv.Client: instances register and
// heartbeat in it through a Lifecycler, and readers keep a Ring that watches it and answers
// replication-set lookups from a sorted token table.
package ring
