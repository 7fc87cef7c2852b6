package memberlist

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingHandler keeps the records it is given.
type recordingHandler struct{ records []slog.Record }

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func TestMemberlistLogger_MapsLevelsAndStripsPrefixes(t *testing.T) {
	h := &recordingHandler{}
	l := newMemberlistLogger(slog.New(h))
	l.Printf("[DEBUG] memberlist: Stream connection from=%s", "127.0.0.1:1")
	l.Printf("[WARN] memberlist: Was able to connect to x but other probes failed")
	l.Printf("[ERR] memberlist: Failed to send gossip")
	l.Printf("no level at all")

	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelDebug, "Stream connection from=127.0.0.1:1"},
		{slog.LevelWarn, "Was able to connect to x but other probes failed"},
		{slog.LevelError, "Failed to send gossip"},
		{slog.LevelInfo, "no level at all"},
	}
	require.Len(t, h.records, len(want))
	for i, w := range want {
		require.Equal(t, w.level, h.records[i].Level)
		require.Equal(t, w.msg, h.records[i].Message)
	}
}
