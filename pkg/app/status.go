package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-metrics/strata/pkg/api"
)

func (a *App) indexLinks() []api.Link {
	base := []api.Link{
		{Path: "/ready", Title: "Readiness"},
		{Path: "/metrics", Title: "Metrics"},
		{Path: "/services", Title: "Services and their states"},
		{Path: "/config", Title: "Effective configuration"},
	}
	return append(base, a.links...)
}

func (a *App) serveReady(w http.ResponseWriter, _ *http.Request) {
	if err := a.readiness(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = fmt.Fprintln(w, "ready")
}

func (a *App) serveServices(w http.ResponseWriter, r *http.Request) {
	type entry struct {
		Module string `json:"module"`
		State  State  `json:"state"`
	}
	var list []entry
	a.stateMtx.Lock()
	for _, name := range a.order {
		if s, ok := a.states[name]; ok {
			list = append(list, entry{Module: name, State: s})
		}
	}
	a.stateMtx.Unlock()
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, e := range list {
		_, _ = fmt.Fprintf(w, "%s: %s\n", e.Module, e.State)
	}
}

func (a *App) serveConfig(w http.ResponseWriter, _ *http.Request) {
	out, err := effectiveConfig(a.flags)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(out)
}

func (a *App) metricsHandler() http.Handler {
	return promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg})
}
