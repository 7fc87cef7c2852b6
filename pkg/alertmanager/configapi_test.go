package alertmanager

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/validation"
)

const minimalConfig = `route:
  receiver: default
receivers:
  - name: default
`

func TestConfigAPI_RoundTrip(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))

	code, body := h.do("t1", http.MethodGet, ConfigPath, "")
	require.Equal(t, http.StatusNotFound, code, body)

	cfg := alertstore.AlertConfig{
		TemplateFiles:      map[string]string{"my.tmpl": `{{ define "my.title" }}[{{ .Status }}]{{ end }}`},
		AlertmanagerConfig: minimalConfig + "templates: ['*.tmpl']\n",
	}
	in, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	code, body = h.do("t1", http.MethodPost, ConfigPath, string(in))
	require.Equal(t, http.StatusCreated, code, body)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, ConfigPath, nil)
	req.Header.Set("X-Scope-OrgID", "t1")
	h.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	require.True(t, strings.HasPrefix(rec.Body.String(), "template_files:"), "Mimir's field order:\n%s", rec.Body.String())
	var got alertstore.AlertConfig
	require.NoError(t, yaml.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, cfg, got)

	// Another tenant sees none of it.
	code, _ = h.do("t2", http.MethodGet, ConfigPath, "")
	require.Equal(t, http.StatusNotFound, code)

	code, body = h.do("t1", http.MethodDelete, ConfigPath, "")
	require.Equal(t, http.StatusOK, code, body)
	code, _ = h.do("t1", http.MethodGet, ConfigPath, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = h.do("t1", http.MethodDelete, ConfigPath, "")
	require.Equal(t, http.StatusOK, code, "deleting a missing configuration succeeds, as in Mimir")
}

func TestConfigAPI_MethodsAndTenant(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPut, ConfigPath, nil)
	req.Header.Set("X-Scope-OrgID", "t1")
	h.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	require.Equal(t, "GET, HEAD, POST, DELETE", rec.Header().Get("Allow"))

	// Without the middleware's tenant, the handler itself answers 401.
	for _, path := range []string{ConfigPath, PathPrefix + "/api/v2/alerts", PathPrefix + "/"} {
		rec = httptest.NewRecorder()
		h.am.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusUnauthorized, rec.Code, path)
	}
	code, _ := h.do("", http.MethodGet, ConfigPath, "")
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestConfigAPI_RejectsInvalidConfigs(t *testing.T) {
	overrides, limits := newTenantOverrides()
	overrides.set("t1", func(l *validation.Limits) { l.AlertmanagerMaxTemplatesCount = 3 })
	h := newLimitedHarness(t, objstore.NewInMemBucket(), testConfig(t), limits)

	withReceiver := func(receiver string) string {
		return "route:\n  receiver: r\nreceivers:\n  - name: r\n" + receiver
	}
	body := func(c alertstore.AlertConfig) string {
		out, err := yaml.Marshal(c)
		require.NoError(t, err)
		return string(out)
	}
	am := func(s string) string { return body(alertstore.AlertConfig{AlertmanagerConfig: s}) }

	for name, tc := range map[string]struct {
		body    string
		errHas  string
		errCode int
	}{
		"empty body":           {body: "", errHas: "the body is empty"},
		"not yaml":             {body: "{{{", errHas: "decode the body"},
		"unknown field":        {body: "alertmanager_confg: x\n", errHas: "field alertmanager_confg not found"},
		"empty config":         {body: body(alertstore.AlertConfig{TemplateFiles: map[string]string{"a": "b"}}), errHas: "alertmanager_config is empty"},
		"invalid alertmanager": {body: am("route: [not a route]\n"), errHas: "alertmanager_config"},
		"undefined receiver":   {body: am("route:\n  receiver: nope\n"), errHas: `undefined receiver "nope"`},
		"password_file": {
			body:   am(withReceiver("    webhook_configs:\n      - url: http://x\n        http_config:\n          basic_auth: {username: u, password_file: /etc/shadow}\n")),
			errHas: "receivers[0].webhook_configs[0].http_config.basic_auth.password_file is set",
		},
		"tls ca_file": {
			body:   am(withReceiver("    webhook_configs:\n      - url: http://x\n        http_config:\n          tls_config: {ca_file: /etc/ssl/ca.pem}\n")),
			errHas: "tls_config.ca_file is set",
		},
		"webhook url_file": {
			body:   am(withReceiver("    webhook_configs:\n      - url_file: /etc/hostname\n")),
			errHas: "webhook_configs[0].url_file is set",
		},
		"header from files": {
			body:   am(withReceiver("    webhook_configs:\n      - url: http://x\n        http_config:\n          http_headers:\n            X-Secret: {files: [/etc/passwd]}\n")),
			errHas: "files is set",
		},
		"global smtp password file": {
			body:   am("global:\n  smtp_smarthost: 'localhost:25'\n  smtp_from: a@b.c\n  smtp_auth_password_file: /etc/x\n" + withReceiver("    email_configs:\n      - to: x@y.z\n")),
			errHas: "global.smtp_auth_password_file is set",
		},
		"telegram bot_token_file": {
			body:   am(withReceiver("    telegram_configs:\n      - bot_token_file: /etc/x\n        chat_id: 1\n")),
			errHas: "bot_token_file is set",
		},
		"sns with the process' credentials": {
			body:   am(withReceiver("    sns_configs:\n      - topic_arn: arn:aws:sns:us-east-1:1:t\n        sigv4: {region: us-east-1}\n")),
			errHas: "Strata's own AWS credentials",
		},
		"tracing":        {body: am(minimalConfig + "tracing:\n  endpoint: localhost:4317\n"), errHas: "tracing cannot be set"},
		"event recorder": {body: am(minimalConfig + "event_recorder:\n  file_outputs: [{path: /tmp/x}]\n"), errHas: "event_recorder cannot be set"},
		"template name with a separator": {
			body:   body(alertstore.AlertConfig{AlertmanagerConfig: minimalConfig, TemplateFiles: map[string]string{"../../etc/cron.d/x": "y"}}),
			errHas: "must be a plain file name",
		},
		"template name dot-dot": {
			body:   body(alertstore.AlertConfig{AlertmanagerConfig: minimalConfig, TemplateFiles: map[string]string{"..": "y"}}),
			errHas: "invalid template file name",
		},
		"templates pattern outside": {
			body:   am(minimalConfig + "templates: ['/etc/*']\n"),
			errHas: "must be a plain file name",
		},
		"templates bad glob": {
			body:   am(minimalConfig + "templates: ['[']\n"),
			errHas: "syntax error in pattern",
		},
		"template does not parse": {
			body:   body(alertstore.AlertConfig{AlertmanagerConfig: minimalConfig + "templates: ['a.tmpl']\n", TemplateFiles: map[string]string{"a.tmpl": "{{ define }}"}}),
			errHas: "parse templates",
		},
		"too many templates": {
			body:   body(alertstore.AlertConfig{AlertmanagerConfig: minimalConfig, TemplateFiles: map[string]string{"a": "", "b": "", "c": "", "d": ""}}),
			errHas: "4 template files, more than the limit of 3. To adjust the related per-tenant limit, configure -alertmanager.max-templates-count, or alertmanager_max_templates_count in the tenant's runtime overrides",
		},
		"oversized": {
			body:    "alertmanager_config: |\n" + strings.Repeat("  # padding padding padding padding\n", 40000),
			errHas:  "larger than 1048576 bytes, the limit. To adjust the related per-tenant limit, configure -alertmanager.max-config-size-bytes",
			errCode: http.StatusRequestEntityTooLarge,
		},
	} {
		t.Run(name, func(t *testing.T) {
			code, resp := h.do("t1", http.MethodPost, ConfigPath, tc.body)
			want := tc.errCode
			if want == 0 {
				want = http.StatusBadRequest
			}
			require.Equal(t, want, code, resp)
			require.Contains(t, resp, tc.errHas)
		})
	}
	code, _ := h.do("t1", http.MethodGet, ConfigPath, "")
	require.Equal(t, http.StatusNotFound, code, "nothing invalid was stored")
}

