// Package alertmanager runs a Prometheus Alertmanager per tenant, built from the Alertmanager's own
// packages (alert provider, dispatcher, inhibitor, silences, notification log, notification pipeline,
// templates, v2 API), with each tenant's configuration and state in alertstore.
//
// MultitenantAlertmanager is the service: it syncs the tenants' Alertmanagers with the store every
// poll interval, persists their silences and notification logs to the store, and serves the tenants'
// v2 APIs under PathPrefix, Mimir's configuration API at ConfigPath and a status page at StatusPath.
//
// One replica runs a tenant's Alertmanager today (Owns decides which tenants). Replication across
// replicas plugs in at the instance: its silences and notification log are Alertmanager's
// cluster.State (MarshalBinary, Merge, SetBroadcast). A replication layer would set each one's
// broadcast to send the update to the tenant's other replicas and Merge what they send, merge the
// full state of a peer (or, as now, of the bucket) when an instance starts, and give the notification
// pipeline a notify.Peer whose position is this replica's rank among the tenant's replicas, so that
// replicas further down wait before notifying and the notification log deduplicates.
package alertmanager
