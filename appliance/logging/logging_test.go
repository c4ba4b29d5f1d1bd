package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/logging"
)

func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// Each component logs at its own level; the others at the base level.
func TestLevelsPerComponent(t *testing.T) {
	var b bytes.Buffer
	l := logging.New(&b, logging.Options{Level: "info", Format: "json", Levels: map[string]string{"raft": "warn", "api": "debug"}})
	for _, c := range []struct {
		log  *slog.Logger
		name string
	}{{l, "base"}, {l.With("component", "raft"), "raft"}, {l.With("component", "api"), "api"}, {l.With("component", "audit"), "audit"}} {
		c.log.Debug("d", "who", c.name)
		c.log.Info("i", "who", c.name)
		c.log.Warn("w", "who", c.name)
	}
	// A group after the component keeps it; an attribute named
	// component inside a group is not one.
	l.With("component", "raft").WithGroup("g").Info("i", "who", "raft-group")
	l.WithGroup("g").With("component", "raft").Info("i", "who", "grouped")
	var got []string
	for _, m := range lines(t, &b) {
		who, _ := m["who"].(string)
		if who == "" {
			who = m["g"].(map[string]any)["who"].(string)
		}
		got = append(got, who+":"+m["msg"].(string))
	}
	want := []string{"base:i", "base:w", "raft:w", "api:d", "api:i", "api:w", "audit:i", "audit:w", "grouped:i"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %v, want %v", got, want)
	}
}

// raft's hclog lines reach the slog handler as records with its name
// and arguments, at the mapped level, filtered by the component's level.
func TestHclogAdapter(t *testing.T) {
	var b bytes.Buffer
	l := logging.New(&b, logging.Options{Level: "info", Format: "json", Levels: map[string]string{"raft": "info"}})
	h := logging.Hclog(l.With("component", "raft"), "raft")
	h.Debug("not shown")
	h.Trace("not shown either")
	h.Named("net").With("peer", "n2").Warn("failed to contact", "error", "dial refused")
	h.Info("entering follower state", "follower", "n1")
	h.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[ERR] raft-net: failed to accept")
	if h.IsDebug() || !h.IsInfo() || h.GetLevel() != hclog.Info {
		t.Errorf("levels: debug %v info %v get %v", h.IsDebug(), h.IsInfo(), h.GetLevel())
	}
	got := lines(t, &b)
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(got), b.String())
	}
	for i, want := range []map[string]any{
		{"level": "WARN", "msg": "failed to contact", "component": "raft", "name": "raft.net", "peer": "n2", "error": "dial refused"},
		{"level": "INFO", "msg": "entering follower state", "component": "raft", "name": "raft", "follower": "n1"},
		{"level": "ERROR", "msg": "raft-net: failed to accept", "component": "raft", "name": "raft"},
	} {
		for k, v := range want {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i+1, k, got[i][k], v, got[i])
			}
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		o    logging.Options
		want string
	}{
		{logging.Options{}, ""},
		{logging.Options{Level: "warn", Format: "json", Levels: map[string]string{"raft": "debug"}}, ""},
		{logging.Options{Format: "xml"}, "format"},
		{logging.Options{Level: "loud"}, "level"},
		{logging.Options{Levels: map[string]string{"storage": "info"}}, "no subsystem"},
		{logging.Options{Levels: map[string]string{"raft": "loud"}}, "raft"},
	} {
		err := c.o.Check()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

// The configuration accepts exactly the subsystems this package knows.
func TestConfigKnowsTheSubsystems(t *testing.T) {
	if !slices.Equal(config.LogSubsystems, logging.Subsystems) {
		t.Errorf("config.LogSubsystems %v, logging.Subsystems %v", config.LogSubsystems, logging.Subsystems)
	}
}
