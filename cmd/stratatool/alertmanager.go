package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/alecthomas/kingpin/v2"
	amconfig "github.com/prometheus/alertmanager/config"
	amtemplate "github.com/prometheus/alertmanager/template"
	"gopkg.in/yaml.v3"
)

// alertmanagerConfigPath is the multi-tenant Alertmanager's configuration API, as in Mimir.
const alertmanagerConfigPath = "/api/v1/alerts"

// alertmanagerUserConfig is a tenant's Alertmanager configuration as the API carries it: the
// configuration as a YAML string, and templates by file name.
type alertmanagerUserConfig struct {
	TemplateFiles      map[string]string `yaml:"template_files"`
	AlertmanagerConfig string            `yaml:"alertmanager_config"`
}

var errNoAlertmanagerConfig = errors.New("the tenant has no Alertmanager configuration")

func (c *client) getAlertmanagerConfig(ctx context.Context) (alertmanagerUserConfig, error) {
	var cfg alertmanagerUserConfig
	body, err := c.do(ctx, http.MethodGet, alertmanagerConfigPath, nil, http.StatusOK)
	if isStatus(err, http.StatusNotFound) {
		return cfg, errNoAlertmanagerConfig
	}
	if err != nil {
		return cfg, err
	}
	if err := yaml.Unmarshal(body, &cfg); err != nil {
		return cfg, fmt.Errorf("GET %s: the answer is not an Alertmanager configuration: %w", alertmanagerConfigPath, err)
	}
	return cfg, nil
}

// readAlertmanagerFiles reads a configuration file and template files, named in the configuration by
// their base names as Mimir does, and validates them as Alertmanager would load them.
func readAlertmanagerFiles(configPath string, templatePaths []string) (alertmanagerUserConfig, error) {
	cfg := alertmanagerUserConfig{TemplateFiles: map[string]string{}}
	data, err := os.ReadFile(configPath)
	if err != nil {
		return cfg, err
	}
	cfg.AlertmanagerConfig = string(data)
	for _, path := range templatePaths {
		content, err := os.ReadFile(path)
		if err != nil {
			return cfg, err
		}
		name := filepath.Base(path)
		if _, dup := cfg.TemplateFiles[name]; dup {
			return cfg, fmt.Errorf("%s: another template file is named %s too; templates are stored by file name", path, name)
		}
		cfg.TemplateFiles[name] = string(content)
	}
	if err := verifyAlertmanagerConfig(cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", configPath, err)
	}
	return cfg, nil
}

// verifyAlertmanagerConfig loads the configuration with Alertmanager's own config package and parses
// each template, after Alertmanager's default ones, with its template package.
func verifyAlertmanagerConfig(cfg alertmanagerUserConfig) error {
	if _, err := amconfig.Load(cfg.AlertmanagerConfig); err != nil {
		return fmt.Errorf("invalid Alertmanager configuration: %w", err)
	}
	tmpl, err := amtemplate.FromGlobs(nil)
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(cfg.TemplateFiles) {
		if err := tmpl.Parse(bytes.NewReader([]byte(cfg.TemplateFiles[name]))); err != nil {
			return fmt.Errorf("invalid template %s: %w", name, err)
		}
	}
	return nil
}

func registerAlertmanagerCommands(app *kingpin.Application, cfg *clientConfig, commands map[string]command) {
	am := app.Command("alertmanager", "View, change and verify the tenant's Alertmanager configuration.")

	get := am.Command("get", "Print the tenant's Alertmanager configuration and its templates.")
	commands[get.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		amc, err := c.getAlertmanagerConfig(ctx)
		if err != nil {
			return err
		}
		_, _ = fmt.Fprint(stdout, amc.AlertmanagerConfig)
		for _, name := range sortedKeys(amc.TemplateFiles) {
			_, _ = fmt.Fprintf(stdout, "\n--- template %s\n%s", name, amc.TemplateFiles[name])
		}
		return nil
	})

	load := am.Command("load", "Verify a configuration and its templates, then make them the tenant's.")
	loadConfig := load.Arg("config", "Alertmanager configuration file.").Required().String()
	loadTemplates := load.Arg("template-files", "Template files, named by their base names.").Strings()
	commands[load.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		amc, err := readAlertmanagerFiles(*loadConfig, *loadTemplates)
		if err != nil {
			return fmt.Errorf("%w; nothing was sent", err)
		}
		body, err := yaml.Marshal(amc)
		if err != nil {
			return err
		}
		if _, err := c.do(ctx, http.MethodPost, alertmanagerConfigPath, body, http.StatusCreated); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(stdout, "loaded the Alertmanager configuration with %s\n", plural(len(amc.TemplateFiles), "template"))
		return nil
	})

	del := am.Command("delete", "Delete the tenant's Alertmanager configuration.")
	commands[del.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		if _, err := c.do(ctx, http.MethodDelete, alertmanagerConfigPath, nil, http.StatusOK); err != nil {
			return err
		}
		_, _ = fmt.Fprintln(stdout, "deleted the Alertmanager configuration")
		return nil
	})

	verify := am.Command("verify", "Validate a configuration and its templates offline, with Alertmanager's own packages. Exits 1 when invalid.")
	verifyConfig := verify.Arg("config", "Alertmanager configuration file.").Required().String()
	verifyTemplates := verify.Arg("template-files", "Template files.").Strings()
	commands[verify.FullCommand()] = func(stdout, stderr io.Writer) int {
		amc, err := readAlertmanagerFiles(*verifyConfig, *verifyTemplates)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "stratatool: %v\n", err)
			return 1
		}
		_, _ = fmt.Fprintf(stdout, "OK  %s, %s\n", *verifyConfig, plural(len(amc.TemplateFiles), "template"))
		return 0
	}
}
