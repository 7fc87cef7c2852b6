package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigVerify(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	writeFile := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	valid := writeFile("valid.yaml", "target: ingester\ningester:\n  ring:\n    store: memberlist\nmemberlist:\n  join: [strata-gossip:7946]\n")
	unknownKey := writeFile("unknown-key.yaml", "distributor:\n  replication_factor: 3\n  no_such_setting: 1\n")
	badValue := writeFile("bad-value.yaml", "distributor:\n  replication_factor: three\n")

	tests := []struct {
		name     string
		args     []string
		status   int
		problems []string // each must be printed on stderr
	}{
		{"defaults", nil, 0, nil},
		{"a microservice from a file and flags", []string{"-config.file=" + valid, "-ingester.ring.instance-id=ingester-0", "-server.http-listen-port=8081"}, 0, nil},
		{"unknown flag", []string{"-no-such-flag=1"}, 1, []string{"flag provided but not defined: -no-such-flag"}},
		{"unknown flag with its value as the next word", []string{"-no-such-flag", "1", "-target=querier"}, 1, []string{"flag provided but not defined: -no-such-flag"}},
		{"unknown YAML key", []string{"-config.file=" + unknownKey}, 1, []string{`unknown-key.yaml:3: unknown configuration key "distributor.no_such_setting"`}},
		{"invalid value in the file", []string{"-config.file=" + badValue}, 1, []string{`bad-value.yaml:2: invalid value "three" for distributor.replication_factor`}},
		{"invalid value of a flag", []string{"-server.http-listen-port=http"}, 1, []string{`invalid value "http" for flag -server.http-listen-port`}},
		{"value that parses but does not validate", []string{"-target=no-such-target"}, 1, []string{"no-such-target"}},
		{"missing config file", []string{"-config.file=" + filepath.Join(dir, "absent.yaml")}, 1, []string{"read config file"}},
		{
			"every problem at once",
			[]string{"-config.file=" + unknownKey, "-no-such-flag", "-log.level=loud", "-ingester.ring.num-tokens=many"},
			1,
			[]string{"no_such_setting", "-no-such-flag", `invalid -log.level "loud"`, `invalid value "many" for flag -ingester.ring.num-tokens`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-config.verify", "-data.dir=" + dataDir}, tt.args...)
			status := verifyConfig(args, &stdout, &stderr)
			require.Equal(t, tt.status, status, "stderr: %s", stderr.String())
			if tt.status == 0 {
				require.Equal(t, "config OK\n", stdout.String())
				require.Empty(t, stderr.String())
			} else {
				require.Empty(t, stdout.String())
				require.True(t, strings.HasPrefix(stderr.String(), "strata: invalid configuration"), stderr.String())
			}
			for _, p := range tt.problems {
				require.Contains(t, stderr.String(), p)
			}
			require.NoDirExists(t, dataDir, "verifying must not create the data directory")
		})
	}
}

func TestConfigVerify_HelpExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, verifyConfig([]string{"-config.verify", "-h"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "-config.verify")
}

// TestConfigVerify_OpensNothing: verification succeeds with ports already taken and a bucket nobody
// serves, which a start would fail on; it neither listens nor reaches the bucket.
func TestConfigVerify_OpensNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	dataDir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	status := verifyConfig([]string{
		"-config.verify", "-data.dir=" + dataDir, "-target=ingester", "-ingester.ring.store=memberlist",
		"-server.http-listen-address=127.0.0.1", "-server.http-listen-port=" + port,
		"-server.grpc-listen-address=127.0.0.1", "-server.grpc-listen-port=" + port,
		"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + port,
		"-blocks-storage.backend=s3", "-blocks-storage.s3.endpoint=127.0.0.1:1", "-blocks-storage.s3.bucket-name=none",
		"-blocks-storage.s3.insecure=true",
	}, &stdout, &stderr)
	require.Equal(t, 0, status, stderr.String())
	require.Equal(t, "config OK\n", stdout.String())
	require.NoDirExists(t, dataDir)
}
