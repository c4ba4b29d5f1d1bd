package main

import (
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
)

// The peer table shows the leader's view of each follower's heartbeats.
func TestPrintPeers(t *testing.T) {
	var b strings.Builder
	printPeers(&b, []client.Peer{
		{ID: "n1", Address: "10.0.0.1:8300", Voter: true, Leader: true},
		{ID: "n2", Address: "10.0.0.2:8300", Voter: true, Heartbeat: "ok"},
		{ID: "n3", Address: "10.0.0.3:8300", Voter: true, Heartbeat: "failing", LastContact: time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"ID", "ADDRESS", "VOTER", "LEADER", "HEARTBEAT"},
		{"n1", "10.0.0.1:8300", "true", "true", "-"},
		{"n2", "10.0.0.2:8300", "true", "false", "ok"},
		{"n3", "10.0.0.3:8300", "true", "false", "failing", "(last", "contact", "2026-12-03T22:00:00Z)"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for i, l := range lines {
		if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: %q, want %q", i, got, want[i])
		}
	}
}
