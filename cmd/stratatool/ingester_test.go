package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

func TestIngesterPrepareShutdown(t *testing.T) {
	type seen struct{ method, path, tenant, user, password string }
	var mu sync.Mutex
	var got []seen
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, password, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Get(tenant.OrgIDHeader), user, password})
		answer := status
		mu.Unlock()
		if answer != http.StatusNoContent {
			http.Error(w, "missing role admin", answer)
			return
		}
		w.WriteHeader(answer)
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name       string
		args       []string
		answer     int
		wantStatus int
		want       seen
		wantOut    string
	}{
		{"prepare, no tenant needed", []string{"--address", srv.URL, "ingester", "prepare-shutdown"}, http.StatusNoContent, 0,
			seen{method: http.MethodPost, path: "/ingester/prepare-shutdown"}, "the ingester will leave the ring when it stops\n"},
		{"undo", []string{"--address", srv.URL, "ingester", "prepare-shutdown", "--undo"}, http.StatusNoContent, 0,
			seen{method: http.MethodDelete, path: "/ingester/prepare-shutdown"}, "the ingester will keep its place in the ring when it stops, as configured\n"},
		{"with an admin credential", []string{"--address", srv.URL, "--user", "ops", "--key", "s3cret", "ingester", "prepare-shutdown"}, http.StatusNoContent, 0,
			seen{method: http.MethodPost, path: "/ingester/prepare-shutdown", user: "ops", password: "s3cret"}, "the ingester will leave the ring when it stops\n"},
		{"refused", []string{"--address", srv.URL, "ingester", "prepare-shutdown"}, http.StatusForbidden, 1,
			seen{method: http.MethodPost, path: "/ingester/prepare-shutdown"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got, status = nil, tt.answer
			mu.Unlock()
			var stdout, stderr bytes.Buffer
			require.Equal(t, tt.wantStatus, run(tt.args, &stdout, &stderr), "stderr: %s", stderr.String())
			require.Equal(t, tt.wantOut, stdout.String())
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []seen{tt.want}, got)
			if tt.wantStatus != 0 {
				require.Contains(t, stderr.String(), "403 Forbidden: missing role admin")
			}
		})
	}
}

func TestIngesterPrepareShutdown_NeedsAnAddress(t *testing.T) {
	t.Setenv("STRATA_ADDRESS", "")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, run([]string{"ingester", "prepare-shutdown"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "no cluster address")
}
