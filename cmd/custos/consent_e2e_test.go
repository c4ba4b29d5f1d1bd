package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/e2e"
)

// fixturePurpose is one purpose of testdata/product-analytics-purposes.json.
type fixturePurpose struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Basis       string `json:"basis"`
	Required    bool   `json:"required"`
	DefaultOn   bool   `json:"default_on"`
	Sale        bool   `json:"sale"`
	OnWithdraw  string `json:"on_withdraw"`
}

// TestE2EConsentRecording (issue 13, acceptance 3) through the CLI on a
// real node: the product-analytics purposes and call-recording are
// created; a recording of guest-1 (blob kind call-recording) is refused
// without consent, accepted once guest-1 granted it (the IVR greeting's
// recording as evidence), refused again after the withdrawal (a text as
// evidence), and the accepted one is no longer served; the state as of
// each moment is right; and every event is in the tenant's chain with
// its evidence (the blob id, the text's keyed digest).
func TestE2EConsentRecording(t *testing.T) {
	bin := e2e.Binary(t)
	node := e2e.StartDevNode(t, bin, "e2e-consent-token")
	owner := func(args ...string) e2e.CLIResult { return node.TenantCLI(t, "acme", args...) }
	must := e2e.Must(t)
	refused := func(r e2e.CLIResult, what, status, purpose string) {
		t.Helper()
		if r.Code == 0 || !strings.Contains(r.Stderr, status) || !strings.Contains(r.Stderr, purpose) {
			t.Fatalf("%s: want refused %s naming %s, got %v", what, status, purpose, r)
		}
	}
	must(node.CLI(t, "tenant", "create", "acme"), "tenant create")

	raw, err := os.ReadFile(filepath.Join("testdata", "product-analytics-purposes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var purposes []fixturePurpose
	if err := json.Unmarshal(raw, &purposes); err != nil {
		t.Fatal(err)
	}
	for _, p := range purposes {
		args := []string{"consent", "purpose", "create", "acme", p.ID, "--description", p.Description, "--basis", p.Basis}
		for flag, on := range map[string]bool{"--required": p.Required, "--default-on": p.DefaultOn, "--sale": p.Sale} {
			if on {
				args = append(args, flag)
			}
		}
		if p.OnWithdraw != "" {
			args = append(args, "--on-withdraw", p.OnWithdraw)
		}
		must(owner(args...), "purpose "+p.ID)
	}
	var listed []client.Purpose
	if err := json.Unmarshal([]byte(must(owner("consent", "purpose", "list", "acme", "--format", "json"), "purpose list").Stdout), &listed); err != nil || len(listed) != len(purposes) {
		t.Fatalf("purposes: %d of %d (%v)", len(listed), len(purposes), err)
	}
	must(owner("consent", "kind", "put", "acme", "call-recording", "--purpose", "call-recording"), "blob kind")

	// guest-1 is known to the tenant (a guest record) before the call.
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	must(owner("collection", "put", "acme", "guests", "--file", write("guests.json", `{"fields":[{"name":"name","type":"string","classification":"pii"}]}`)), "collection")
	must(owner("record", "create", "acme", "guests", "--file", write("guest.json", `{"id":"g1","subject":"guest-1","fields":{"name":"Guest One"}}`)), "record")
	// An unknown purpose, and consent of a subject the tenant holds
	// nothing about: refused, nothing recorded.
	refused(owner("consent", "grant", "acme", "guest-1", "no-such-purpose"), "unknown purpose", "(422)", "no-such-purpose")
	refused(owner("consent", "grant", "acme", "nobody", "call-recording"), "missing subject", "(404)", "holds nothing")

	recording := write("call.ogg", "OggS a recorded call of guest-1")
	upload := func() e2e.CLIResult {
		return owner("blob", "upload", "acme", recording, "--subject", "guest-1", "--kind", "call-recording", "--format", "json")
	}
	refused(upload(), "upload without consent", "Consent required (403)", "call-recording")
	beforeGrant := time.Now().UTC()

	var greeting client.Blob
	if err := json.Unmarshal([]byte(must(owner("blob", "upload", "acme", write("greeting.ogg", "OggS this call is recorded, say yes"), "--subject", "guest-1", "--format", "json"), "greeting").Stdout), &greeting); err != nil {
		t.Fatal(err)
	}
	must(owner("consent", "grant", "acme", "guest-1", "call-recording", "--source", "ivr", "--evidence-blob", greeting.ID), "grant")
	var accepted client.Blob
	if err := json.Unmarshal([]byte(must(upload(), "upload with consent").Stdout), &accepted); err != nil || accepted.Kind != "call-recording" {
		t.Fatalf("accepted upload: %+v %v", accepted, err)
	}
	granted := time.Now().UTC()

	const stop = "Please stop recording my calls."
	must(owner("consent", "withdraw", "acme", "guest-1", "call-recording", "--source", "web", "--evidence-text", stop), "withdraw")
	refused(upload(), "upload after the withdrawal", "Consent required (403)", "call-recording")
	refused(owner("blob", "download", "acme", accepted.ID, "--out", filepath.Join(dir, "back.ogg")), "download after the withdrawal", "Consent required (403)", "call-recording")

	state := func(at time.Time) client.ConsentState {
		t.Helper()
		args := []string{"consent", "get", "acme", "guest-1", "--format", "json"}
		if !at.IsZero() {
			args = append(args, "--at", at.Format(time.RFC3339Nano))
		}
		var st client.ConsentState
		if err := json.Unmarshal([]byte(must(owner(args...), "consent get").Stdout), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, c := range []struct {
		name    string
		at      time.Time
		allowed bool
		events  int
	}{{"before the grant", beforeGrant, false, 0}, {"after the grant", granted, true, 1}, {"now", time.Time{}, false, 2}} {
		if st := state(c.at); st.Allowed("call-recording") != c.allowed || st.Events != c.events {
			t.Errorf("%s: %+v, want call-recording allowed %v after %d events", c.name, st, c.allowed, c.events)
		}
	}

	var history []client.ConsentEvent
	if err := json.Unmarshal([]byte(must(owner("consent", "history", "acme", "guest-1", "--format", "json"), "history").Stdout), &history); err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 || history[0].EvidenceBlob != greeting.ID || history[1].EvidenceText != stop || !strings.HasPrefix(history[1].EvidenceDigest, "sha256:h:") {
		t.Fatalf("history: %+v", history)
	}

	// The tenant's chain: every event with its evidence, the reads, and
	// never the evidence text or the subject's id.
	r := must(node.CLI(t, "audit", "list", "--tenant", "acme", "--action", "consent.", "--limit", "1000", "--format", "json"), "audit list")
	var page struct{ Entries []audit.Item }
	if err := json.Unmarshal([]byte(r.Stdout), &page); err != nil {
		t.Fatalf("audit list: %v\n%s", err, r.Stdout)
	}
	found := map[string]audit.Entry{}
	reads := 0
	for _, it := range page.Entries {
		switch e := it.Entry; e.Action {
		case "consent.grant", "consent.withdraw":
			found[e.Action] = e
		case "consent.read":
			reads++
		}
	}
	grant, withdraw := found["consent.grant"], found["consent.withdraw"]
	if grant.Details["evidence"] != "blob:"+greeting.ID || grant.Details["purposes"] != "call-recording" || grant.Details["source"] != "ivr" {
		t.Errorf("consent.grant entry: %+v", grant)
	}
	if withdraw.Details["evidence"] != "text:"+history[1].EvidenceDigest || withdraw.Details["source"] != "web" || withdraw.Target != grant.Target || !strings.HasPrefix(grant.Target, "subject:h:") {
		t.Errorf("consent.withdraw entry: %+v", withdraw)
	}
	if reads < 4 {
		t.Errorf("%d consent.read entries, want one per state and history read", reads)
	}
	if strings.Contains(r.Stdout, stop) || strings.Contains(r.Stdout, "guest-1") {
		t.Errorf("the chain holds the evidence text or the subject's id:\n%s", r.Stdout)
	}
}
