// Package api holds Strata's HTTP surface that is not a single component's: the Prometheus query API
// handlers, build information and the index page.
package api

import (
	"html/template"
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is set at build time with -ldflags "-X github.com/strata-metrics/strata/pkg/api.Version=...".
var Version = "dev"

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
		}{Version, links()})
	})
}

// buildInfo is the body of /api/v1/status/buildinfo, in Prometheus' field names.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// BuildInfo describes this binary, taking the revision from the Go build's VCS stamp.
func BuildInfo() buildInfo {
	info := buildInfo{Version: Version, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.BuildDate = s.Value
			}
		}
	}
	return info
}

// BuildInfoCollector exports strata_build_info{version,revision,goversion} = 1.
func BuildInfoCollector() prometheus.Collector {
	info := BuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "strata_build_info",
		Help:        "Build information of this Strata binary; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Revision, "goversion": info.GoVersion},
	})
	g.Set(1)
	return g
}
