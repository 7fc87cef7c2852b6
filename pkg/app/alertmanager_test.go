package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// fakeReplica answers HandleRequest with a status, an error, or not until the call's context ends.
type fakeReplica struct {
	alertmanagerpb.AlertmanagerClient
	status int32
	err    error
	hang   bool
	got    chan *alertmanagerpb.HTTPRequest
}

func (f *fakeReplica) HandleRequest(ctx context.Context, in *alertmanagerpb.HTTPRequest, _ ...grpc.CallOption) (*alertmanagerpb.HTTPResponse, error) {
	if f.got != nil {
		f.got <- in
	}
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return &alertmanagerpb.HTTPResponse{Status: f.status}, nil
}

type fakeReplicas struct {
	replicas map[string]*fakeReplica
	order    []string
	err      error
}

func (f fakeReplicas) Replicas(string) ([]string, int, error) { return f.order, -1, f.err }
func (f fakeReplicas) Version() uint64                        { return 0 }
func (f fakeReplicas) Client(addr string) (alertmanagerpb.AlertmanagerClient, error) {
	return f.replicas[addr], nil
}

func alertsRequest(t *testing.T, body []byte) *http.Request {
	req, err := http.NewRequest(http.MethodPost, "http://alertmanager-ring/alertmanager/api/v2/alerts", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestRingAlertSender_AnswersOnceAMajorityAccepted(t *testing.T) {
	ctx := tenant.NewContext(context.Background(), "team-a")
	ok := &fakeReplica{status: 200, got: make(chan *alertmanagerpb.HTTPRequest, 1)}
	hanging := &fakeReplica{hang: true}
	sender := ringAlertSender{replicas: fakeReplicas{
		replicas: map[string]*fakeReplica{"a": ok, "b": {status: 200}, "c": hanging},
		order:    []string{"a", "b", "c"},
	}}
	start := time.Now()
	resp, err := sender.send(ctx, alertsRequest(t, []byte(`[{"labels":{"alertname":"X"}}]`)))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Less(t, time.Since(start), replicaAlertsTimeout/2, "a replica that does not answer held the others back")
	call := <-ok.got
	require.Equal(t, "/alertmanager/api/v2/alerts", call.GetUrl())
	require.Equal(t, `[{"labels":{"alertname":"X"}}]`, string(call.GetBody()))
}

func TestRingAlertSender_RefusesWhatItCannotDeliver(t *testing.T) {
	ctx := tenant.NewContext(context.Background(), "team-a")
	// Two of three replicas refuse: 503, so that the notifier sends the alerts again.
	sender := ringAlertSender{replicas: fakeReplicas{
		replicas: map[string]*fakeReplica{"a": {status: 200}, "b": {status: 400}, "c": {err: errors.New("connection refused")}},
		order:    []string{"a", "b", "c"},
	}}
	resp, err := sender.send(ctx, alertsRequest(t, []byte(`[]`)))
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	// The answer comes as soon as a majority is out of reach: the accepting replica may not have answered yet.
	require.Regexp(t, `^[01] of 3 Alertmanagers of the tenant accepted the alerts`, string(body))
	require.Contains(t, string(body), "answered 400")
	require.Contains(t, string(body), "connection refused")

	_, err = sender.send(context.Background(), alertsRequest(t, []byte(`[]`)))
	require.Error(t, err, "no tenant")

	_, err = sender.send(ctx, alertsRequest(t, []byte(strings.Repeat("x", maxAlertsRequestBytes+1))))
	require.ErrorContains(t, err, "over 4194304")

	_, err = ringAlertSender{replicas: fakeReplicas{err: errors.New("empty ring")}}.send(ctx, alertsRequest(t, []byte(`[]`)))
	require.ErrorContains(t, err, "empty ring")
}
