package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/uitest"
)

// guestsSchema is the collection the data tests use: pii, sensitive and
// internal fields (the internal one is shown in clear even masked).
const guestsSchema = `{"fields":[
 {"name":"email","type":"string","classification":"pii","required":true,"index":true},
 {"name":"notes","type":"string","classification":"sensitive"},
 {"name":"room","type":"string","classification":"internal"}
],"subject_required":true}`

// dataTenant makes a tenant with the guests collection and an Owner
// signed in.
func dataTenant(t *testing.T, n *uitest.Node, id string) (*client.Client, *uitest.Browser) {
	t.Helper()
	api := n.Tenant(t, id)
	if _, err := api.PutCollection(context.Background(), id, "guests", rawJSON(guestsSchema)); err != nil {
		t.Fatalf("collection: %v", err)
	}
	owner := n.User(t, id, "olga", "owner", nil, true)
	return api, n.SignInAt(t, owner, "/ui/t/acme/data")
}

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func record(t *testing.T, api *client.Client, tenant, id, subject, email, room string) {
	t.Helper()
	_, err := api.CreateRecord(context.Background(), tenant, "guests", map[string]any{"id": id, "subject": subject,
		"fields": map[string]any{"email": email, "notes": "note of " + email, "room": room}})
	if err != nil {
		t.Fatalf("record %s: %v", id, err)
	}
}

// TestDataCollections: the list (empty, then with data), creating a
// collection through the form, its page with the schema, a compatible
// change (a new version) and an incompatible one refused with the API's
// problem, its request id and the compatibility rules, the person's text
// kept.
func TestDataCollections(t *testing.T) {
	n := uitest.Start(t)
	api := n.Tenant(t, "acme")
	b := n.SignInAt(t, n.User(t, "acme", "olga", "owner", nil, true), "/ui/t/acme/data")
	ctx := context.Background()

	p := b.Get(t, "/ui/t/acme/data").Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "No collection yet") || !contains(p.Actions(), "PUT /tenants/:id/collections/:name") {
		t.Fatalf("empty list: %s / %v", p.Text(), p.Actions())
	}
	p = b.Post(t, "/ui/t/acme/data", url.Values{"name": {"guests"}, "schema": {guestsSchema}}).Must(t, http.StatusOK)
	if p.Path != "/ui/t/acme/data/guests?done=Collection+guests+created." || !strings.Contains(p.Text(), "email") || !strings.Contains(p.Text(), "sensitive") {
		t.Fatalf("after create: %s: %s", p.Path, p.Text())
	}
	if c, err := api.Collection(ctx, "acme", "guests"); err != nil || c.Version != 1 || len(c.Fields) != 3 {
		t.Fatalf("created: %+v %v", c, err)
	}
	// Again: refused, the form kept.
	p = b.Post(t, "/ui/t/acme/data", url.Values{"name": {"guests"}, "schema": {guestsSchema}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Text(), "change it on its page") {
		t.Fatalf("create twice: %s: %s", p, p.Text())
	}
	if p := b.Post(t, "/ui/t/acme/data", url.Values{"name": {"bad"}, "schema": {"{not json"}}); p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "not a JSON object") {
		t.Fatalf("bad JSON: %s: %s", p, p.Text())
	}
	p = b.Get(t, "/ui/t/acme/data").Must(t, http.StatusOK)
	if !contains(p.Links(), "/ui/t/acme/data/guests") {
		t.Fatalf("list: %v", p.Links())
	}

	// A compatible change: an optional field.
	compatible := strings.Replace(guestsSchema, `"internal"}`, `"internal"},{"name":"vip","type":"bool","classification":"internal"}`, 1)
	p = b.Post(t, "/ui/t/acme/data/guests", url.Values{"version": {"1"}, "schema": {compatible}}).Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "version 2") || !strings.Contains(p.Text(), "vip") {
		t.Fatalf("compatible change: %s", p.Text())
	}
	// An incompatible one: a type change.
	incompatible := strings.Replace(compatible, `"name":"room","type":"string"`, `"name":"room","type":"number"`, 1)
	p = b.Post(t, "/ui/t/acme/data/guests", url.Values{"version": {"2"}, "schema": {incompatible}})
	txt := p.Text()
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(txt, "cannot change from string") || !strings.Contains(txt, "Request id") ||
		!strings.Contains(txt, "Compatibility rules") || !strings.Contains(txt, "may not change a field's type") || !strings.Contains(p.Body, `&#34;type&#34;:&#34;number&#34;`) {
		t.Fatalf("incompatible change: %s:\n%s", p, txt)
	}
	if c, _ := api.Collection(ctx, "acme", "guests"); c.Version != 2 {
		t.Fatalf("refused change made version %d", c.Version)
	}
	// A stale form (someone else changed it): 412.
	if p := b.Post(t, "/ui/t/acme/data/guests", url.Values{"version": {"1"}, "schema": {guestsSchema}}); p.Status != http.StatusPreconditionFailed {
		t.Fatalf("stale form: %s: %s", p, p.Text())
	}
	// A read-only person sees the schema, not the forms.
	ro := n.SignInAt(t, n.User(t, "acme", "rita", "read-only", nil, false), "/ui/t/acme/data")
	p = ro.Get(t, "/ui/t/acme/data/guests").Must(t, http.StatusOK)
	if len(p.Actions()) != 0 || !strings.Contains(p.Text(), "vip") {
		t.Fatalf("read-only: actions %v: %s", p.Actions(), p.Text())
	}
}

