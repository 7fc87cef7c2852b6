package memberlist

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// memberlistLogWriter turns memberlist's standard-library log lines ("[WARN] memberlist: ...") into slog
// records at the matching level, so they are filtered and formatted like the rest of Strata's logs.
type memberlistLogWriter struct {
	logger *slog.Logger
}

func newMemberlistLogger(logger *slog.Logger) *log.Logger {
	return log.New(memberlistLogWriter{logger: logger}, "", 0)
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
	w.logger.Log(context.Background(), level, msg)
	return len(p), nil
}
