package app

import (
	"github.com/strata-metrics/strata/pkg/alertmanager"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/services"
)

// initAlertmanager runs each tenant's Alertmanager, configured through /api/v1/alerts and served under
// /alertmanager for the tenant of the request.
func (a *App) initAlertmanager() (services.Service, error) {
	logger := a.logger.With("component", "alertmanager")
	store, err := alertstore.New(a.cfg.AlertmanagerStorage, a.bucket)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg.Alertmanager
	if cfg.DataDir == "" {
		cfg.DataDir = a.dataPath("alertmanager")
	}
	am, err := alertmanager.New(cfg, store, a.reg, logger)
	if err != nil {
		return nil, err
	}
	a.alertmanager = am
	handler := a.tenantMiddleware(am)
	a.server.mux.Handle(alertmanager.PathPrefix, handler)
	a.server.mux.Handle(alertmanager.PathPrefix+"/", handler)
	a.server.mux.Handle(alertmanager.ConfigPath, handler)
	a.server.mux.Handle(alertmanager.StatusPath, am.StatusHandler())
	a.links = append(a.links,
		api.Link{Path: alertmanager.StatusPath, Title: "Alertmanager tenants"},
		api.Link{Path: alertmanager.PathPrefix + "/", Title: "Alertmanager of a tenant (X-Scope-OrgID)"})
	return am, nil
}
