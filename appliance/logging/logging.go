// Package logging makes a node's one structured logger: every line of
// the node — its own, the API's request log and hashicorp/raft's — in
// one format, text (slog's key=value) or JSON (one object a line), with
// a level per subsystem.
//
// # Subsystems
//
// A subsystem is what a logger's "component" attribute names (the node
// gives each part its logger with logger.With("component", name)): raft,
// api, audit, keyring, blobs, retention, signing, export, metrics. Levels
// maps a subsystem to its own level; the others log at Level. A
// component's level may be lower or higher than Level: raft at "warn"
// under "info" quietens raft's chatter (its default), raft at "debug"
// under "warn" follows an election. The decision is made once, when the
// component's logger is made (WithAttrs), so a log call that is disabled
// costs one comparison.
//
// # hashicorp/raft
//
// raft logs through hclog. [Hclog] is an hclog.Logger that writes to a
// slog.Logger (the "raft" component's): its lines reach the node's
// handler and format, with raft's own logger name as "name" and its
// key/value arguments as attributes, instead of a second text format
// between the node's lines.
//
// # Not in the log
//
// A line never carries a secret or personal data. The callers see to
// the content (the API logs a route's template, not the request's path,
// which may name a subject; tokens are never logged); this package sees
// to the format, so that nothing writes beside it.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
)

// Formats are the formats New writes.
var Formats = []string{"text", "json"}

// Subsystems are the components whose level Options.Levels may set.
var Subsystems = []string{"api", "api-tls", "audit", "backup", "blobs", "export", "keyring", "metrics", "raft", "retention", "signing"}

// ComponentKey is the attribute that names a logger's subsystem.
const ComponentKey = "component"

// Options configure New.
type Options struct {
	Level  string            // debug, info, warn or error; "": info
	Format string            // text or json; "": text
	Levels map[string]string // subsystem -> level
}

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging: level %q is not debug, info, warn or error", s)
}

// Check reports what is wrong with o: an unknown format, level or
// subsystem.
func (o Options) Check() error {
	if o.Format != "" && !slices.Contains(Formats, o.Format) {
		return fmt.Errorf("logging: format %q is not text or json", o.Format)
	}
	if _, err := ParseLevel(o.Level); err != nil {
		return err
	}
	names := make([]string, 0, len(o.Levels))
	for k := range o.Levels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !slices.Contains(Subsystems, k) {
			return fmt.Errorf("logging: no subsystem %q (one of %s)", k, strings.Join(Subsystems, ", "))
		}
		if _, err := ParseLevel(o.Levels[k]); err != nil {
			return fmt.Errorf("logging: subsystem %s: %w", k, err)
		}
	}
	return nil
}

// New makes the logger that writes to w as o says. An invalid o is a
// wiring mistake (the configuration is validated first): New panics.
func New(w io.Writer, o Options) *slog.Logger {
	if err := o.Check(); err != nil {
		panic(err)
	}
	base, _ := ParseLevel(o.Level)
	levels := map[string]slog.Level{}
	lowest := base
	for k, v := range o.Levels {
		l, _ := ParseLevel(v)
		levels[k] = l
		lowest = min(lowest, l)
	}
	ho := &slog.HandlerOptions{Level: lowest}
	var h slog.Handler
	if o.Format == "json" {
		h = slog.NewJSONHandler(w, ho)
	} else {
		h = slog.NewTextHandler(w, ho)
	}
	return slog.New(&handler{next: h, level: base, levels: levels})
}

// handler filters records by the level of its logger's component.
type handler struct {
	next   slog.Handler
	level  slog.Level            // of this logger's component, or the base level
	levels map[string]slog.Level // shared, read-only
	group  bool                  // attributes now go into a group: no longer a component
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.group {
		for _, a := range attrs {
			if a.Key != ComponentKey {
				continue
			}
			if l, ok := h.levels[a.Value.String()]; ok {
				c.level = l
			}
		}
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = c.group || name != ""
	return &c
}
