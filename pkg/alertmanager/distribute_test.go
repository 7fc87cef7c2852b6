package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

var forwarded = http.Header{ForwardedHeader: {"true"}}

// localAlerts returns the names of the tenant's alerts that n itself holds.
func (n *node) localAlerts(tenantID string) []string {
	n.t.Helper()
	code, body := n.doWithHeader(tenantID, http.MethodGet, PathPrefix+"/api/v2/alerts", "", forwarded)
	require.Equal(n.t, http.StatusOK, code, body)
	var alerts []apiAlert
	require.NoError(n.t, json.Unmarshal([]byte(body), &alerts))
	names := make([]string, 0, len(alerts))
	for _, a := range alerts {
		names = append(names, a.Labels["alertname"])
	}
	return names
}

func (n *node) distributed(op, result string) float64 {
	return testutil.ToFloat64(n.am.metrics.distributed.WithLabelValues(op, result))
}

func (n *node) replicaRequests(result string) float64 {
	return testutil.ToFloat64(n.am.metrics.replicaRequests.WithLabelValues(result))
}

func TestDistributor_AlertsGoToEveryReplica(t *testing.T) {
	c := newCluster(t, 3, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))

	c.nodes[2].postAlert("t1", map[string]string{"alertname": "Everywhere"})
	for i, n := range c.nodes {
		eventually(t, func() bool { return len(n.localAlerts("t1")) == 1 }, fmt.Sprintf("node %d holds the alert", i))
	}
	require.Equal(t, 1.0, c.nodes[2].distributed("alerts", "success"))

	// Bad alerts are refused by every replica: the client's error, not a failed quorum.
	code, body := c.nodes[0].do("t1", http.MethodPost, PathPrefix+"/api/v2/alerts", `[{"labels":{}}]`)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, 1.0, c.nodes[0].distributed("alerts", "client_error"))
}

func TestDistributor_AlertsNeedAMajorityOfLiveReplicas(t *testing.T) {
	c := newCluster(t, 3, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	c.nodes[0].kill()
	c.nodes[1].kill()

	// The ring still lists the dead replicas: one of three accepted, two are needed.
	alert := `[{"labels":{"alertname":"Lonely"}}]`
	code, body := c.nodes[2].do("t1", http.MethodPost, PathPrefix+"/api/v2/alerts", alert)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "1 of the 3 live replicas of the tenant's Alertmanager accepted the alerts, 2 must")
	require.Equal(t, []string{"Lonely"}, c.nodes[2].localAlerts("t1"), "the live replica has it all the same")

	// Once the ring has left them out, the one live replica is a majority.
	c.ring.markDead(c.nodes[0].addr)
	c.ring.markDead(c.nodes[1].addr)
	code, body = c.nodes[2].do("t1", http.MethodPost, PathPrefix+"/api/v2/alerts", alert)
	require.Equal(t, http.StatusOK, code, body)

	// None alive at all.
	c.ring.markDead(c.nodes[2].addr)
	code, body = c.nodes[2].do("t1", http.MethodPost, PathPrefix+"/api/v2/alerts", alert)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "no replica of the tenant's Alertmanager is alive")
	code, _ = c.nodes[2].do("t1", http.MethodGet, PathPrefix+"/api/v2/silences", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
}

func TestDistributor_ReadsAndWritesGoToOneReplica(t *testing.T) {
	// The fourth instance is not a replica: it sends everything on.
	c := newCluster(t, 4, clusterConfig(t))
	c.ring.set(c.nodes[0].addr, c.nodes[1].addr, c.nodes[2].addr)
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	outside := c.nodes[3]
	eventually(t, func() bool { return outside.am.instance("t1") == nil }, "the tenant stops outside its replicas")

	id := outside.createSilence("t1", "alertname", "A")
	require.Equal(t, 1.0, outside.distributed("write", "success"))
	require.Equal(t, 1.0, outside.replicaRequests("success"), "one replica took the silence")
	for _, n := range c.nodes[:3] {
		eventually(t, func() bool { return len(n.silenceIDs("t1")) == 1 }, "replicated by the replica that took it")
	}
	sils := outside.silences("t1")
	require.Len(t, sils, 1)
	require.Equal(t, id, sils[0].ID)

	// A replica that fails is skipped: reads go to the next.
	c.nodes[0].kill()
	sils = outside.silences("t1")
	require.Len(t, sils, 1)
	require.Equal(t, 1.0, outside.replicaRequests("failure"))

	// A replica serves its own reads and writes; the page too.
	before := c.nodes[1].replicaRequests("success")
	code, body := c.nodes[1].do("t1", http.MethodGet, PathPrefix+"/", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "Alertmanager of tenant t1")
	require.Equal(t, before+1, c.nodes[1].replicaRequests("success"))
	require.Zero(t, c.nodes[1].replicaRequests("failure"))
}

