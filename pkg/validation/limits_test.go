package validation_test

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// defaultLimits returns the limits as the flags default them.
func defaultLimits(t testing.TB) *validation.Limits {
	t.Helper()
	var l validation.Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	return &l
}

func TestLimits_RegisterFlagsDefaults(t *testing.T) {
	require.Equal(t, validation.Limits{
		MaxLabelNamesPerSeries: 30,
		MaxLabelNameLength:     1024,
		MaxLabelValueLength:    2048,
		CreationGracePeriod:    10 * time.Minute,
		MaxMetadataLength:      1024,
	}, *defaultLimits(t))
	require.NoError(t, defaultLimits(t).Validate())
}

func TestLimits_FlagsOverrideDefaults(t *testing.T) {
	var l validation.Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"-validation.max-label-names-per-series=40",
		"-validation.max-length-label-name=100",
		"-validation.max-length-label-value=200",
		"-validation.create-grace-period=1m",
		"-validation.max-metadata-length=300",
	}))
	require.Equal(t, validation.Limits{
		MaxLabelNamesPerSeries: 40,
		MaxLabelNameLength:     100,
		MaxLabelValueLength:    200,
		CreationGracePeriod:    time.Minute,
		MaxMetadataLength:      300,
	}, l)
}

func TestLimits_Validate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*validation.Limits)
		wantErr string
	}{
		{name: "zero grace period is allowed", modify: func(l *validation.Limits) { l.CreationGracePeriod = 0 }},
		{name: "zero label names", modify: func(l *validation.Limits) { l.MaxLabelNamesPerSeries = 0 },
			wantErr: "-validation.max-label-names-per-series must be positive, got 0"},
		{name: "negative label name length", modify: func(l *validation.Limits) { l.MaxLabelNameLength = -1 },
			wantErr: "-validation.max-length-label-name must be positive, got -1"},
		{name: "zero label value length", modify: func(l *validation.Limits) { l.MaxLabelValueLength = 0 },
			wantErr: "-validation.max-length-label-value must be positive"},
		{name: "zero metadata length", modify: func(l *validation.Limits) { l.MaxMetadataLength = 0 },
			wantErr: "-validation.max-metadata-length must be positive"},
		{name: "negative grace period", modify: func(l *validation.Limits) { l.CreationGracePeriod = -time.Second },
			wantErr: "-validation.create-grace-period must not be negative, got -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := defaultLimits(t)
			tc.modify(l)
			err := l.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
