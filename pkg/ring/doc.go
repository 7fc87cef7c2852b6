// Package ring is the consistent hash ring of Strata's ingesters. Each instance owns random 32-bit tokens;
// a series hashed to a token is replicated to the next ReplicationFactor distinct instances clockwise
// (distinct zones with zone awareness). The ring descriptor (Desc) lives under one key of a kv.Client:
// instances register and heartbeat in it through a Lifecycler, and readers (distributors, queriers) keep a
// Ring that watches it and answers replication-set lookups from a sorted token table.
package ring
