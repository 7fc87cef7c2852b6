package app

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/util/flagext"
)

func writeConfigFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "strata.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestLoadConfig_FileKeysMirrorFlags(t *testing.T) {
	file := writeConfigFile(t, `
target: ingester,querier
distributor:
  replication_factor: 2
server:
  http_listen_port: 1234
  graceful_shutdown_timeout: 5s
ingester:
  ring:
    num_tokens: 64
    instance_id: ingester-7
querier:
  max_concurrent: 3
auth:
  multitenancy_enabled: false
`)
	cfg, _, err := LoadConfig([]string{"-config.file", file}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "ingester,querier", cfg.Target)
	require.Equal(t, 2, cfg.Distributor.ReplicationFactor)
	require.Equal(t, 2, cfg.Ring.ReplicationFactor, "the ring follows the distributor's replication factor")
	require.Equal(t, 1234, cfg.Server.HTTPListenPort)
	require.Equal(t, 5*time.Second, cfg.Server.GracefulShutdownTimeout)
	require.Equal(t, 64, cfg.Lifecycler.NumTokens)
	require.Equal(t, "ingester-7", cfg.Lifecycler.ID)
	require.Equal(t, 3, cfg.Querier.MaxConcurrent)
	require.False(t, cfg.MultitenancyEnabled)
	// Keys the file does not name keep their defaults.
	require.Equal(t, 9095, cfg.Server.GRPCListenPort)
}

func TestLoadConfig_CommandLineOverridesFile(t *testing.T) {
	file := writeConfigFile(t, `
distributor:
  replication_factor: 2
server:
  http_listen_port: 1234
  grpc_listen_port: 4321
`)
	for _, args := range [][]string{
		{"-config.file", file, "-server.http-listen-port", "5678"},
		{"-server.http-listen-port=5678", "-config.file=" + file},
		{"--config.file", file, "--server.http-listen-port", "5678"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cfg, _, err := LoadConfig(args, io.Discard)
			require.NoError(t, err)
			require.Equal(t, 5678, cfg.Server.HTTPListenPort, "the command line wins")
			require.Equal(t, 4321, cfg.Server.GRPCListenPort, "the file still applies to other keys")
			require.Equal(t, 2, cfg.Distributor.ReplicationFactor)
		})
	}
}

func TestLoadConfig_ExpandEnv(t *testing.T) {
	t.Setenv("STRATA_TEST_PORT", "2345")
	t.Setenv("STRATA_TEST_EMPTY", "")
	file := writeConfigFile(t, `
server:
  http_listen_port: ${STRATA_TEST_PORT}
  grpc_listen_port: ${STRATA_TEST_UNSET_PORT:3456}
ingester:
  ring:
    instance_availability_zone: "${STRATA_TEST_EMPTY:fallback}"
`)

	cfg, _, err := LoadConfig([]string{"-config.file", file, "-config.expand-env"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 2345, cfg.Server.HTTPListenPort)
	require.Equal(t, 3456, cfg.Server.GRPCListenPort, "an unset variable takes its default")
	require.Equal(t, "", cfg.Lifecycler.Zone, "a variable set to the empty string is used as is")

	_, _, err = LoadConfig([]string{"-config.file", file}, io.Discard)
	require.ErrorContains(t, err, "${STRATA_TEST_PORT}", "without -config.expand-env the text is taken literally")
}

func TestLoadConfig_FileErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		errHas  []string
	}{
		{
			name:    "unknown key",
			content: "server:\n  http_listen_port: 1\n  htp_listen_port: 2\n",
			errHas:  []string{"strata.yaml:3:", `unknown configuration key "server.htp_listen_port"`},
		},
		{
			name:    "unknown section",
			content: "distributer:\n  replication_factor: 2\n",
			errHas:  []string{"strata.yaml:2:", `"distributer.replication_factor"`},
		},
		{
			name:    "wrong type",
			content: "server:\n  http_listen_port: eighty\n",
			errHas:  []string{"strata.yaml:2:", "server.http_listen_port", `"eighty"`},
		},
		{
			name:    "wrong duration",
			content: "querier:\n  timeout: 10\n",
			errHas:  []string{"querier.timeout"},
		},
		{
			name:    "mapping where a value belongs",
			content: "server:\n  http_listen_port:\n    value: 1\n",
			errHas:  []string{"server.http_listen_port"},
		},
		{
			name:    "value where a mapping belongs",
			content: "server: 8080\n",
			errHas:  []string{`"server"`},
		},
		{
			name:    "config.file inside the file",
			content: "config:\n  file: other.yaml\n",
			errHas:  []string{`unknown configuration key "config.file"`},
		},
		{
			name:    "not YAML",
			content: "server: [\n",
			errHas:  []string{"strata.yaml"},
		},
		{
			name:    "invalid value after loading",
			content: "querier:\n  max_concurrent: 0\n",
			errHas:  []string{"-querier.max-concurrent"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeConfigFile(t, tc.content)
			_, _, err := LoadConfig([]string{"-config.file", file}, io.Discard)
			require.Error(t, err)
			for _, s := range tc.errHas {
				require.ErrorContains(t, err, s)
			}
		})
	}
}

