package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"

	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/api"
	"github.com/strata-metrics/strata/pkg/runtimeconfig"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// runtimeConfig is the content of -runtime-config.file.
type runtimeConfig struct {
	// Overrides are the limits of tenants that differ from the defaults: each tenant's entry lists only
	// the limits it changes, and holds the defaults for the others once parsed.
	Overrides map[string]*validation.Limits `yaml:"overrides"`
}

// parseRuntimeConfig returns the parser of the runtime configuration file. Every tenant's limits start
// from defaults, and must pass the same checks as the flags.
func parseRuntimeConfig(defaults validation.Limits) func([]byte) (*runtimeConfig, error) {
	return func(data []byte) (*runtimeConfig, error) {
		var raw struct {
			Overrides map[string]yaml.Node `yaml:"overrides"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		rc := &runtimeConfig{Overrides: make(map[string]*validation.Limits, len(raw.Overrides))}
		for tenantID, node := range raw.Overrides {
			if err := tenant.ValidateID(tenantID); err != nil {
				return nil, fmt.Errorf("overrides: %w", err)
			}
			l := defaults
			if node.Kind != 0 && node.Tag != "!!null" {
				if err := node.Decode(&l); err != nil {
					return nil, fmt.Errorf("overrides of tenant %q: %w", tenantID, err)
				}
			}
			if err := l.Validate(); err != nil {
				return nil, fmt.Errorf("overrides of tenant %q: %w", tenantID, err)
			}
			rc.Overrides[tenantID] = &l
		}
		return rc, nil
	}
}

// tenantOverrides reads the tenants' limits from the runtime configuration in effect.
type tenantOverrides struct {
	rc *runtimeconfig.Manager[runtimeConfig]
}

func (t tenantOverrides) ByTenant(tenantID string) *validation.Limits {
	if c := t.rc.Current(); c != nil {
		return c.Overrides[tenantID]
	}
	return nil
}

func (t tenantOverrides) AllByTenant() map[string]*validation.Limits {
	if c := t.rc.Current(); c != nil {
		return c.Overrides
	}
	return nil
}

// initRuntimeConfig loads the runtime configuration and builds the per-tenant limits every component reads.
func (a *App) initRuntimeConfig() (services.Service, error) {
	rc := runtimeconfig.New(a.cfg.RuntimeConfig, parseRuntimeConfig(a.cfg.Limits), a.reg, a.logger.With("component", "runtime-config"))
	a.runtimeConfig = rc
	a.overrides = validation.NewOverrides(a.cfg.Limits, tenantOverrides{rc})
	a.reg.MustRegister(validation.NewLimitsCollector(a.overrides))
	a.server.mux.HandleFunc("GET /runtime_config", a.serveRuntimeConfig)
	a.server.mux.Handle("GET /api/v1/user_limits", a.tenantMiddleware(http.HandlerFunc(a.serveUserLimits)))
	a.links = append(a.links, api.Link{Path: "/runtime_config", Title: "Runtime configuration (per-tenant limits); ?mode=diff for what differs from the defaults"})
	return rc, nil
}

// serveRuntimeConfig shows the runtime configuration in effect, every tenant's limits in full, or with
// ?mode=diff only those that differ from the defaults.
func (a *App) serveRuntimeConfig(w http.ResponseWriter, r *http.Request) {
	var out any = runtimeConfig{}
	if c := a.runtimeConfig.Current(); c != nil {
		out = c
	}
	switch mode := r.URL.Query().Get("mode"); mode {
	case "":
	case "diff":
		diff := map[string]map[string]any{}
		for tenantID, l := range a.overrides.AllByTenant() {
			diff[tenantID] = limitsDiff(a.overrides.Defaults(), l)
		}
		out = map[string]any{"overrides": diff}
	default:
		http.Error(w, fmt.Sprintf("unknown mode %q: leave it out for the whole configuration, or use diff", mode), http.StatusBadRequest)
		return
	}
	body, err := yaml.Marshal(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/yaml; charset=utf-8")
	_, _ = w.Write(body)
}

// serveUserLimits answers the calling tenant's effective limits, as JSON keyed by the limits' YAML keys.
func (a *App) serveUserLimits(w http.ResponseWriter, r *http.Request) {
	tenantID, err := tenant.FromContext(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	fields, err := limitsAsMap(a.overrides.For(tenantID))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(fields)
}

// limitsAsMap renders l keyed by YAML keys, with values as the runtime file takes them ("10m" for durations).
func limitsAsMap(l *validation.Limits) (map[string]any, error) {
	data, err := yaml.Marshal(l)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, yaml.Unmarshal(data, &m)
}

// limitsDiff returns the limits of l that differ from defaults.
func limitsDiff(defaults, l *validation.Limits) map[string]any {
	d, errD := limitsAsMap(defaults)
	m, errM := limitsAsMap(l)
	if errD != nil || errM != nil {
		return nil
	}
	for k, v := range m {
		if reflect.DeepEqual(d[k], v) {
			delete(m, k)
		}
	}
	return m
}
