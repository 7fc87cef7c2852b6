package ruler

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig_DefaultsAndValidate(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.NoError(t, cfg.Validate())
	// The TLS settings carry their flag prefix; they are checked in alertmanager_client_test.go.
	require.False(t, cfg.AlertmanagerClient.TLS.Enabled)
	cfg.AlertmanagerClient = AlertmanagerClientConfig{}
	require.Equal(t, Config{
		PollInterval:              time.Minute,
		EvaluationInterval:        time.Minute,
		ForOutageTolerance:        time.Hour,
		ForGracePeriod:            10 * time.Minute,
		ResendDelay:               time.Minute,
		RingCheckPeriod:           5 * time.Second,
		NotificationQueueCapacity: 10000,
		NotificationTimeout:       10 * time.Second,
	}, cfg)

	for flagValue, want := range map[string]string{
		"-ruler.poll-interval=0":                             "-ruler.poll-interval must be positive",
		"-ruler.evaluation-interval=0":                       "-ruler.evaluation-interval must be positive",
		"-ruler.for-outage-tolerance=-1s":                    "-ruler.for-outage-tolerance must not be negative",
		"-ruler.for-grace-period=-1s":                        "-ruler.for-grace-period must not be negative",
		"-ruler.resend-delay=-1s":                            "-ruler.resend-delay must not be negative",
		"-ruler.ring-check-period=0":                         "-ruler.ring-check-period must be positive",
		"-ruler.notification-timeout=0":                      "-ruler.notification-timeout must be positive",
		"-ruler.alertmanager-url=ftp://x":                    "is not an http(s) URL",
		"-ruler.query-frontend.address=dns:///frontend:9095": "-ruler.query-frontend.address \"dns:///frontend:9095\" is not an http(s) URL",
		"-ruler.alertmanager-url=http://":                    "is not an http(s) URL",
	} {
		var cfg Config
		fs := flag.NewFlagSet("test", flag.PanicOnError)
		cfg.RegisterFlags(fs)
		require.NoError(t, fs.Parse([]string{flagValue}))
		require.ErrorContains(t, cfg.Validate(), want, flagValue)
	}
}
