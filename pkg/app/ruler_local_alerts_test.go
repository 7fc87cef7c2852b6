package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

func TestLocalAlertSender_CallsTheHandlerWithTheTenantAndReturnsItsAnswer(t *testing.T) {
	var gotTenant, gotBody string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTenant, _ = tenant.FromContext(r.Context())
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"bad alerts"}`)
		w.WriteHeader(http.StatusOK) // ignored, as by net/http
	})
	s := localAlertSender{handler: func() http.Handler { return h }}
	req, err := http.NewRequest(http.MethodPost, "http://alertmanager-ring/alertmanager/api/v2/alerts", strings.NewReader("[]"))
	require.NoError(t, err)
	resp, err := s.send(tenant.NewContext(context.Background(), "team-a"), req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "team-a", gotTenant)
	require.Equal(t, "[]", gotBody)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.JSONEq(t, `{"error":"bad alerts"}`, string(body))

	// A handler that writes nothing answered 200, as over HTTP.
	s = localAlertSender{handler: func() http.Handler { return http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}) }}
	resp, err = s.send(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Before the Alertmanager is initialised, sends fail (and the notifier retries them).
	_, err = localAlertSender{handler: func() http.Handler { return nil }}.send(context.Background(), req)
	require.ErrorContains(t, err, "not running")
}
