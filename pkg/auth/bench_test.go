package auth

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// BenchmarkMiddleware is the cost authentication adds to each push once the secret is cached: what every
// remote-write request pays with -auth.type=basic.
func BenchmarkMiddleware(b *testing.B) {
	creds := filepath.Join(b.TempDir(), "credentials.yaml")
	hash, err := bcrypt.GenerateFromPassword([]byte("w-secret"), bcrypt.DefaultCost)
	require.NoError(b, err)
	writeCredentials(b, creds, Credential{Name: "writer", SecretHash: string(hash), Tenants: []string{"team-a"}, Roles: []Role{RoleWrite}})
	for _, args := range [][]string{{}, {"-auth.type=basic", "-auth.credentials-file=" + creds}} {
		name := "header"
		if len(args) > 0 {
			name = "basic"
		}
		b.Run(name, func(b *testing.B) {
			var cfg Config
			f := flag.NewFlagSet("bench", flag.ContinueOnError)
			cfg.RegisterFlags(f)
			require.NoError(b, f.Parse(args))
			authn := New(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			require.NoError(b, authn.Start(context.Background()))
			defer func() { _ = authn.Stop(context.Background()) }()
			h := authn.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			req := httptest.NewRequest(http.MethodPost, "/api/v1/push", nil)
			req.SetBasicAuth("writer", "w-secret")
			req.Header.Set("X-Scope-OrgID", "team-a")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req) // the one bcrypt check
			require.Equal(b, http.StatusNoContent, w.Code)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				h.ServeHTTP(w, req)
			}
		})
	}
}