func TestConfigAPI_SizeAndTemplatesLimitsArePerTenant(t *testing.T) {
	overrides, limits := newTenantOverrides()
	overrides.set("small", func(l *validation.Limits) {
		l.AlertmanagerMaxConfigSizeBytes = 300
		l.AlertmanagerMaxTemplatesCount = 1
	})
	h := newLimitedHarness(t, objstore.NewInMemBucket(), testConfig(t), limits)
	post := func(tenantID string, c alertstore.AlertConfig) (int, string) {
		out, err := yaml.Marshal(c)
		require.NoError(t, err)
		return h.do(tenantID, http.MethodPost, ConfigPath, string(out))
	}
	large := alertstore.AlertConfig{AlertmanagerConfig: minimalConfig + strings.Repeat("# padding\n", 50)}
	twoTemplates := alertstore.AlertConfig{AlertmanagerConfig: minimalConfig, TemplateFiles: map[string]string{"a": "", "b": ""}}

	code, resp := post("small", large)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, resp)
	require.Contains(t, resp, "larger than 300 bytes")
	code, resp = post("small", twoTemplates)
	require.Equal(t, http.StatusBadRequest, code, resp)
	require.Contains(t, resp, "2 template files, more than the limit of 1")
	for _, c := range []alertstore.AlertConfig{large, twoTemplates} {
		code, resp = post("other", c)
		require.Equal(t, http.StatusCreated, code, "a tenant without overrides has the defaults: %s", resp)
	}

	// A change of the overrides applies to the next upload, without a restart.
	overrides.set("small", func(l *validation.Limits) { l.AlertmanagerMaxTemplatesCount = 2 })
	code, resp = post("small", twoTemplates)
	require.Equal(t, http.StatusCreated, code, resp)
	require.NoError(t, h.am.SyncConfigs(context.Background()))
	require.NotNil(t, h.am.instance("small"), "the sync applies it with the same limit")
}

func TestConfigAPI_AliasBombsAreCheap(t *testing.T) {
	h := newHarness(t, objstore.NewInMemBucket(), testConfig(t))
	for name, body := range map[string]string{
		"envelope":      "template_files:\n" + aliasBomb("  ") + "  b: *a9\n",
		"configuration": "alertmanager_config: |\n  templates:\n" + aliasBomb("    - ") + "    - *a9\n" + indent(minimalConfig, "  "),
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			code, resp := h.do("t1", http.MethodPost, ConfigPath, body)
			require.Equal(t, http.StatusBadRequest, code, resp)
			require.Less(t, time.Since(start), 2*time.Second, "the aliases were expanded")
		})
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
}

// aliasBomb is a "billion laughs" list of entries, each line starting with prefix: a few hundred bytes
// that expand to 10^10 nodes. Entry i is named a<i> and anchored as &a<i>.
func aliasBomb(prefix string) string {
	var b strings.Builder
	for i := range 10 {
		name := "a" + string(rune('0'+i))
		if strings.HasSuffix(prefix, "- ") {
			b.WriteString(prefix + "&" + name + " [")
		} else {
			b.WriteString(prefix + name + ": &" + name + " [")
		}
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			if i == 0 {
				b.WriteString("x")
			} else {
				b.WriteString("*a" + string(rune('0'+i-1)))
			}
		}
		b.WriteString("]\n")
	}
	return b.String()
}
