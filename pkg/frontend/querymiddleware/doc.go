// Package querymiddleware holds what the query-frontend does to a range query before a querier evaluates
// it: split it at day boundaries (-query-frontend.split-queries-by-interval) into parts evaluated in
// parallel, and answer what it can of each part from a results cache, asking the querier only for the
// missing time ranges.
//
// It is an http.RoundTripper wrapping the frontend's own (the one that hands a request to a querier), so
// its input and output are the Prometheus HTTP API's: what it answers is byte for byte what the querier
// would answer for the whole query. Requests it does not handle go to the next RoundTripper unchanged, so
// the querier's own answer, errors included, reaches the client: other paths, range queries with a stats
// parameter, parameters it cannot read exactly as the querier does, and queries the querier refuses
// whole (invalid, over 11,000 points, over the tenant's expression size or max_total_query_length),
// whose parts might otherwise pass.
//
// Answers of range queries it handled carry X-Strata-Cache when the results cache was consulted:
//
//	X-Strata-Cache: hit      every point came from the cache; no querier was asked
//	X-Strata-Cache: miss     nothing came from the cache
//	X-Strata-Cache: partial  some ranges came from the cache, the others from queriers
//
// The header is absent when the cache was not consulted (-query-frontend.cache-results=false, a request
// with Cache-Control: no-store, no tenant).
package querymiddleware
