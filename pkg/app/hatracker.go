package app

import (
	"net/http"

	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/distributor"
	"github.com/strata-metrics/strata/pkg/services"
)

// haTrackerStore is the KV backend of the HA tracker: its own when set, the rings' otherwise.
func (a *App) haTrackerStore() string {
	if !a.cfg.Distributor.HATracker.Enable {
		return ""
	}
	if s := a.cfg.Distributor.HATracker.Store; s != "" {
		return s
	}
	return a.cfg.RingStore
}

// usesMemberlist tells whether a KV backend needs this process' gossip.
func (a *App) usesMemberlist(store string) bool {
	return store == storeMemberlist ||
		store == storeMulti && (a.cfg.Multi.Primary == storeMemberlist || a.cfg.Multi.Secondary == storeMemberlist)
}

// initHATracker gives the distributor its HA tracker, when enabled, and serves /distributor/ha_tracker.
func (a *App) initHATracker(d *distributor.Distributor) (services.Service, error) {
	const path = "/distributor/ha_tracker"
	if !a.cfg.Distributor.HATracker.Enable {
		a.server.mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the HA tracker is off: start the distributors with -distributor.ha-tracker.enable=true", http.StatusNotFound)
		})
		return nil, nil
	}
	client, kvService, err := a.newKVClient(a.haTrackerStore(), distributor.HAClustersCodec{})
	if err != nil {
		return nil, err
	}
	tracker, err := distributor.NewHATracker(a.cfg.Distributor.HATracker, client, a.reg, a.logger.With("component", "ha-tracker"))
	if err != nil {
		return nil, err
	}
	d.UseHATracker(tracker)
	a.server.mux.Handle(path, tracker)
	a.links = append(a.links, api.Link{Path: path, Title: "HA tracker: elected replica of each HA cluster"})
	return serviceGroup{kvService, tracker}, nil
}
