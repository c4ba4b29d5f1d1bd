package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EFieldVisibility: with the built binary, API keys bound to roles
// (custos apikey create --role) read what their role's visibility says
// through the CLI — a Marketing key reads pii masked and sensitive not at
// all (named in withheld), cannot find a guest by email, and reads no
// blob; a QA key reads blob metadata without the content's digest and is
// refused the bytes; a Front-of-house key downloads them.
func TestE2EFieldVisibility(t *testing.T) {
	bin := e2e.Binary(t)
	node := e2e.StartDevNode(t, bin, "e2e-visibility-token")
	dir := node.Dir
	must := e2e.Must(t)
	owner := func(args ...string) e2e.CLIResult { return node.TenantCLI(t, "acme", args...) }
	file := e2e.Files(t, dir)

	must(node.CLI(t, "tenant", "create", "acme"), "tenant create")
	must(owner("collection", "put", "acme", "guests", "--file", file("guests.json", `{"fields":[
		{"name":"email","type":"string","required":true,"classification":"pii","index":true},
		{"name":"diet","type":"string","classification":"sensitive"},
		{"name":"room","type":"string","classification":"internal"}],"subject_required":true}`)), "collection put")
	must(owner("record", "create", "acme", "guests", "--file", file("g1.json", `{"id":"g1","subject":"guest-1","fields":{"email":"Jane@Example.com","diet":"vegan","room":"A-12"}}`)), "record create")
	var bl struct{ ID, SHA256 string }
	r := must(owner("blob", "upload", "acme", file("passport.txt", "passport of Jane"), "--subject", "guest-1", "--type", "text/plain", "--format", "json"), "blob upload")
	if json.Unmarshal([]byte(r.Stdout), &bl) != nil || bl.ID == "" || bl.SHA256 == "" {
		t.Fatalf("blob upload: %v", r)
	}

	as := func(role string) func(args ...string) e2e.CLIResult {
		r := must(node.CLI(t, "apikey", "create", "acme", "--name", role, "--role", role, "--format", "json"), "apikey create --role "+role)
		var k struct{ Token string }
		if json.Unmarshal([]byte(r.Stdout), &k) != nil || !strings.HasPrefix(k.Token, "ck_") {
			t.Fatalf("apikey create --role %s: %v", role, r)
		}
		return func(args ...string) e2e.CLIResult {
			return e2e.RunCLI(t, bin, append([]string{"--addr", "http://" + node.Addr, "--token", k.Token}, args...)...)
		}
	}

	marketing := as("marketing")
	r = must(marketing("record", "get", "acme", "guests", "g1", "--format", "json"), "record get as marketing")
	var rec struct {
		Fields   map[string]string `json:"fields"`
		Masked   []string          `json:"masked"`
		Withheld []string          `json:"withheld"`
	}
	if json.Unmarshal([]byte(r.Stdout), &rec) != nil || rec.Fields["email"] != "J***@E******.c**" || rec.Fields["room"] != "A-12" ||
		strings.Contains(r.Stdout, "vegan") || strings.Join(rec.Withheld, ",") != "diet" || strings.Join(rec.Masked, ",") != "email" {
		t.Errorf("record get as marketing: %v", r)
	}
	if r := marketing("record", "find", "acme", "guests", "email", "jane@example.com"); r.Code == 0 || !strings.Contains(r.Stderr, "(403)") || strings.Contains(r.Stdout, "g1") {
		t.Errorf("record find by email as marketing: %v", r)
	}

	qa := as("qa")
	if r := must(qa("blob", "stat", "acme", bl.ID, "--format", "json"), "blob stat as qa"); strings.Contains(r.Stdout, bl.SHA256) || !strings.Contains(r.Stdout, bl.ID) {
		t.Errorf("blob stat as qa shows the content's digest: %v", r)
	}
	if r := qa("blob", "download", "acme", bl.ID, "--out", "-"); r.Code == 0 || !strings.Contains(r.Stderr, "(403)") || strings.Contains(r.Stdout, "passport") {
		t.Errorf("blob download as qa: %v", r)
	}
	if r := must(as("foh")("blob", "download", "acme", bl.ID, "--out", "-"), "blob download as foh"); r.Stdout != "passport of Jane" {
		t.Errorf("blob download as foh: %v", r)
	}
}
