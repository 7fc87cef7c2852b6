package alertmanager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// serveConfigAPI serves Mimir's Alertmanager configuration API at ConfigPath for the request's tenant.
// The body of GET and POST is YAML:
//
//	template_files:
//	  <name>: <content>
//	alertmanager_config: <the Alertmanager configuration file, as a string>
//
// GET answers 200 with the configuration, or 404 when the tenant has none; POST validates the body
// and stores it (201), or answers 400 saying what is wrong (413 for a body over the tenant's
// alertmanager_max_config_size_bytes); DELETE removes the configuration (200, also when there was
// none). A change is in effect within -alertmanager.configs.poll-interval.
func (am *MultitenantAlertmanager) serveConfigAPI(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		am.getConfig(w, r)
	case http.MethodPost:
		am.setConfig(w, r)
	case http.MethodDelete:
		am.deleteConfig(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (am *MultitenantAlertmanager) getConfig(w http.ResponseWriter, r *http.Request) {
	id, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	cfg, err := am.store.GetConfig(r.Context(), id)
	if errors.Is(err, alertstore.ErrNotFound) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		am.storeError(w, id, err)
		return
	}
	out, err := yaml.Marshal(&cfg)
	if err != nil {
		am.storeError(w, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(out)
}

func (am *MultitenantAlertmanager) setConfig(w http.ResponseWriter, r *http.Request) {
	id, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	body := io.Reader(r.Body)
	if limit := am.limits.AlertmanagerMaxConfigSizeBytes(id); limit > 0 {
		body = http.MaxBytesReader(w, r.Body, int64(limit))
	}
	data, err := io.ReadAll(body)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		http.Error(w, limitMessage("alertmanager_max_config_size_bytes", "the configuration is larger than %d bytes, the limit", mbe.Limit), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	cfg, err := decodeConfigBody(data)
	if err == nil {
		err = validateTenantConfig(cfg, am.limits.AlertmanagerMaxTemplatesCount(id), am.externalURL, am.firewall, am.logger.With("tenant", id))
	}
	if errors.Is(err, errInvalidConfig) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err != nil {
		am.logger.Error("validate tenant configuration", "tenant", id, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := am.store.SetConfig(r.Context(), id, cfg); err != nil {
		am.storeError(w, id, err)
		return
	}
	am.logger.Debug("tenant configuration set", "tenant", id)
	w.WriteHeader(http.StatusCreated)
}

// decodeConfigBody decodes the YAML body of a POST. Unknown fields are refused, so a misspelled key is
// reported rather than ignored. yaml.v3 refuses documents whose aliases expand far beyond their size,
// and the body's size is bounded, so a hostile body costs little.
func decodeConfigBody(data []byte) (alertstore.AlertConfig, error) {
	var cfg alertstore.AlertConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("%w: the body is empty", errInvalidConfig)
		}
		return cfg, fmt.Errorf("%w: decode the body: %w", errInvalidConfig, err)
	}
	return cfg, nil
}

func (am *MultitenantAlertmanager) deleteConfig(w http.ResponseWriter, r *http.Request) {
	id, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	if err := am.store.DeleteConfig(r.Context(), id); err != nil {
		am.storeError(w, id, err)
		return
	}
	am.logger.Debug("tenant configuration deleted", "tenant", id)
	w.WriteHeader(http.StatusOK)
}

// storeError answers 500 for a store that failed: the request may succeed when retried.
func (am *MultitenantAlertmanager) storeError(w http.ResponseWriter, id string, err error) {
	am.logger.Error("Alertmanager configuration store", "tenant", id, "err", err)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}
