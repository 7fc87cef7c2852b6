package integration

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// TestTenants_CannotSeeEachOthersData pushes the same metric names under two tenants and checks every
// read endpoint from each side.
func TestTenants_CannotSeeEachOthersData(t *testing.T) {
	p := startStrata(t, t.TempDir())
	now := time.Now()
	for _, tenantID := range []string{"team-a", "team-b"} {
		req := &prompb.WriteRequest{
			Timeseries: []prompb.TimeSeries{
				{
					Labels:  []prompb.Label{{Name: "__name__", Value: "shared_metric"}, {Name: "owner", Value: tenantID}},
					Samples: []prompb.Sample{{Timestamp: now.Add(-time.Minute).UnixMilli(), Value: 1}, {Timestamp: now.UnixMilli(), Value: 2}},
				},
				{
					Labels:  []prompb.Label{{Name: "__name__", Value: "only_" + tenantID[len("team-"):] + "_metric"}, {Name: "secret_" + tenantID[len("team-"):], Value: "x"}},
					Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 3}},
				},
			},
			Metadata: []prompb.MetricMetadata{{
				Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "shared_metric", Help: "help of " + tenantID,
			}},
		}
		code, body := push(t, p.url("/api/v1/push"), tenantID, req)
		require.Equal(t, http.StatusNoContent, code, body)
	}

	api := p.url("/prometheus")
	timeParams := func(v url.Values) url.Values {
		v.Set("start", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10))
		v.Set("end", strconv.FormatInt(now.Add(time.Minute).Unix(), 10))
		return v
	}
	for _, c := range []struct{ tenant, other string }{{"team-a", "team-b"}, {"team-b", "team-a"}} {
		t.Run(c.tenant, func(t *testing.T) {
			own, other := c.tenant[len("team-"):], c.other[len("team-"):]

			var vector []vectorSample
			mustGetAPI(t, api, "/api/v1/query", c.tenant, url.Values{"query": {`{__name__=~".+"}`}, "time": {formatTime(now)}}, &queryResult{Result: &vector})
			require.Len(t, vector, 2)
			for _, s := range vector {
				require.NotEqual(t, c.other, s.Metric["owner"])
				require.NotContains(t, s.Metric, "secret_"+other)
			}

			var matrix []matrixSeries
			params := timeParams(url.Values{"query": {"shared_metric"}, "step": {"15"}})
			mustGetAPI(t, api, "/api/v1/query_range", c.tenant, params, &queryResult{Result: &matrix})
			require.Len(t, matrix, 1)
			require.Equal(t, c.tenant, matrix[0].Metric["owner"])

			var series []map[string]string
			mustGetAPI(t, api, "/api/v1/series", c.tenant, timeParams(url.Values{"match[]": {`{__name__=~".+"}`}}), &series)
			require.Len(t, series, 2)
			for _, s := range series {
				require.NotEqual(t, c.other, s["owner"])
			}

			var names []string
			mustGetAPI(t, api, "/api/v1/labels", c.tenant, timeParams(url.Values{}), &names)
			require.Equal(t, []string{"__name__", "owner", "secret_" + own}, names)

			var values []string
			mustGetAPI(t, api, "/api/v1/label/__name__/values", c.tenant, timeParams(url.Values{}), &values)
			require.Equal(t, []string{"only_" + own + "_metric", "shared_metric"}, values)
			mustGetAPI(t, api, "/api/v1/label/owner/values", c.tenant, timeParams(url.Values{}), &values)
			require.Equal(t, []string{c.tenant}, values)

			var metadata map[string][]map[string]string
			mustGetAPI(t, api, "/api/v1/metadata", c.tenant, url.Values{}, &metadata)
			require.Equal(t, map[string][]map[string]string{
				"shared_metric": {{"type": "gauge", "help": "help of " + c.tenant, "unit": ""}},
			}, metadata)
		})
	}

	t.Run("a tenant without data sees nothing", func(t *testing.T) {
		var vector []vectorSample
		mustGetAPI(t, api, "/api/v1/query", "team-c", url.Values{"query": {`{__name__=~".+"}`}, "time": {formatTime(now)}}, &queryResult{Result: &vector})
		require.Empty(t, vector)
		var names []string
		mustGetAPI(t, api, "/api/v1/labels", "team-c", url.Values{}, &names)
		require.Empty(t, names)
	})

	t.Run("no tenant header is refused", func(t *testing.T) {
		code, resp := getAPI(t, api, "/api/v1/query", "", url.Values{"query": {"shared_metric"}})
		require.Equal(t, http.StatusUnauthorized, code)
		require.Equal(t, "bad_data", resp.ErrorType, "the Prometheus API answers in its JSON envelope")
		require.Contains(t, resp.Error, "X-Scope-OrgID")
		code, body := push(t, p.url("/api/v1/push"), "", &prompb.WriteRequest{})
		require.Equal(t, http.StatusUnauthorized, code)
		require.Contains(t, body, "X-Scope-OrgID")
	})

	t.Run("invalid tenant IDs are refused", func(t *testing.T) {
		for _, id := range []string{"..", "a/b", string(slices.Repeat([]byte("x"), 151))} {
			code, resp := getAPI(t, api, "/api/v1/query", id, url.Values{"query": {"shared_metric"}})
			require.Equal(t, http.StatusBadRequest, code, id)
			require.Equal(t, "bad_data", resp.ErrorType, id)
		}
	})
}

// TestGracefulShutdown_KeepsData stops the process with SIGTERM and checks that it exits cleanly and
// serves the same data after a restart.
func TestGracefulShutdown_KeepsData(t *testing.T) {
	p := startStrata(t, t.TempDir())
	now := time.Now()
	code, body := push(t, p.url("/api/v1/push"), "graceful", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "graceful_metric"}},
		Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 42}},
	}}})
	require.Equal(t, http.StatusNoContent, code, body)
	p.stop()
	require.Contains(t, p.log.String(), "shutting down")
	p.restart()

	var vector []vectorSample
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query", "graceful", url.Values{"query": {"graceful_metric"}, "time": {formatTime(now)}}, &queryResult{Result: &vector})
	require.Len(t, vector, 1)
	require.Equal(t, 42.0, vector[0].Value.float(t))
}
