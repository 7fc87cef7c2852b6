package multi

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig_FlagsHaveThePrefixAndDefaults(t *testing.T) {
	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("ingester.ring.", f)
	require.Equal(t, Config{MirrorTimeout: 2 * time.Second, flagPrefix: "ingester.ring."}, cfg)

	require.NoError(t, f.Parse([]string{
		"-ingester.ring.multi.primary=etcd",
		"-ingester.ring.multi.secondary=memberlist",
		"-ingester.ring.multi.mirror-enabled",
		"-ingester.ring.multi.mirror-timeout=5s",
	}))
	require.Equal(t, Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: true,
		MirrorTimeout: 5 * time.Second, flagPrefix: "ingester.ring."}, cfg)
	require.NoError(t, cfg.Validate())
}

func TestConfig_Validate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"valid":             {cfg: Config{Primary: "etcd", Secondary: "memberlist", MirrorTimeout: time.Second}},
		"no primary":        {cfg: Config{Secondary: "memberlist", MirrorTimeout: time.Second}, wantErr: "-ingester.ring.multi.primary"},
		"no secondary":      {cfg: Config{Primary: "etcd", MirrorTimeout: time.Second}, wantErr: "-ingester.ring.multi.secondary"},
		"same store twice":  {cfg: Config{Primary: "etcd", Secondary: "etcd", MirrorTimeout: time.Second}, wantErr: "must be different"},
		"multi inside":      {cfg: Config{Primary: "multi", Secondary: "etcd", MirrorTimeout: time.Second}, wantErr: "cannot contain itself"},
		"zero mirror limit": {cfg: Config{Primary: "etcd", Secondary: "memberlist"}, wantErr: "-ingester.ring.multi.mirror-timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.cfg.flagPrefix = "ingester.ring."
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
