package memberlist

import (
	"context"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
)

// memberlistLogWriter turns memberlist's standard-library log lines ("[WARN] memberlist: ...") into slog
// records at the matching level, so they are filtered and formatted like the rest of Strata's logs.
type memberlistLogWriter struct {
	logger *slog.Logger
	// shuttingDown is set just before memberlist closes its sockets. Its gossip and probe goroutines
	// outlive that moment briefly (it closes the transport before it stops them), so a send that fails
	// on the closed socket then is part of a clean shutdown, not an error worth an ERROR line.
	shuttingDown *atomic.Bool
}

func newMemberlistLogger(logger *slog.Logger, shuttingDown *atomic.Bool) *log.Logger {
	return log.New(memberlistLogWriter{logger: logger, shuttingDown: shuttingDown}, "", 0)
}

var memberlistLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

// Write implements io.Writer.
func (w memberlistLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for _, l := range memberlistLevels {
		if rest, ok := strings.CutPrefix(msg, l.prefix); ok {
			msg, level = strings.TrimSpace(rest), l.level
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	if level > slog.LevelDebug && w.shuttingDown.Load() && strings.Contains(msg, net.ErrClosed.Error()) {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, msg)
	return len(p), nil
}
