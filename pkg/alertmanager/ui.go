package alertmanager

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/strata-metrics/strata/pkg/util/inprocess"
)

// The Alertmanager module ships its UI without the built assets (ui/app/dist is made by an Elm build
// that is not part of the Go module), so its ui package does not compile from the module cache.
// Instead, PathPrefix+"/" is a page rendered here from the tenant's own v2 API: the tenant's alerts and
// silences, read-only. Being rendered on the server, it also works for browsers that cannot add the
// tenant header themselves (behind an authenticating proxy that does).

// uiAlert and uiSilence are the parts of the v2 API's answers that the page shows.
type uiAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Status      struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

type uiSilence struct {
	ID     string `json:"id"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
	Matchers []struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual *bool  `json:"isEqual"`
	} `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
}

type uiPage struct {
	Tenant   string
	Alerts   []uiAlert
	Silences []uiSilence
}

var uiTemplate = template.Must(template.New("ui").Funcs(template.FuncMap{
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"labels": func(m map[string]string) string {
		var b strings.Builder
		for i, k := range slices.Sorted(maps.Keys(m)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%q", k, m[k])
		}
		return b.String()
	},
	"matchers": func(s uiSilence) string {
		parts := make([]string, 0, len(s.Matchers))
		for _, m := range s.Matchers {
			op := "="
			if m.IsRegex {
				op = "=~"
			}
			if m.IsEqual != nil && !*m.IsEqual {
				op = strings.Replace(op, "=", "!", 1)
			}
			parts = append(parts, fmt.Sprintf("%s%s%q", m.Name, op, m.Value))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	},
}).Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Alertmanager: {{.Tenant}}</title>
<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;vertical-align:top}</style>
</head>
<body>
<h1>Alertmanager of tenant {{.Tenant}}</h1>
<p>Read-only. Create and expire silences with the <a href="api/v2/silences">v2 API</a> (amtool works with the tenant header).</p>
<h2>Alerts ({{len .Alerts}})</h2>
{{if .Alerts}}<table>
<tr><th>Labels</th><th>State</th><th>Since</th><th>Receivers</th><th>Annotations</th></tr>
{{range .Alerts}}<tr><td>{{labels .Labels}}</td><td>{{.Status.State}}{{if .Status.SilencedBy}} (silenced){{end}}{{if .Status.InhibitedBy}} (inhibited){{end}}</td><td>{{time .StartsAt}}</td><td>{{range $i, $r := .Receivers}}{{if $i}}, {{end}}{{$r.Name}}{{end}}</td><td>{{labels .Annotations}}</td></tr>
{{end}}</table>{{end}}
<h2>Silences ({{len .Silences}})</h2>
{{if .Silences}}<table>
<tr><th>ID</th><th>Matchers</th><th>State</th><th>Starts</th><th>Ends</th><th>Created by</th><th>Comment</th></tr>
{{range .Silences}}<tr><td>{{.ID}}</td><td>{{matchers .}}</td><td>{{.Status.State}}</td><td>{{time .StartsAt}}</td><td>{{time .EndsAt}}</td><td>{{.CreatedBy}}</td><td>{{.Comment}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`))

func (am *MultitenantAlertmanager) serveUI(w http.ResponseWriter, r *http.Request, id string, inst *instance) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	page := uiPage{Tenant: id}
	err := inst.getAPI(r, "/api/v2/alerts", &page.Alerts)
	if err == nil {
		err = inst.getAPI(r, "/api/v2/silences", &page.Silences)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	slices.SortFunc(page.Alerts, func(a, b uiAlert) int { return cmp.Compare(a.Labels["alertname"], b.Labels["alertname"]) })
	slices.SortFunc(page.Silences, func(a, b uiSilence) int { return b.EndsAt.Compare(a.EndsAt) })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := uiTemplate.Execute(w, page); err != nil {
		am.logger.Warn("render tenant page", "tenant", id, "err", err)
	}
}

// getAPI answers a GET of the tenant's v2 API in process and decodes its JSON into v.
func (i *instance) getAPI(r *http.Request, path string, v any) error {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, PathPrefix+path, nil)
	if err != nil {
		return err
	}
	h, err := i.handler()
	if err != nil {
		return err
	}
	rec := inprocess.NewRecorder(0)
	h.ServeHTTP(rec, req)
	if rec.Status() != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, rec.Status(), strings.TrimSpace(rec.Body.String()))
	}
	return json.Unmarshal(rec.Body.Bytes(), v)
}