func TestDistributor_ForwardedRequestsAreServedWhereTheyArrive(t *testing.T) {
	c := newCluster(t, 3, clusterConfig(t))
	c.ring.set(c.nodes[0].addr, c.nodes[1].addr)
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	outside := c.nodes[2]
	eventually(t, func() bool { return outside.am.instance("t1") == nil }, "the tenant stops outside its replicas")

	// Marked as forwarded, a request is not sent on, even by an instance that is no replica.
	code, body := outside.doWithHeader("t1", http.MethodGet, PathPrefix+"/api/v2/silences", "", forwarded)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, errNotReplica.Error())
	client, err := c.ring.view("").Client(outside.addr)
	require.NoError(t, err)
	resp, err := client.HandleRequest(tenant.NewContext(context.Background(), "t1"),
		&alertmanagerpb.HTTPRequest{Method: http.MethodGet, Url: PathPrefix + "/api/v2/silences"})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusServiceUnavailable), resp.GetStatus())
	for _, n := range c.nodes {
		require.Zero(t, n.replicaRequests("success")+n.replicaRequests("failure"), "nothing was forwarded")
	}

	// A replica serves it; unmarked, the outsider sends it there.
	replicaClient, err := c.ring.view("").Client(c.nodes[1].addr)
	require.NoError(t, err)
	resp, err = replicaClient.HandleRequest(tenant.NewContext(context.Background(), "t1"),
		&alertmanagerpb.HTTPRequest{Method: http.MethodGet, Url: PathPrefix + "/api/v2/silences"})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusOK), resp.GetStatus(), string(resp.GetBody()))
	require.Empty(t, outside.silences("t1"))
	require.Equal(t, 1.0, outside.replicaRequests("success"))
}

func TestDistributor_RefusesOversizedBodies(t *testing.T) {
	c := newCluster(t, 2, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	big := `[{"labels":{"alertname":"` + strings.Repeat("x", maxAPIBodyBytes) + `"}}]`

	code, body := c.nodes[0].do("t1", http.MethodPost, PathPrefix+"/api/v2/alerts", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, body)
	require.Zero(t, c.nodes[0].replicaRequests("success")+c.nodes[0].replicaRequests("failure"), "refused before it is sent on")

	// A forwarded call, whoever sent it, is bounded the same.
	resp, err := c.nodes[1].am.HandleRequest(tenant.NewContext(context.Background(), "t1"),
		&alertmanagerpb.HTTPRequest{Method: http.MethodPost, Url: PathPrefix + "/api/v2/alerts", Body: []byte(big)})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusRequestEntityTooLarge), resp.GetStatus())
	require.Empty(t, c.nodes[1].localAlerts("t1"))
}

func TestHandleRequest_RefusesWhatIsNotTheAPI(t *testing.T) {
	c := newCluster(t, 1, clusterConfig(t))
	ctx := tenant.NewContext(context.Background(), "t1")
	for _, url := range []string{ConfigPath, "/metrics", "http://elsewhere" + PathPrefix + "/api/v2/status", "%zz"} {
		_, err := c.nodes[0].am.HandleRequest(ctx, &alertmanagerpb.HTTPRequest{Method: http.MethodGet, Url: url})
		require.Equal(t, codes.InvalidArgument, status.Code(err), url)
	}
	_, err := c.nodes[0].am.HandleRequest(context.Background(), &alertmanagerpb.HTTPRequest{Method: http.MethodGet, Url: PathPrefix + "/api/v2/status"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}
