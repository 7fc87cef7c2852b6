package app

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMaskSecretArgs(t *testing.T) {
	var cfg Config
	flags := flag.NewFlagSet("strata", flag.ContinueOnError)
	cfg.RegisterFlags(flags)
	secret := secretFlags(flags)
	require.True(t, secret["blocks-storage.azure.account-key"])
	require.True(t, secret["ingester.ring.etcd.password"])

	tests := map[string]struct{ args, want []string }{
		"flag=value": {
			args: []string{"strata", "-blocks-storage.azure.account-key=c2VjcmV0", "-target=all"},
			want: []string{"strata", "-blocks-storage.azure.account-key=********", "-target=all"},
		},
		"flag value": {
			args: []string{"strata", "-ingester.ring.etcd.password", "hunter2", "-target", "all"},
			want: []string{"strata", "-ingester.ring.etcd.password", "********", "-target", "all"},
		},
		"two dashes": {
			args: []string{"strata", "--ingester.ring.etcd.password=hunter2", "--blocks-storage.s3.secret-access-key", "AKIA/x"},
			want: []string{"strata", "--ingester.ring.etcd.password=********", "--blocks-storage.s3.secret-access-key", "********"},
		},
		"a value that looks like a flag is still the secret's": {
			args: []string{"strata", "-ingester.ring.etcd.password", "-target=all"},
			want: []string{"strata", "-ingester.ring.etcd.password", "********"},
		},
		"a value containing =": {
			args: []string{"strata", "-blocks-storage.azure.account-key=abc==", "-ingester.ring.etcd.password=a=b"},
			want: []string{"strata", "-blocks-storage.azure.account-key=********", "-ingester.ring.etcd.password=********"},
		},
		"empty values stay empty": {
			args: []string{"strata", "-ingester.ring.etcd.password=", "-blocks-storage.azure.account-key", ""},
			want: []string{"strata", "-ingester.ring.etcd.password=", "-blocks-storage.azure.account-key", ""},
		},
		"secret flag last, without a value": {
			args: []string{"strata", "-ingester.ring.etcd.password"},
			want: []string{"strata", "-ingester.ring.etcd.password"},
		},
		"other flags and the program name untouched": {
			args: []string{"-ingester.ring.etcd.password", "-ingester.ring.etcd.username", "admin", "-unknown", "x", "positional"},
			want: []string{"-ingester.ring.etcd.password", "-ingester.ring.etcd.username", "admin", "-unknown", "x", "positional"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := maskSecretArgs(secret, tc.args)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestApp_CmdlineProfileMasksSecrets(t *testing.T) {
	args := []string{
		"-blocks-storage.azure.account-key=azure-key-in-clear",
		"-ingester.ring.etcd.password", "etcd-password-in-clear",
		"-target=all",
	}
	saved := os.Args
	os.Args = append([]string{"strata"}, args...)
	t.Cleanup(func() { os.Args = saved })
	r := startApp(t, newTestApp(t, t.TempDir(), args...))

	code, body, header := r.get(t, "/debug/pprof/cmdline", nil)
	require.Equal(t, 200, code)
	require.Equal(t, "text/plain; charset=utf-8", header.Get("Content-Type"))
	require.Equal(t, []string{
		"strata",
		"-blocks-storage.azure.account-key=********",
		"-ingester.ring.etcd.password", "********",
		"-target=all",
	}, strings.Split(body, "\x00"))

	// Nor does any spelling of the path reach net/http/pprof's own handler.
	for _, path := range []string{"/debug/pprof//cmdline", "/debug/pprof/./cmdline", "/debug/pprof/cmdline/", "/debug/pprof/cmd%6cine", "/debug/pprof/cmdline?debug=1"} {
		_, body, _ := r.get(t, path, nil)
		require.NotContains(t, body, "in-clear", path)
	}

	// Other profiles still come from net/http/pprof.
	code, body, _ = r.get(t, "/debug/pprof/", nil)
	require.Equal(t, 200, code)
	require.Contains(t, body, "goroutine")
}
