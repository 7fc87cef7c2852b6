package alertmanager

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"

	"github.com/prometheus/alertmanager/config"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
)

// errInvalidConfig is matched by every error that a tenant's configuration causes; the config API
// answers them with 400.
var errInvalidConfig = errors.New("invalid Alertmanager configuration")

// parseTenantConfig parses a tenant's configuration and checks what can be checked without writing
// its templates: the template files' count and names, the Alertmanager configuration itself, and that
// it uses nothing of the process it runs in (files, credentials, tracing, event recording).
// maxTemplates 0 is no limit.
func parseTenantConfig(cfg alertstore.AlertConfig, maxTemplates int) (*config.Config, error) {
	if cfg.AlertmanagerConfig == "" {
		return nil, fmt.Errorf("%w: alertmanager_config is empty; to remove the configuration, use DELETE", errInvalidConfig)
	}
	if maxTemplates > 0 && len(cfg.TemplateFiles) > maxTemplates {
		return nil, fmt.Errorf("%w: %s", errInvalidConfig, limitMessage("alertmanager_max_templates_count",
			"%d template files, more than the limit of %d", len(cfg.TemplateFiles), maxTemplates))
	}
	for name := range cfg.TemplateFiles {
		if err := checkTemplateName(name, false); err != nil {
			return nil, fmt.Errorf("%w: template_files: %w", errInvalidConfig, err)
		}
	}
	amCfg, err := config.Load(cfg.AlertmanagerConfig)
	if err != nil {
		return nil, fmt.Errorf("%w: alertmanager_config: %w", errInvalidConfig, err)
	}
	if err := checkNoLocalSettings(amCfg); err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	// Tracing and event recording are the process' business: their outputs (files, Kafka, endpoints)
	// would be shared by every tenant.
	if !reflect.ValueOf(amCfg.TracingConfig).IsZero() {
		return nil, fmt.Errorf("%w: tracing cannot be set in a tenant's configuration", errInvalidConfig)
	}
	if !reflect.ValueOf(amCfg.EventRecorder).IsZero() {
		return nil, fmt.Errorf("%w: event_recorder cannot be set in a tenant's configuration", errInvalidConfig)
	}
	for _, p := range amCfg.Templates {
		if err := checkTemplateName(p, true); err != nil {
			return nil, fmt.Errorf("%w: templates: %w; templates are the names of template_files, globs allowed", errInvalidConfig, err)
		}
	}
	return amCfg, nil
}

// validateTenantConfig checks cfg as applying it would: parseTenantConfig, then its templates written
// to a scratch directory and parsed, and every receiver built behind fw.
func validateTenantConfig(cfg alertstore.AlertConfig, maxTemplates int, externalURL *url.URL, fw *receiverFirewall, logger *slog.Logger) error {
	amCfg, err := parseTenantConfig(cfg, maxTemplates)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "strata-alertmanager-validate-")
	if err != nil {
		return fmt.Errorf("validate templates: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writeTemplates(dir, cfg.TemplateFiles); err != nil {
		return fmt.Errorf("validate templates: %w", err)
	}
	tmpl, err := loadTemplates(dir, amCfg.Templates, externalURL)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	if _, err := buildReceivers(amCfg, tmpl, fw, logger); err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	return nil
}
