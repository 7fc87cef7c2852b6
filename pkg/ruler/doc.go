// Package ruler evaluates each tenant's recording and alerting rules: Ruler keeps one Prometheus
// rules.Manager per tenant over the groups package rulestore holds, queries as that tenant and pushes
// results and alert state under it. ConfigAPI serves Mimir's rules config API
// (/prometheus/config/v1/rules), ServeRules and ServeAlerts Prometheus' /api/v1/rules and /api/v1/alerts.
// Not yet wired into the app: the ring, the Alertmanager client and the -target come next.
package ruler
