package ring

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// instanceStatus is one row of the status page, and one element of its JSON form.
type instanceStatus struct {
	ID                  string        `json:"id"`
	State               InstanceState `json:"state"`
	Address             string        `json:"address"`
	Zone                string        `json:"zone"`
	HeartbeatTimestamp  time.Time     `json:"heartbeat_timestamp"`
	HeartbeatAgeSeconds float64       `json:"heartbeat_age_seconds"`
	RegisteredTimestamp time.Time     `json:"registered_timestamp"`
	Tokens              int           `json:"tokens"`
	Ownership           float64       `json:"ownership"` // percent of the token space
	Healthy             bool          `json:"healthy"`   // heartbeat within -ring.heartbeat-timeout
}

type ringStatus struct {
	Name      string           `json:"name"`
	Instances []instanceStatus `json:"instances"`
}

func (r *Ring) status() ringStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	s := ringStatus{Name: r.name, Instances: make([]instanceStatus, 0, len(r.instances))}
	for i := range r.instances {
		inst := &r.instances[i]
		s.Instances = append(s.Instances, instanceStatus{
			ID:                  inst.ID,
			State:               inst.State,
			Address:             inst.Addr,
			Zone:                inst.Zone,
			HeartbeatTimestamp:  inst.HeartbeatTime().UTC(),
			HeartbeatAgeSeconds: now.Sub(inst.HeartbeatTime()).Seconds(),
			RegisteredTimestamp: time.UnixMilli(inst.RegisteredTimestamp).UTC(),
			Tokens:              len(inst.Tokens),
			Ownership:           r.ownership[i] * 100,
			Healthy:             r.alive(inst, now.UnixMilli()),
		})
	}
	return s
}

var statusPage = template.Must(template.New("ring").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{{.Name}} ring</title>
<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}.unhealthy{background:#fcc}</style>
</head>
<body>
<h1>{{.Name}} ring</h1>
<form method="POST">
<table>
<tr><th>Instance</th><th>State</th><th>Address</th><th>Zone</th><th>Last heartbeat</th><th>Tokens</th><th>Ownership</th><th>Health</th><th></th></tr>
{{range .Instances}}<tr{{if not .Healthy}} class="unhealthy"{{end}}>
<td>{{.ID}}</td><td>{{.State}}</td><td>{{.Address}}</td><td>{{.Zone}}</td>
<td>{{printf "%.0f" .HeartbeatAgeSeconds}}s ago</td><td>{{.Tokens}}</td><td>{{printf "%.1f" .Ownership}}%</td>
<td>{{if .Healthy}}healthy{{else}}unhealthy{{end}}</td>
<td>{{if not .Healthy}}<button name="forget" value="{{.ID}}" type="submit">Forget</button>{{end}}</td>
</tr>
{{end}}</table>
</form>
</body>
</html>
`))

// ServeHTTP serves the ring's status page (/ingester/ring): an HTML table, or JSON when the request
// accepts application/json. A POST with form field forget=<id> removes that instance if its heartbeat is
// stale, then redirects back to the page; a healthy or unknown instance is refused with 400, since
// forgetting a live instance would only make it re-register on its next heartbeat.
func (r *Ring) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPost {
		r.serveForget(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s := r.status()
	if strings.Contains(req.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusPage.Execute(w, s); err != nil {
		r.logger.Warn("render ring status page", "err", err)
	}
}

func (r *Ring) serveForget(w http.ResponseWriter, req *http.Request) {
	id := req.FormValue("forget")
	if id == "" {
		http.Error(w, "missing form field forget=<instance id>", http.StatusBadRequest)
		return
	}
	r.mu.RLock()
	var found, alive bool
	for i := range r.instances {
		if r.instances[i].ID == id {
			found, alive = true, r.alive(&r.instances[i], r.now().UnixMilli())
			break
		}
	}
	r.mu.RUnlock()
	switch {
	case !found:
		http.Error(w, "instance "+id+" is not in the ring", http.StatusBadRequest)
		return
	case alive:
		http.Error(w, "instance "+id+" is healthy; only instances whose heartbeat is older than -ring.heartbeat-timeout can be forgotten", http.StatusBadRequest)
		return
	}
	if err := Forget(req.Context(), r.kv, r.key, id); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	r.logger.Info("forgot instance", "instance", id)
	http.Redirect(w, req, req.URL.Path, http.StatusSeeOther)
}