func TestLoadConfig_EmptyFileAndSectionsKeepDefaults(t *testing.T) {
	for _, content := range []string{"", "# nothing here\n", "server:\ningester:\n  ring:\n"} {
		t.Run(content, func(t *testing.T) {
			cfg, _, err := LoadConfig([]string{"-config.file", writeConfigFile(t, content)}, io.Discard)
			require.NoError(t, err)
			require.Equal(t, 8080, cfg.Server.HTTPListenPort)
			require.Equal(t, 128, cfg.Lifecycler.NumTokens)
		})
	}
}

func TestLoadConfig_CommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		errHas string
	}{
		{name: "missing file", args: []string{"-config.file", "/nonexistent/strata.yaml"}, errHas: "read config file"},
		{name: "unknown flag", args: []string{"-no.such-flag=1"}, errHas: "no.such-flag"},
		{name: "stray argument", args: []string{"-target=all", "extra"}, errHas: "unexpected arguments: extra"},
		{name: "unknown target", args: []string{"-target=ingester,compactorr"}, errHas: `unknown target "compactorr"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := LoadConfig(tc.args, io.Discard)
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

func TestEffectiveConfig_RoundTripsThroughConfigFile(t *testing.T) {
	cfg, flags, err := LoadConfig([]string{
		"-target=ingester,querier",
		"-server.http-listen-port=1234",
		"-server.http-listen-address=127.0.0.1",
		"-distributor.replication-factor=2",
		"-ingester.ring.num-tokens=64",
		"-ingester.ring.instance-id=true", // a string that YAML would read as a bool unless quoted
		"-querier.timeout=90s",
		"-auth.multitenancy-enabled=false",
	}, io.Discard)
	require.NoError(t, err)
	out, err := effectiveConfig(flags)
	require.NoError(t, err)

	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(out, &doc), "/config must be YAML")
	require.NotContains(t, doc, "config", "-config.file and -config.expand-env say where the config comes from, not what it is")

	again, againFlags, err := LoadConfig([]string{"-config.file", writeConfigFile(t, string(out))}, io.Discard)
	require.NoError(t, err)
	again.ConfigFile = ""
	require.Equal(t, cfg, again)
	outAgain, err := effectiveConfig(againFlags)
	require.NoError(t, err)
	require.Equal(t, string(out), string(outAgain))
}

func TestEffectiveConfig_MasksSecrets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		want  string
	}{
		{name: "set", value: "hunter2", want: "********"},
		{name: "unset", value: "", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := flag.NewFlagSet("test", flag.ContinueOnError)
			var password flagext.Secret
			f.Var(&password, "store.s3.secret-access-key", "Secret key.")
			f.String("store.s3.access-key-id", "", "Key ID.")
			require.NoError(t, f.Parse([]string{"-store.s3.secret-access-key=" + tc.value, "-store.s3.access-key-id=AKIA"}))

			out, err := effectiveConfig(f)
			require.NoError(t, err)
			if tc.value != "" {
				require.NotContains(t, string(out), tc.value)
			}
			var doc struct {
				Store struct {
					S3 struct {
						SecretAccessKey string `yaml:"secret_access_key"`
						AccessKeyID     string `yaml:"access_key_id"`
					} `yaml:"s3"`
				} `yaml:"store"`
			}
			require.NoError(t, yaml.Unmarshal(out, &doc))
			require.Equal(t, tc.want, doc.Store.S3.SecretAccessKey)
			require.Equal(t, "AKIA", doc.Store.S3.AccessKeyID)
		})
	}
}

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   []string
		errHas string
	}{
		{in: "all", want: []string{"all"}},
		{in: "ingester, querier", want: []string{"ingester", "querier"}},
		{in: "distributor", want: []string{"distributor"}},
		{in: "compactor", want: []string{"compactor"}},
		{in: "ruler", want: []string{"ruler"}},
		{in: "rulers", errHas: `unknown target "rulers" in -target: choose from alertmanager, all, compactor, distributor, ingester, querier, query-frontend, ruler, store-gateway`},
		{in: "server", errHas: `unknown target "server"`}, // internal modules are not targets
		{in: "", errHas: `unknown target ""`},
		{in: "ingester,", errHas: `unknown target ""`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTargets(tc.in)
			if tc.errHas != "" {
				require.ErrorIs(t, err, errUnknownTarget)
				require.ErrorContains(t, err, tc.errHas)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestStartOrder_DependenciesFirstAndEachOnce(t *testing.T) {
	for _, targets := range [][]string{
		{TargetAll},
		{TargetIngester},
		{TargetDistributor},
		{TargetQuerier},
		{TargetQuerier, TargetIngester, TargetDistributor},
		{TargetAll, TargetIngester},
		{TargetRuler},
		{TargetAlertmanager},
	} {
		t.Run(strings.Join(targets, ","), func(t *testing.T) {
			order := startOrder(targets)
			seen := map[string]bool{}
			for _, name := range order {
				require.False(t, seen[name], "%s appears twice in %v", name, order)
				for _, dep := range modules[name].deps {
					require.True(t, seen[dep], "%s starts before its dependency %s in %v", name, dep, order)
				}
				seen[name] = true
			}
			for _, target := range targets {
				require.True(t, seen[target])
			}
		})
	}

	order := startOrder([]string{TargetAll})
	before := func(a, b string) {
		t.Helper()
		require.Less(t, slices.Index(order, a), slices.Index(order, b), "%s must start before %s: %v", a, b, order)
	}
	before(moduleServer, TargetIngester)
	before(moduleRing, TargetDistributor)
	before(moduleRingKV, moduleRing)
	before(TargetIngester, TargetAll)
	before(moduleMemberlistKV, moduleRingKV)
	// The ruler writes through the distributor to the ingesters and reads blocks through the
	// store-gateways: it starts after them and stops before them.
	before(TargetIngester, TargetRuler)
	before(TargetStoreGateway, TargetRuler)
	before(TargetAlertmanager, TargetRuler) // the ruler sends to it
	require.ElementsMatch(t, []string{moduleServer, moduleRuntimeConfig, moduleMemberlistKV, moduleRingKV, moduleRing, moduleDistributorRing, moduleIngesterClient, moduleBucket, moduleStoreGatewayRing, moduleStoreGatewayClient, moduleDistributorService, moduleQueryable, moduleRulerClient, moduleAlertmanagerClient, TargetIngester, TargetDistributor, TargetFrontend, TargetQuerier, TargetCompactor, TargetStoreGateway, TargetAlertmanager, TargetRuler, TargetAll}, order)
}

func TestLoadConfig_VersionSkipsEverythingElse(t *testing.T) {
	for _, args := range [][]string{
		{"-version"},
		{"--version"},
		{"-version=true", "-config.file=/no/such/file.yaml"},
		{"-target=no-such-target", "-version"},
	} {
		cfg, _, err := LoadConfig(args, io.Discard)
		require.NoError(t, err, args)
		require.True(t, cfg.PrintVersion, args)
	}
	cfg, _, err := LoadConfig([]string{"-version=false", "-data.dir=" + t.TempDir()}, io.Discard)
	require.NoError(t, err)
	require.False(t, cfg.PrintVersion)
}

func TestLoadConfig_HeartbeatPeriodsShorterThanTheTimeout(t *testing.T) {
	cfg, _, err := LoadConfig([]string{"-ring.heartbeat-timeout=4s", "-ingester.ring.heartbeat-period=500ms"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 500*time.Millisecond, cfg.Lifecycler.HeartbeatPeriod, "set on purpose and shorter: kept")
	require.Equal(t, time.Second, cfg.RulerLifecycler.HeartbeatPeriod, "left at 15s: a quarter of the timeout")
	require.Equal(t, time.Second, cfg.AlertmanagerLifecycler.HeartbeatPeriod)

	cfg, _, err = LoadConfig(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 15*time.Second, cfg.RulerLifecycler.HeartbeatPeriod, "the defaults fit the default timeout")

	_, _, err = LoadConfig([]string{"-ring.heartbeat-timeout=4s", "-ruler.ring.heartbeat-period=5s"}, io.Discard)
	require.ErrorContains(t, err, "-ruler.ring.heartbeat-period 5s must be shorter than -ring.heartbeat-timeout 4s")
}
