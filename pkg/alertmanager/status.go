package alertmanager

import (
	"cmp"
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/silence"
)

// TenantStatus describes one tenant's Alertmanager running here, as the status page lists it.
type TenantStatus struct {
	Tenant string `json:"tenant"`
	// Config is "own" for the tenant's configuration, "fallback" for -alertmanager.fallback-config-file.
	Config         string    `json:"config"`
	Started        time.Time `json:"started"`
	ConfigApplied  time.Time `json:"config_applied"`
	Alerts         int64     `json:"alerts"`
	ActiveSilences int       `json:"active_silences"`
	// Position is this replica's rank among the tenant's replicas: 0 notifies first.
	Position int `json:"position"`
}

// Tenants lists the tenants whose Alertmanager runs here, sorted by tenant.
func (am *MultitenantAlertmanager) Tenants() []TenantStatus {
	instances := am.instancesSnapshot()
	out := make([]TenantStatus, 0, len(instances))
	for id, inst := range instances {
		applied, at := inst.appliedConfig()
		config := "own"
		if applied.fallback {
			config = "fallback"
		}
		active, _ := inst.silences.CountState(context.Background(), silence.SilenceStateActive)
		out = append(out, TenantStatus{
			Tenant:         id,
			Config:         config,
			Started:        inst.started.UTC(),
			ConfigApplied:  at.UTC(),
			Alerts:         inst.alertCount.count(),
			ActiveSilences: active,
			Position:       inst.Position(),
		})
	}
	slices.SortFunc(out, func(a, b TenantStatus) int { return cmp.Compare(a.Tenant, b.Tenant) })
	return out
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"time": func(t time.Time) string { return t.Format(time.RFC3339) },
}).Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Alertmanager tenants</title>
<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>
</head>
<body>
<h1>Alertmanager tenants</h1>
{{if not .}}<p>No tenant's Alertmanager runs here.</p>{{else}}
<table>
<tr><th>Tenant</th><th>Configuration</th><th>Started</th><th>Configuration applied</th><th>Alerts</th><th>Active silences</th><th>Replica position</th></tr>
{{range .}}<tr><td>{{.Tenant}}</td><td>{{.Config}}</td><td>{{time .Started}}</td><td>{{time .ConfigApplied}}</td><td>{{.Alerts}}</td><td>{{.ActiveSilences}}</td><td>{{.Position}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`))

// StatusHandler serves StatusPath: the tenants whose Alertmanager runs here, as an HTML page, or as
// JSON when the request accepts application/json. It needs no tenant.
func (am *MultitenantAlertmanager) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		tenants := am.Tenants()
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(tenants)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := statusPage.Execute(w, tenants); err != nil {
			am.logger.Warn("render status page", "err", err)
		}
	})
}