// TestDataRecordsMasked: records are listed and shown masked (no clear
// canary anywhere); a reveal needs a reason, shows the clear record and
// writes a record.read entry with the reason, visible in the tenant's
// audit list.
func TestDataRecordsMasked(t *testing.T) {
	n := uitest.Start(t)
	api, b := dataTenant(t, n, "acme")
	ctx := context.Background()
	const canary = "canary.jane@example.com"
	record(t, api, "acme", "g1", "guest-1", canary, "room-101")
	for _, id := range []string{"g2", "g3"} {
		record(t, api, "acme", id, "guest-"+id, id+"@example.org", "room-"+id)
	}

	p := b.Get(t, "/ui/t/acme/data/guests").Must(t, http.StatusOK)
	if strings.Contains(p.Body, canary) || strings.Contains(p.Body, "note of") || !strings.Contains(p.Text(), "room-101") || !contains(p.Links(), "/ui/t/acme/data/guests/g1") {
		t.Fatalf("collection page: %s", p.Text())
	}
	p = b.Get(t, "/ui/t/acme/data/guests/g1").Must(t, http.StatusOK)
	if strings.Contains(p.Body, canary) || !strings.Contains(p.Text(), "c*****.j***@e******.c**") || !contains(p.Actions(), "GET /tenants/:id/collections/:name/records/:rid") {
		t.Fatalf("record page: %s", p.Text())
	}
	// No reason: refused, still masked.
	p = b.Post(t, "/ui/t/acme/data/guests/g1/reveal", url.Values{"reason": {"  "}})
	if p.Status != http.StatusBadRequest || strings.Contains(p.Body, canary) || !strings.Contains(p.Text(), "Say why") {
		t.Fatalf("reveal without a reason: %s: %s", p, p.Text())
	}
	if p := b.Post(t, "/ui/t/acme/data/guests/g1/reveal", url.Values{"reason": {strings.Repeat("x", 201)}}); p.Status != http.StatusBadRequest || strings.Contains(p.Body, canary) {
		t.Fatalf("reveal with a long reason: %s", p)
	}
	const why = "Guest asked to confirm the e-mail on file (ticket 77)"
	p = b.Post(t, "/ui/t/acme/data/guests/g1/reveal", url.Values{"reason": {why}}).Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), canary) || !strings.Contains(p.Text(), "note of "+canary) || !strings.Contains(p.Text(), why) {
		t.Fatalf("revealed: %s", p.Text())
	}
	if cc := p.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("revealed page Cache-Control %q", cc)
	}
	var auditLink string
	for _, l := range p.Links() {
		if strings.HasPrefix(l, "/ui/t/acme/audit?") {
			auditLink = l
		}
	}
	if auditLink == "" {
		t.Fatalf("the revealed page has no link to the record's reads: %v", p.Links())
	}
	// One of the listed reads is the reveal: its entry's page shows the
	// reason.
	a := b.Get(t, auditLink).Must(t, http.StatusOK)
	var entries []string
	for _, l := range a.Links() {
		if rest, ok := strings.CutPrefix(l, "/ui/t/acme/audit/entry/"); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			entries = append(entries, l)
		}
	}
	if len(entries) == 0 || !strings.Contains(a.Text(), "record:guests/g1") {
		t.Fatalf("the tenant's audit list (%s) lists no read of g1:\n%s", auditLink, a.Text())
	}
	found := false
	for _, l := range entries {
		if e := b.Get(t, l).Must(t, http.StatusOK); strings.Contains(e.Text(), "record.read") && strings.Contains(e.Text(), why) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit entry of %v shows the reveal's reason", entries)
	}
	page, err := api.Audit(ctx, "acme", client.AuditFilter{Action: "record.read", Target: "record:guests/g1", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range page.Entries {
		if e.Entry.Details["masked"] == "false" {
			reasons = append(reasons, e.Entry.Details["reason"])
		}
	}
	if len(reasons) != 1 || reasons[0] != why {
		t.Fatalf("clear reads of g1 in the audit list, by reason: %q", reasons)
	}
}

// TestDataSubject: a subject's page holds its records (masked), blobs,
// consent and open requests, and nothing of another subject.
func TestDataSubject(t *testing.T) {
	n := uitest.Start(t)
	api, b := dataTenant(t, n, "acme")
	ctx := context.Background()
	record(t, api, "acme", "a1", "subj-a", "a@example.com", "canary-room-A")
	record(t, api, "acme", "b1", "subj-b", "b@example.com", "canary-room-B")
	blobA, err := api.UploadBlob(ctx, "acme", client.BlobUpload{Body: strings.NewReader("voice A"), Size: 7, ContentType: "audio/ogg", Subject: "subj-a", SHA256: sum("voice A")})
	if err != nil {
		t.Fatal(err)
	}
	blobB, err := api.UploadBlob(ctx, "acme", client.BlobUpload{Body: strings.NewReader("voice B"), Size: 7, ContentType: "audio/ogg", Subject: "subj-b", SHA256: sum("voice B")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreatePurpose(ctx, "acme", client.NewPurpose{ID: "marketing", Description: "Offers", Basis: "consent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Grant(ctx, "acme", "subj-a", client.ConsentChange{Purposes: []string{"marketing"}, Source: "api"}); err != nil {
		t.Fatal(err)
	}
	reqA, err := api.CreateDSR(ctx, "acme", client.NewDSR{Kind: "access", Subject: "subj-a"})
	if err != nil {
		t.Fatal(err)
	}
	reqB, err := api.CreateDSR(ctx, "acme", client.NewDSR{Kind: "access", Subject: "subj-b"})
	if err != nil {
		t.Fatal(err)
	}

	p := b.Get(t, "/ui/t/acme/subjects?sid=subj-a").Must(t, http.StatusOK)
	if p.Path != "/ui/t/acme/subjects/subj-a" {
		t.Fatalf("search went to %s", p.Path)
	}
	txt := p.Text()
	for _, want := range []string{"canary-room-A", "a1", blobA.ID, "marketing", "allowed", reqA.ID, "Open requests", "Consent"} {
		if !strings.Contains(txt, want) {
			t.Errorf("subject page lacks %q", want)
		}
	}
	for _, not := range []string{"canary-room-B", "b1", blobB.ID, reqB.ID, "a@example.com"} {
		if strings.Contains(p.Body, not) {
			t.Errorf("subject page of subj-a holds %q", not)
		}
	}
	// Nothing held: the page says so and still shows consent.
	p = b.Get(t, "/ui/t/acme/subjects/nobody-here").Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "holds no record") || !strings.Contains(p.Text(), "Consent") {
		t.Fatalf("unknown subject: %s", p.Text())
	}
	// A role that reads records but neither consent nor requests sees
	// only its sections.
	coach := n.SignInAt(t, n.User(t, "acme", "cole", "qa", nil, false), "/ui/t/acme/data")
	p = coach.Get(t, "/ui/t/acme/subjects/subj-a")
	if p.Status == http.StatusOK && strings.Contains(p.Text(), "Open requests") {
		t.Fatalf("qa sees requests: %s", p.Text())
	}
	if p := b.Get(t, "/ui/t/acme/subjects?sid=bad%2Fid"); p.Status != http.StatusBadRequest {
		t.Fatalf("bad subject id: %s", p)
	}
}
