package distributor

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func withInstanceLimits(l InstanceLimits) envOption {
	return func(s *envSettings) { s.cfg.InstanceLimits = l }
}

func TestInstanceLimits_IngestionRateAnswers503ForEveryTenant(t *testing.T) {
	env := newTestEnv(t, withInstanceLimits(InstanceLimits{MaxIngestionRate: 10}))
	require.Equal(t, http.StatusNoContent, env.push(t, "a", samplesRequest(10)).Code)
	resp := env.push(t, "b", samplesRequest(5))
	require.Equal(t, http.StatusServiceUnavailable, resp.Code, resp.Body.String())
	require.Contains(t, resp.Body.String(), "err-strata-distributor-max-ingestion-rate")
}

func TestInstanceLimits_InflightRequestsAndBytes(t *testing.T) {
	il := newInstanceLimiter(InstanceLimits{MaxInflightPushRequests: 2, MaxInflightPushRequestsBytes: 100})
	require.NoError(t, il.admit())
	require.NoError(t, il.admit())
	err := il.admit()
	require.Equal(t, http.StatusServiceUnavailable, statusOf(err))
	require.ErrorContains(t, err, "err-strata-distributor-max-inflight-push-requests")
	il.release()
	require.NoError(t, il.admit(), "a finished request frees its place")

	require.NoError(t, il.holdBytes(150), "one request over the limit passes alone, or it could never be served")
	require.ErrorContains(t, il.holdBytes(1), "err-strata-distributor-max-inflight-push-requests-bytes")
	il.releaseBytes(150)
	require.NoError(t, il.holdBytes(60))
	require.Equal(t, http.StatusServiceUnavailable, statusOf(il.holdBytes(41)))
	require.NoError(t, il.holdBytes(40))
	il.releaseBytes(60)
	il.releaseBytes(40)
	il.release()
	il.release()
	require.Zero(t, il.inflight.Load())
	require.Zero(t, il.inflightBytes.Load())
}

// A client that announces a huge Content-Length and sends nothing holds no byte budget: only what was
// read counts, so such connections cannot lock other clients out.
func TestInstanceLimits_AnnouncedLengthHoldsNoBudget(t *testing.T) {
	env := newTestEnv(t, withInstanceLimits(InstanceLimits{MaxInflightPushRequestsBytes: 1000}))
	req := newPushRequest(t, "a", encodeRequest(t, samplesRequest(1)))
	req.ContentLength = 1 << 30 // a lie; the body is small
	resp := env.do(req)
	require.NotEqual(t, http.StatusServiceUnavailable, resp.Code)
	require.Zero(t, env.d.instance.inflightBytes.Load())
	require.Equal(t, http.StatusNoContent, env.push(t, "b", samplesRequest(1)).Code)
}

// A flood of refused pushes is a flood of 5xx: the log gets at most one line per second of them.
func TestFailedPushes_LoggedAtMostOncePerSecond(t *testing.T) {
	env := newTestEnv(t, withInstanceLimits(InstanceLimits{MaxIngestionRate: 1}))
	var logs bytes.Buffer
	env.d.logger = slog.New(slog.NewTextHandler(&logs, nil))
	for range 50 {
		require.Equal(t, http.StatusServiceUnavailable, env.push(t, "a", samplesRequest(5)).Code)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "push failed"), logs.String())
}
