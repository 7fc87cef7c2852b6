package runtimeconfig

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

type value struct{ text string }

// parseCounting parses any text but "bad", counting its calls.
func parseCounting(calls *int) func([]byte) (*value, error) {
	return func(b []byte) (*value, error) {
		*calls++
		if strings.TrimSpace(string(b)) == "bad" {
			return nil, errors.New("bad content")
		}
		return &value{text: string(b)}, nil
	}
}

func TestManager_KeepsTheLastGoodVersionAndReportsIt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "runtime.yaml")
	require.NoError(t, os.WriteFile(file, []byte("one"), 0o600))
	reg := prometheus.NewRegistry()
	calls := 0
	m := New(Config{File: file, ReloadPeriod: time.Hour}, parseCounting(&calls), reg, slog.New(slog.DiscardHandler))
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	require.Equal(t, "one", m.Current().text)
	require.Equal(t, 1.0, testutil.ToFloat64(m.reloadSuccess))

	require.NoError(t, m.reload())
	require.Equal(t, 1, calls, "an unchanged file is not parsed again")

	require.NoError(t, os.WriteFile(file, []byte("bad"), 0o600))
	require.Error(t, m.reload())
	require.Equal(t, "one", m.Current().text, "the last good version stays")
	require.Equal(t, 0.0, testutil.ToFloat64(m.reloadSuccess))

	require.NoError(t, os.WriteFile(file, []byte("two"), 0o600))
	require.NoError(t, m.reload())
	require.Equal(t, "two", m.Current().text)
	require.Equal(t, 1.0, testutil.ToFloat64(m.reloadSuccess))
	require.Equal(t, 1, testutil.CollectAndCount(m.hash), "one hash: the version in effect")

	require.NoError(t, os.Remove(file))
	require.Error(t, m.reload())
	require.Equal(t, "two", m.Current().text)
}

func TestManager_BrokenOrMissingFileAtStartIsAnError(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	m := New(Config{File: filepath.Join(dir, "missing.yaml"), ReloadPeriod: time.Hour}, parseCounting(&calls), nil, slog.New(slog.DiscardHandler))
	require.Error(t, m.Start(context.Background()))

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("bad"), 0o600))
	m = New(Config{File: bad, ReloadPeriod: time.Hour}, parseCounting(&calls), nil, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, m.Start(context.Background()), "bad content")

	m = New(Config{}, parseCounting(&calls), nil, slog.New(slog.DiscardHandler))
	require.NoError(t, m.Start(context.Background()))
	require.Nil(t, m.Current(), "no file, no runtime configuration")
	require.NoError(t, m.Stop(context.Background()))
}
