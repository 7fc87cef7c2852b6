package distributor

import (
	"cmp"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
)

// electedReplica is one row of /distributor/ha_tracker, and one element of its JSON form.
type electedReplica struct {
	Tenant         string    `json:"tenant"`
	Cluster        string    `json:"cluster"`
	Replica        string    `json:"replica"`
	ElectedAt      time.Time `json:"elected_at"`
	LastUpdate     time.Time `json:"last_update"`
	FailoverAt     time.Time `json:"failover_at"`
	ElectedChanges int64     `json:"elected_changes"`
}

// status lists the elected replicas this distributor knows, by tenant and cluster.
func (t *HATracker) status() []electedReplica {
	t.mu.RLock()
	out := []electedReplica{}
	for tenantID, ten := range t.tenants {
		for cluster, r := range ten.clusters {
			received := time.UnixMilli(r.ReceivedAt).UTC()
			out = append(out, electedReplica{
				Tenant:         tenantID,
				Cluster:        cluster,
				Replica:        r.Replica,
				ElectedAt:      time.UnixMilli(r.ElectedAt).UTC(),
				LastUpdate:     received,
				FailoverAt:     received.Add(t.cfg.FailoverTimeout),
				ElectedChanges: r.ElectedChanges,
			})
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b electedReplica) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Cluster, b.Cluster))
	})
	return out
}

var haTrackerPage = template.Must(template.New("ha_tracker").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>HA tracker</title>
<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>
</head>
<body>
<h1>HA tracker</h1>
<p>The elected replica of each HA cluster of the tenants this distributor has received samples from.
Another replica is elected when the elected one has sent nothing until its fail-over time.</p>
<table>
<tr><th>Tenant</th><th>Cluster</th><th>Elected replica</th><th>Elected at</th><th>Last update</th><th>Fail-over at</th><th>Elections</th></tr>
{{range .}}<tr><td>{{.Tenant}}</td><td>{{.Cluster}}</td><td>{{.Replica}}</td><td>{{.ElectedAt.Format "2006-01-02T15:04:05.000Z07:00"}}</td><td>{{.LastUpdate.Format "2006-01-02T15:04:05.000Z07:00"}}</td><td>{{.FailoverAt.Format "2006-01-02T15:04:05.000Z07:00"}}</td><td>{{.ElectedChanges}}</td></tr>
{{end}}</table>
</body>
</html>
`))

// ServeHTTP serves /distributor/ha_tracker: an HTML table, or JSON with ?format=json or when the request
// accepts application/json.
func (t *HATracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s := t.status()
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := haTrackerPage.Execute(w, s); err != nil {
		t.logger.Warn("render HA tracker page", "err", err)
	}
}
