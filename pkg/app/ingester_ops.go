package app

import (
	"context"
	"fmt"
	"net/http"
)

// servePrepareShutdown is /ingester/prepare-shutdown: POST makes the ingester leave the ring when it
// next stops (before a scale-down), DELETE undoes it, GET tells which is set.
func (a *App) servePrepareShutdown(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		if a.ingesterLifecycler.UnregisterOnShutdown() {
			_, _ = fmt.Fprintln(w, "set")
		} else {
			_, _ = fmt.Fprintln(w, "unset")
		}
	case http.MethodPost:
		a.ingesterLifecycler.SetUnregisterOnShutdown(true)
		a.logger.Info("ingester will leave the ring on shutdown")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		a.ingesterLifecycler.SetUnregisterOnShutdown(a.cfg.Lifecycler.UnregisterOnShutdown)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "use GET, POST or DELETE", http.StatusMethodNotAllowed)
	}
}

// serveIngesterShutdown is /ingester/shutdown: it stops the ingester as on SIGTERM (LEAVING, in-flight
// requests finish, TSDBs closed, ring left as configured) while the process stays up and not ready, so an
// orchestrator can then remove it.
func (a *App) serveIngesterShutdown(w http.ResponseWriter, r *http.Request) {
	if !requirePost(w, r) {
		return
	}
	if s := a.state(TargetIngester); s != StateRunning {
		http.Error(w, fmt.Sprintf("ingester is %s", s), http.StatusConflict)
		return
	}
	a.setState(TargetIngester, StateStopping)
	if err := a.ingester.Stop(context.WithoutCancel(r.Context())); err != nil {
		a.setState(TargetIngester, StateFailed)
		http.Error(w, "ingester shutdown failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	a.setState(TargetIngester, StateTerminated)
	a.logger.Info("ingester shut down on request")
	w.WriteHeader(http.StatusNoContent)
}

// serveIngesterFlush is /ingester/flush: it compacts the head of every tenant (or of each ?tenant=) into
// blocks and ships them. With ?wait=true it answers when that is done, else at once.
func (a *App) serveIngesterFlush(w http.ResponseWriter, r *http.Request) {
	if !requirePost(w, r) {
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tenants := r.Form["tenant"]
	if r.Form.Get("wait") != "true" {
		go func() {
			if err := a.ingester.Flush(context.Background(), tenants...); err != nil {
				a.logger.Warn("flush failed", "err", err)
			}
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if err := a.ingester.Flush(r.Context(), tenants...); err != nil {
		http.Error(w, "flush failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// requirePost refuses, with 405, any method but POST for an endpoint that acts. A GET must never act:
// link prefetchers, crawlers, a pasted URL or an <img> on another site would otherwise stop or flush
// an ingester.
func requirePost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", http.MethodPost)
	http.Error(w, r.Method+" is not allowed: this endpoint acts, use POST", http.StatusMethodNotAllowed)
	return false
}
