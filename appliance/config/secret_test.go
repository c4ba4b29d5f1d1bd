package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecret(t *testing.T) {
	s := Secret("hunter2")
	cfg := Config{DevToken: s, Cluster: Cluster{JoinToken: s}}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := s.MarshalText()
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "token", s, "cfg", cfg)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "token", s, "cfg", cfg)

	outputs := map[string]string{
		"String":   s.String(),
		"%v":       fmt.Sprintf("%v", s),
		"%s":       fmt.Sprintf("%s", s),
		"%q":       fmt.Sprintf("%q", s),
		"%x":       fmt.Sprintf("%x", s),
		"%#v":      fmt.Sprintf("%#v", s),
		"%+v cfg":  fmt.Sprintf("%+v", cfg),
		"%#v cfg":  fmt.Sprintf("%#v", cfg),
		"json cfg": string(js),
		"text":     string(text),
		"slog":     logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s: %s", name, out)
		}
	}
	if got := s.Reveal(); got != "hunter2" {
		t.Errorf("Reveal = %q", got)
	}

	var empty Secret
	if got := fmt.Sprintf("%v|%s", empty, empty.String()); got != "|" {
		t.Errorf("empty secret prints %q, want nothing", got)
	}

	var u Secret
	if err := u.UnmarshalText([]byte("v")); err != nil || u.Reveal() != "v" {
		t.Errorf("UnmarshalText: %q, %v", u.Reveal(), err)
	}
}
