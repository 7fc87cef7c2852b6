// Package api holds Strata's HTTP surface that is not a single component's: the Prometheus query API
// handlers, build information and the index page.
package api

import (
	"html/template"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/version"
)

// Link is an entry of the index page.
type Link struct {
	Path  string
	Title string
}

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Strata</title></head>
<body><h1>Strata</h1><p>Version {{.Version}}</p><ul>
{{range .Links}}<li><a href="{{.Path}}">{{.Title}}</a> <code>{{.Path}}</code></li>
{{end}}</ul></body></html>
`))

// IndexPage lists the status and admin pages of this process.
func IndexPage(links func() []Link) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = indexTemplate.Execute(w, struct {
			Version string
			Links   []Link
		}{version.Get().Version, links()})
	})
}

// BuildInfoCollector exports strata_build_info{version,revision,branch,goversion} = 1.
func BuildInfoCollector() prometheus.Collector {
	info := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "strata_build_info",
		Help:        "Build information of this Strata binary; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Revision, "branch": info.Branch, "goversion": info.GoVersion},
	})
	g.Set(1)
	return g
}
