// Package alertmanager runs a Prometheus Alertmanager per tenant, built from the Alertmanager's own
// packages (alert provider, dispatcher, inhibitor, silences, notification log, notification pipeline,
// templates, v2 API), with each tenant's configuration and state in alertstore.
//
// MultitenantAlertmanager is the service: it syncs the tenants' Alertmanagers with the store every
// poll interval, persists their silences and notification logs to the store, and serves the tenants'
// v2 APIs under PathPrefix, Mimir's configuration API at ConfigPath and a status page at StatusPath.
//
// The receivers of every tenant connect through a firewall (-alertmanager.receivers-firewall-*) that
// refuses, at dial time, addresses a tenant must not reach through Strata: by default loopback (Strata's
// own endpoints) and link-local (cloud metadata services).
//
// # Replication
//
// Without Replication, one instance runs every tenant's Alertmanager (or those Owns selects). With
// it, each tenant's Alertmanager runs on the tenant's replicas, and the gRPC API of alertmanagerpb
// (served by MultitenantAlertmanager) keeps them in step:
//
//   - State: silences and the notification log are Alertmanager's cluster.State. Each change is sent
//     to the other replicas (UpdateState) from a bounded queue per replica, and merged there; a
//     change that cannot be sent is replaced by the full state with the next one. A replica that
//     starts a tenant's Alertmanager takes changes at once, merges the full state of the replicas
//     that answer (ReadState) and the state in the bucket, and only then serves and notifies.
//   - Notifications: the instance is the notification pipeline's cluster peer. Its position among
//     the tenant's live replicas, in the ring's order, is how many -alertmanager.peer-timeout a
//     notification waits; the notification log, replicated meanwhile, stops the replicas behind
//     the one that sent it. If the first replica is down, the next sends one peer timeout later. As
//     in Alertmanager, this holds while a group's interval is longer than the waits of all replicas.
//   - API calls: any instance takes a tenant's calls under PathPrefix and sends them on to the
//     tenant's replicas (HandleRequest, marked with ForwardedHeader so they go no further). Alerts
//     go to every replica and need a majority of the live ones; silences go to one replica, which
//     replicates them; reads go to one replica, this instance first when it is one, the next on
//     failure. The configuration API only touches the store and is served where it arrives.
//   - Placement: the syncs ask Replication where each tenant runs, at every poll and within
//     -alertmanager.sharding-ring.check-period of a change of its Version. The first replica
//     persists the state periodically; every replica persists it when it stops or loses the tenant.
package alertmanager
