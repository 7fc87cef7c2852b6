// Package ruler evaluates each tenant's recording and alerting rules. So far it holds the rules config
// API (ConfigAPI, Mimir's /prometheus/config/v1/rules); the groups it writes are kept by package
// rulestore.
package ruler
