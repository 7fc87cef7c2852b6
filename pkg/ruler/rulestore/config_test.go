package rulestore

import (
	"flag"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func TestConfig_Defaults(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, Config{Backend: BackendBucket, Prefix: "rules"}, c)
	require.NoError(t, c.Validate())
}

func TestConfig_Validate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg     Config
		wantErr string
	}{
		"bucket":                        {cfg: Config{Backend: "bucket", Prefix: "rules"}},
		"bucket with nested prefix":     {cfg: Config{Backend: "bucket", Prefix: "rules/prod"}},
		"prefix a tenant could have":    {cfg: Config{Backend: "bucket", Prefix: "strata/rules"}, wantErr: `starts with "strata", which could be a tenant's directory`},
		"local":                         {cfg: Config{Backend: "local", LocalDirectory: "/etc/rules"}},
		"local without directory":       {cfg: Config{Backend: "local"}, wantErr: "needs -ruler-storage.local.directory"},
		"bucket with a local directory": {cfg: Config{Backend: "bucket", Prefix: "rules", LocalDirectory: "/x"}, wantErr: "set the backend to local or unset the directory"},
		"unknown backend":               {cfg: Config{Backend: "s3"}, wantErr: `unsupported rule store backend "s3"`},
		"empty prefix":                  {cfg: Config{Backend: "bucket"}, wantErr: "must not be empty"},
		"prefix with ..":                {cfg: Config{Backend: "bucket", Prefix: "../rules"}, wantErr: "without empty"},
		"prefix with leading slash":     {cfg: Config{Backend: "bucket", Prefix: "/rules"}, wantErr: "without empty"},
		"prefix with empty segment":     {cfg: Config{Backend: "bucket", Prefix: "a//b"}, wantErr: "without empty"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestNew_PicksTheBackend(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	s, err := New(Config{Backend: BackendBucket, Prefix: "rules"}, objstore.NewInMemBucket(), logger)
	require.NoError(t, err)
	require.IsType(t, &BucketStore{}, s)
	s, err = New(Config{Backend: BackendLocal, LocalDirectory: t.TempDir()}, nil, logger)
	require.NoError(t, err)
	require.IsType(t, &LocalStore{}, s)
	_, err = New(Config{Backend: BackendBucket, Prefix: "rules"}, nil, logger)
	require.ErrorContains(t, err, "needs a bucket")
	_, err = New(Config{Backend: "nope"}, nil, logger)
	require.Error(t, err)
}
