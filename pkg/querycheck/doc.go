// Package querycheck refuses PromQL queries that cross a tenant's query limits or that Strata will not
// parse, before any engine parses them. The querier and the query-frontend both check: the frontend so
// that it does not split or shard a query the querier would refuse whole.
package querycheck
