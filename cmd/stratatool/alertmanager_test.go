package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// alertmanagerAPI implements the contract of the multi-tenant Alertmanager's configuration API:
// GET answers 200 with the tenant's configuration or 404, POST stores one (201, or 400 with a
// reason), DELETE removes it (200).
type alertmanagerAPI struct {
	mu      sync.Mutex
	configs map[string]alertmanagerUserConfig
	auth    []string // the Authorization header of each request
}

func (a *alertmanagerAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := tenant.FromContext(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	switch r.Method {
	case http.MethodGet:
		cfg, ok := a.configs[id]
		if !ok {
			http.Error(w, "alertmanager storage object not found", http.StatusNotFound)
			return
		}
		out, _ := yaml.Marshal(cfg)
		_, _ = w.Write(out)
	case http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		var cfg alertmanagerUserConfig
		dec := yaml.NewDecoder(bytes.NewReader(body))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			http.Error(w, "error unmarshalling the configuration: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(cfg.TemplateFiles) > 2 {
			http.Error(w, "too many templates in the configuration: 3 (limit: 2)", http.StatusBadRequest)
			return
		}
		if err := verifyAlertmanagerConfig(cfg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.configs[id] = cfg
		w.WriteHeader(http.StatusCreated)
	case http.MethodDelete:
		delete(a.configs, id)
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func newAlertmanagerServer(t *testing.T) (string, *alertmanagerAPI) {
	t.Helper()
	api := &alertmanagerAPI{configs: map[string]alertmanagerUserConfig{}}
	mux := http.NewServeMux()
	mux.Handle(alertmanagerConfigPath, tenant.Middleware(true)(api))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, api
}

const alertmanagerConfig = `route:
  receiver: team
receivers:
  - name: team
    webhook_configs:
      - url: http://example.com/hook
templates:
  - '*.tmpl'
`

const alertmanagerTemplate = `{{ define "team.title" }}[{{ .Status }}] {{ .CommonLabels.alertname }}{{ end }}`

func TestAlertmanager_LoadGetDelete(t *testing.T) {
	url, api := newAlertmanagerServer(t)
	dir := t.TempDir()
	config := writeFile(t, dir, "alertmanager.yml", alertmanagerConfig)
	tmpl := writeFile(t, dir, "templates/team.tmpl", alertmanagerTemplate)
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, append([]string{"--address", url, "--id", "team", "--auth-token", "secret"}, args...)...)
	}

	status, _, stderr := cli("alertmanager", "get")
	require.Equal(t, 1, status)
	require.Equal(t, "stratatool: the tenant has no Alertmanager configuration\n", stderr)

	status, stdout, stderr := cli("alertmanager", "load", config, tmpl)
	require.Equal(t, 0, status, stderr)
	require.Equal(t, "loaded the Alertmanager configuration with 1 template\n", stdout)
	require.Equal(t, alertmanagerUserConfig{
		TemplateFiles:      map[string]string{"team.tmpl": alertmanagerTemplate},
		AlertmanagerConfig: alertmanagerConfig,
	}, api.configs["team"])

	status, stdout, _ = cli("alertmanager", "get")
	require.Equal(t, 0, status)
	require.Equal(t, alertmanagerConfig+"\n--- template team.tmpl\n"+alertmanagerTemplate, stdout)

	status, stdout, _ = cli("alertmanager", "delete")
	require.Equal(t, 0, status)
	require.Equal(t, "deleted the Alertmanager configuration\n", stdout)
	require.Empty(t, api.configs)
	for _, auth := range api.auth {
		require.Equal(t, "Bearer secret", auth)
	}
}

func TestAlertmanager_ServerRejectionShown(t *testing.T) {
	url, _ := newAlertmanagerServer(t)
	dir := t.TempDir()
	args := []string{"--address", url, "--id", "team", "alertmanager", "load", writeFile(t, dir, "am.yml", alertmanagerConfig)}
	for _, name := range []string{"a.tmpl", "b.tmpl", "c.tmpl"} {
		args = append(args, writeFile(t, dir, name, alertmanagerTemplate))
	}
	status, _, stderr := runCLI(t, args...)
	require.Equal(t, 1, status)
	require.Equal(t, "stratatool: POST /api/v1/alerts: the server answered 400 Bad Request: too many templates in the configuration: 3 (limit: 2)\n", stderr)
}

func TestAlertmanager_Verify(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", alertmanagerConfig)
	tmpl := writeFile(t, dir, "team.tmpl", alertmanagerTemplate)
	for name, tc := range map[string]struct {
		args []string
		want string // on stderr; "" when valid
	}{
		"valid":               {args: []string{good, tmpl}},
		"valid, no templates": {args: []string{good}},
		"unknown receiver": {
			args: []string{writeFile(t, dir, "receiver.yml", "route: {receiver: missing}\nreceivers: [{name: team}]\n")},
			want: `invalid Alertmanager configuration: undefined receiver "missing" used in route`,
		},
		"not YAML": {
			args: []string{writeFile(t, dir, "yaml.yml", "route: [\n")},
			want: "invalid Alertmanager configuration: yaml: line",
		},
		"unknown field": {
			args: []string{writeFile(t, dir, "field.yml", alertmanagerConfig+"routes: []\n")},
			want: "field routes not found",
		},
		"bad template": {
			args: []string{good, writeFile(t, dir, "bad.tmpl", `{{ define "x" }}{{ .Status `)},
			want: "invalid template bad.tmpl: template: ",
		},
		"two templates of one name": {
			args: []string{good, tmpl, writeFile(t, dir, "other/team.tmpl", alertmanagerTemplate)},
			want: "another template file is named team.tmpl too",
		},
		"missing file": {
			args: []string{dir + "/missing.yml"},
			want: "no such file or directory",
		},
	} {
		t.Run(name, func(t *testing.T) {
			status, stdout, stderr := runCLI(t, append([]string{"alertmanager", "verify"}, tc.args...)...)
			if tc.want == "" {
				require.Equal(t, 0, status, stderr)
				require.Contains(t, stdout, "OK  "+good)
				return
			}
			require.Equal(t, 1, status)
			require.Contains(t, stderr, tc.want)
		})
	}
}

func TestAlertmanager_LoadVerifiesFirst(t *testing.T) {
	url, api := newAlertmanagerServer(t)
	dir := t.TempDir()
	bad := writeFile(t, dir, "am.yml", "route: {receiver: missing}\nreceivers: [{name: team}]\n")
	status, _, stderr := runCLI(t, "--address", url, "--id", "team", "alertmanager", "load", bad)
	require.Equal(t, 1, status)
	require.Contains(t, stderr, `undefined receiver "missing" used in route; nothing was sent`)
	require.Empty(t, api.auth)
}
