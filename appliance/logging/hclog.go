package logging

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is hclog's trace level in slog's terms: below debug.
const levelTrace = slog.LevelDebug - 4

// Hclog returns an hclog.Logger that writes to l: what hashicorp/raft
// takes. name is raft's logger name (hclog's Named), logged as "name".
func Hclog(l *slog.Logger, name string) hclog.Logger {
	return &hlog{l: l, name: name}
}

// hlog adapts hclog's interface onto a slog.Logger. Its level is the
// slog handler's (the "raft" component's level): SetLevel does nothing.
type hlog struct {
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hlog)(nil)

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *hlog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	sl := slogLevel(level)
	ctx := context.Background()
	if !h.l.Enabled(ctx, sl) {
		return
	}
	attrs := make([]any, 0, 2+len(h.implied)+len(args))
	if h.name != "" {
		attrs = append(attrs, "name", h.name)
	}
	attrs = append(attrs, h.implied...)
	attrs = append(attrs, args...)
	h.l.Log(ctx, sl, msg, attrs...)
}

func (h *hlog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hlog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hlog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hlog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hlog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hlog) enabled(l slog.Level) bool { return h.l.Enabled(context.Background(), l) }

func (h *hlog) IsTrace() bool { return h.enabled(levelTrace) }
func (h *hlog) IsDebug() bool { return h.enabled(slog.LevelDebug) }
func (h *hlog) IsInfo() bool  { return h.enabled(slog.LevelInfo) }
func (h *hlog) IsWarn() bool  { return h.enabled(slog.LevelWarn) }
func (h *hlog) IsError() bool { return h.enabled(slog.LevelError) }

func (h *hlog) ImpliedArgs() []any { return h.implied }

func (h *hlog) With(args ...any) hclog.Logger {
	c := *h
	c.implied = append(append([]any{}, h.implied...), args...)
	return &c
}

func (h *hlog) Name() string { return h.name }

func (h *hlog) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (h *hlog) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

// SetLevel does nothing: the level is the configuration's.
func (h *hlog) SetLevel(hclog.Level) {}

func (h *hlog) GetLevel() hclog.Level {
	switch {
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	case h.IsError():
		return hclog.Error
	}
	return hclog.Off
}

func (h *hlog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter is a writer whose lines become records: at the level
// their "[ERROR]"-style prefix names when opts infers levels (as
// hclog's does), else at info.
func (h *hlog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	infer := opts != nil && opts.InferLevels
	return &stdWriter{h: h, infer: infer}
}

type stdWriter struct {
	h     *hlog
	infer bool
}

func (w *stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		msg, level := strings.TrimSpace(string(line)), hclog.Info
		if msg == "" {
			continue
		}
		if w.infer {
			msg, level = inferLevel(msg)
		}
		w.h.Log(level, msg)
	}
	return len(p), nil
}

// inferLevel reads a leading [TRACE], [DEBUG], [INFO], [WARN] or [ERR]
// (and [ERROR]) tag off a standard-library log line.
func inferLevel(line string) (string, hclog.Level) {
	for _, t := range []struct {
		tag   string
		level hclog.Level
	}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error}} {
		if rest, ok := strings.CutPrefix(line, t.tag); ok {
			return strings.TrimSpace(rest), t.level
		}
	}
	return line, hclog.Info
}
