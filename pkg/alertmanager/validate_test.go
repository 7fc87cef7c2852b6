package alertmanager

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
)

func TestCheckNoLocalSettings(t *testing.T) {
	receiver := func(s string) string {
		return "route:\n  receiver: r\nreceivers:\n  - name: r\n" + s
	}
	for name, tc := range map[string]struct {
		config string
		errHas string // "" means accepted
	}{
		"inline secrets are fine": {config: receiver(`    webhook_configs:
      - url: https://example.com/hook
        http_config:
          basic_auth: {username: u, password: p}
          tls_config: {insecure_skip_verify: false, server_name: example.com}
      - url: https://example.com/hook2
        http_config:
          oauth2: {client_id: id, client_secret: s, token_url: https://example.com/token}
`)},
		"sns with its own keys is fine": {config: receiver("    sns_configs:\n      - topic_arn: arn:aws:sns:us-east-1:1:t\n        sigv4: {region: us-east-1, access_key: AK, secret_key: SK, role_arn: arn:aws:iam::1:role/r}\n")},
		"authorization credentials_file": {
			config: receiver("    webhook_configs:\n      - url: http://x\n        http_config:\n          authorization: {credentials_file: /f}\n"),
			errHas: "http_config.authorization.credentials_file is set",
		},
		"oauth2 client secret file": {
			config: receiver("    webhook_configs:\n      - url: http://x\n        http_config:\n          oauth2: {client_id: i, client_secret_file: /f, token_url: http://t}\n"),
			errHas: "oauth2.client_secret_file is set",
		},
		"oauth2 tls key_file": {
			config: receiver("    webhook_configs:\n      - url: http://x\n        http_config:\n          oauth2: {client_id: i, client_secret: s, token_url: http://t, tls_config: {cert_file: /c, key_file: /k}}\n"),
			errHas: "oauth2.tls_config.cert_file is set, receivers[0].webhook_configs[0].http_config.oauth2.tls_config.key_file is set",
		},
		"secret manager reference": {
			config: receiver("    webhook_configs:\n      - url: http://x\n        http_config:\n          basic_auth: {username: u, password_ref: vault-secret}\n"),
			errHas: "basic_auth.password_ref is set",
		},
		"email tls": {
			config: receiver("    email_configs:\n      - to: a@b.c\n        from: b@c.d\n        smarthost: 'localhost:25'\n        tls_config: {cert: c, key_file: /k}\n"),
			errHas: "email_configs[0].tls_config.key_file is set",
		},
		"slack api url file": {
			config: receiver("    slack_configs:\n      - api_url_file: /f\n        channel: c\n"),
			errHas: "api_url_file is set",
		},
		"sigv4 profile": {
			config: receiver("    sns_configs:\n      - topic_arn: arn:aws:sns:us-east-1:1:t\n        sigv4: {region: us-east-1, access_key: AK, secret_key: SK, profile: default}\n"),
			errHas: "sigv4.profile is set",
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseTenantConfig(alertstore.AlertConfig{AlertmanagerConfig: tc.config}, 0)
			if tc.errHas == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errLocalSettings)
			require.ErrorIs(t, err, errInvalidConfig)
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

func TestCheckNoLocalSettings_NamesAFewOfMany(t *testing.T) {
	var b strings.Builder
	b.WriteString("route:\n  receiver: r\nreceivers:\n  - name: r\n    webhook_configs:\n")
	for range 8 {
		b.WriteString("      - url_file: /f\n")
	}
	_, err := parseTenantConfig(alertstore.AlertConfig{AlertmanagerConfig: b.String()}, 0)
	require.ErrorContains(t, err, "(and 3 more)")
}

func TestCheckTemplateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"a.tmpl":                  true,
		"with space.tmpl":         true,
		"..hidden":                true,
		"":                        false,
		".":                       false,
		"..":                      false,
		"a/b":                     false,
		`a\b`:                     false,
		"nul\x00":                 false,
		"\xff":                    false,
		strings.Repeat("x", 256):  false,
		strings.Repeat("x", 255):  true,
		"../../../../etc/passwd":  false,
		"/etc/passwd":             false,
		"C:\\Windows\\system.ini": false,
	} {
		err := checkTemplateName(name, false)
		if ok {
			require.NoError(t, err, "%q", name)
		} else {
			require.ErrorIs(t, err, errInvalidTemplateName, "%q", name)
		}
	}
	require.NoError(t, checkTemplateName("*.tmpl", true))
	require.ErrorIs(t, checkTemplateName("[", true), errInvalidTemplateName)
}

func FuzzValidateTenantConfig(f *testing.F) {
	f.Add(minimalConfig, "a.tmpl", `{{ define "x" }}{{ end }}`)
	f.Add(webhookConfig("http://x/").AlertmanagerConfig+"templates: ['*']\n", "b", "{{ template \"x\" }}")
	f.Add("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url_file: /f}]}]\n", "", "")
	u, _ := url.Parse("http://localhost/alertmanager")
	logger := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, config, name, content string) {
		cfg := alertstore.AlertConfig{AlertmanagerConfig: config, TemplateFiles: map[string]string{name: content}}
		if err := validateTenantConfig(cfg, 10, u, nil, logger); err != nil {
			return
		}
		// What validates also passes the checks applied when the configuration is loaded.
		_, err := parseTenantConfig(cfg, 10)
		require.NoError(t, err)
	})
}
