package etcd

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapToSlog is a zapcore.Core that forwards the etcd client's zap logs to the process' slog logger, so they
// share its format and destination. Only errors are forwarded: below that the client logs every retry of
// every call (a hundred lines per failed request during an outage), and Strata logs the failures that
// matter itself.
type zapToSlog struct {
	logger *slog.Logger
	attrs  []slog.Attr
}

// newZapLogger returns a zap logger writing into logger.
func newZapLogger(logger *slog.Logger) *zap.Logger {
	return zap.New(&zapToSlog{logger: logger})
}

func (z *zapToSlog) Enabled(l zapcore.Level) bool {
	return l >= zapcore.ErrorLevel && z.logger.Enabled(context.Background(), slogLevel(l))
}

func (z *zapToSlog) With(fields []zapcore.Field) zapcore.Core {
	attrs := append(z.attrs[:len(z.attrs):len(z.attrs)], fieldsToAttrs(fields)...)
	return &zapToSlog{logger: z.logger, attrs: attrs}
}

func (z *zapToSlog) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if z.Enabled(e.Level) {
		return ce.AddCore(e, z)
	}
	return ce
}

func (z *zapToSlog) Write(e zapcore.Entry, fields []zapcore.Field) error {
	attrs := append(z.attrs[:len(z.attrs):len(z.attrs)], fieldsToAttrs(fields)...)
	z.logger.LogAttrs(context.Background(), slogLevel(e.Level), e.Message, attrs...)
	return nil
}

func (z *zapToSlog) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l < zapcore.InfoLevel:
		return slog.LevelDebug
	case l < zapcore.WarnLevel:
		return slog.LevelInfo
	case l < zapcore.ErrorLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func fieldsToAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	// The encoder's map loses the fields' order; sorting at least keeps a log line's layout stable.
	slices.SortFunc(attrs, func(a, b slog.Attr) int { return strings.Compare(a.Key, b.Key) })
	return attrs
}
