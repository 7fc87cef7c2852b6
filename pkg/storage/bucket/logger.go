package bucket

import (
	"context"
	"fmt"
	"log/slog"
)

// goKitLogger lets the objstore providers, which log through go-kit's Logger interface
// (Log(keyvals ...any) error), write to Strata's slog logger. It satisfies that interface
// structurally, so Strata does not import go-kit.
type goKitLogger struct {
	logger *slog.Logger
}

// Log maps go-kit's "level" and "msg" keys to slog's level and message and keeps the rest as attributes.
func (l goKitLogger) Log(keyvals ...any) error {
	level := slog.LevelInfo
	msg := ""
	attrs := make([]slog.Attr, 0, len(keyvals)/2)
	for i := 0; i < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		var val any = "(MISSING)"
		if i+1 < len(keyvals) {
			val = keyvals[i+1]
		}
		switch key {
		case "level":
			level = parseGoKitLevel(fmt.Sprint(val))
		case "msg":
			msg = fmt.Sprint(val)
		default:
			attrs = append(attrs, slog.Any(key, val))
		}
	}
	l.logger.LogAttrs(context.Background(), level, msg, attrs...)
	return nil
}

func parseGoKitLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
