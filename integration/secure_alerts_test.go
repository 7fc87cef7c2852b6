package integration

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

// TestSecureSingleBinary_RulesToNotification: a single binary serving only HTTPS with -auth.type=basic.
// stratatool loads the tenant's Alertmanager configuration and rules over TLS with a credential, and the
// ruler's alert reaches the tenant's webhook through the process' own Alertmanager.
func TestSecureSingleBinary_RulesToNotification(t *testing.T) {
	stratatool := stratatoolBinary(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "strata", "strata")
	creds := secureCredentials(t, dir,
		[4]string{"ops", "ops-secret", "team-a", "write, read, rules"},
		[4]string{"reader", "reader-secret", "team-a", "read"})
	p := newStrataProcess(t, filepath.Join(dir, "data"),
		"-ingester.ring.instance-addr=127.0.0.1", "-ingester.ring.instance-id=strata-test",
		"-server.http-tls-cert-path="+cert, "-server.http-tls-key-path="+key,
		"-auth.type=basic", "-auth.credentials-file="+creds,
		"-ruler.poll-interval=1s", "-ruler.evaluation-interval=1s", "-alertmanager.configs.poll-interval=1s",
		"-ruler.resend-delay=1s", "-alertmanager.receivers-firewall-block-cidr-networks=")
	ops := clientAs(ca.Pool(), "ops", "ops-secret")
	p.scheme, p.client = "https", ops
	p.start()

	hook := newWebhookReceiver(t)
	amConfig := writeFile(t, dir, "alertmanager.yml", `route:
  receiver: hook
  group_wait: 1s
  group_interval: 1s
receivers:
- name: hook
  webhook_configs:
  - url: `+hook.URL+`
`)
	rules := writeFile(t, dir, "rules.yml", `namespace: queues
groups:
- name: queue-health
  rules:
  - alert: QueueTooLong
    expr: queue_length > 10
`)
	tool := func(user, password string, args ...string) (string, error) {
		full := append([]string{"--address=" + p.url(""), "--id=team-a", "--tls-ca-path=" + ca.CertPath,
			"--user=" + user, "--password=" + password}, args...)
		out, err := execOutput(stratatool, full...)
		return out, err
	}
	// The reader's credential may not load rules: 403, and stratatool exits 1 saying so.
	out, err := tool("reader", "reader-secret", "rules", "load", rules)
	require.Error(t, err)
	require.Contains(t, out, "403")
	// Without the CA, stratatool does not trust the server.
	out, err = execOutput(stratatool, "--address="+p.url(""), "--id=team-a", "--user=ops", "--password=ops-secret", "rules", "list")
	require.Error(t, err)
	require.Contains(t, out, "certificate signed by unknown authority")

	out, err = tool("ops", "ops-secret", "alertmanager", "load", amConfig)
	require.NoError(t, err, out)
	out, err = tool("ops", "ops-secret", "rules", "load", rules)
	require.NoError(t, err, out)

	raw := snappyWriteRequest(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "queue_length"}, {Name: "queue", Value: "q1"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 50}},
	}}})
	code, body := call(t, ops, http.MethodPost, p.url("/api/v1/push"), "", strings.NewReader(string(raw)))
	require.Equal(t, http.StatusNoContent, code, body)

	require.Eventually(t, func() bool { return len(hook.messages()) > 0 }, 30*time.Second, 100*time.Millisecond,
		"the alert never reached the webhook; log:\n%s", p.log)
	msg := hook.messages()[0]
	require.Equal(t, "firing", msg.Status)
	require.Equal(t, "QueueTooLong", msg.Alerts[0].Labels["alertname"])
}

// execOutput runs a command and returns its combined output and error.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
