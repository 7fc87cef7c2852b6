package app

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

func haWriteRequest(replica string, ts time.Time) *prompb.WriteRequest {
	return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{
			{Name: "__name__", Value: "ha_up"}, {Name: "__replica__", Value: replica},
			{Name: "cluster", Value: "c1"}, {Name: "instance", Value: "i"},
		},
		Samples: []prompb.Sample{{Value: 1, Timestamp: ts.UnixMilli()}},
	}}}
}

// A single process with the HA tracker on keeps one replica of a cluster, without its label, and lists
// the election on /distributor/ha_tracker.
func TestApp_HATrackerKeepsTheElectedReplica(t *testing.T) {
	r := startApp(t, newTestApp(t, t.TempDir(),
		"-distributor.ha-tracker.enable=true",
		"-distributor.ha-tracker.enable-for-all-users=true",
	))
	now := time.Now()
	code, body := r.push(t, "team-a", haWriteRequest("r1", now))
	require.Equal(t, http.StatusNoContent, code, body)
	code, body = r.push(t, "team-a", haWriteRequest("r2", now.Add(time.Millisecond)))
	require.Equal(t, http.StatusAccepted, code, body)

	require.Equal(t, []string{"i=1"}, r.query(t, "team-a", `ha_up{cluster="c1", __replica__=""}`, now.Add(time.Second)))
	require.Equal(t, []string{}, r.query(t, "team-a", `ha_up{__replica__!=""}`, now.Add(time.Second)))

	status, page, _ := r.get(t, "/distributor/ha_tracker?format=json", nil)
	require.Equal(t, http.StatusOK, status, page)
	var elected []struct{ Tenant, Cluster, Replica string }
	require.NoError(t, json.Unmarshal([]byte(page), &elected))
	require.Equal(t, []struct{ Tenant, Cluster, Replica string }{{"team-a", "c1", "r1"}}, elected)
}

func TestApp_HATrackerPageSaysWhenTheTrackerIsOff(t *testing.T) {
	r := startApp(t, newTestApp(t, t.TempDir()))
	status, body, _ := r.get(t, "/distributor/ha_tracker", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, body, "-distributor.ha-tracker.enable")
}

func TestLoadConfig_RefusesBadHATrackerSettings(t *testing.T) {
	for _, args := range [][]string{
		{"-distributor.ha-tracker.store=consul"},
		{"-distributor.ha-tracker.enable=true", "-distributor.ha-tracker.failover-timeout=10s"},
		{"-distributor.ha-tracker.enable-for-all-users=true", "-distributor.ha-tracker.replica=cluster"},
	} {
		_, _, err := LoadConfig(args, io.Discard)
		require.Error(t, err, "%v", args)
	}
}
