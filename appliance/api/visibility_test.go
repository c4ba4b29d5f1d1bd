package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/identity/roles"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// visGuests is a collection with an indexed field of each classification
// and fields of every type, so that each role's reading of each
// classification and each type's masked form are both seen.
const visGuests = `{"fields":[
 {"name":"email","type":"string","classification":"pii","index":true},
 {"name":"phone","type":"string","classification":"pii"},
 {"name":"birth_year","type":"number","classification":"pii"},
 {"name":"diet","type":"enum","classification":"sensitive","index":true,"values":["vegan","halal","none"]},
 {"name":"card_last4","type":"number","classification":"sensitive"},
 {"name":"medical","type":"json","classification":"sensitive"},
 {"name":"allergy","type":"string","classification":"sensitive"},
 {"name":"room","type":"string","classification":"internal","index":true},
 {"name":"vip","type":"bool","classification":"internal"},
 {"name":"arrival","type":"time","classification":"internal"}],
 "subject_required":true}`

// visFields are the record's values (allergy is left without one: a
// withheld field is listed whether or not the record holds it).
var visFields = map[string]string{
	"email":      `"Jane.Doe@Example.com"`,
	"phone":      `"+41 79 555 01 23"`,
	"birth_year": `1984`,
	"diet":       `"vegan"`,
	"card_last4": `4242`,
	"medical":    `{"condition":"asthma"}`,
	"room":       `"A-12"`,
	"vip":        `true`,
	"arrival":    `"2026-12-03T15:00:00Z"`,
}

// visClass is each field's classification, as visGuests says.
func visClass(t *testing.T) map[string]roles.Classification {
	var def struct {
		Fields []struct{ Name, Classification string }
	}
	if err := json.Unmarshal([]byte(visGuests), &def); err != nil {
		t.Fatal(err)
	}
	out := map[string]roles.Classification{}
	for _, f := range def.Fields {
		out[f.Name] = roles.Classification(f.Classification)
	}
	return out
}

type visRecord struct {
	ID       string                     `json:"id"`
	Fields   map[string]json.RawMessage `json:"fields"`
	Masked   []string                   `json:"masked,omitempty"`
	Withheld []string                   `json:"withheld,omitempty"`
}

// visRole is a principal under test: a built-in role's key, or an old
// key (which reads with roles.FromAPIKey's role).
type visRole struct {
	name  string
	role  roles.Role
	token string
}

// TestFieldVisibility checks, for an API key bound to each built-in
// tenant role (and an old read key), through the real API, that each
// field of a record reads exactly as the role's visibility of its
// classification says (roles table, not a copy): clear, masked (a string
// other than the value, named in masked) or absent (named in withheld,
// with every field of its classification, valued or not) — on a read, a
// masked read (mask=true only masks further), the records a find by
// blind index, by attribute and a plain listing lead to, and the subject
// view, which carries no values at all. A find by a blind-indexed field
// is answered iff the role reads its classification in clear; blob bytes
// iff the role reads roles.BlobClass in clear, the metadata regardless.
// testdata/visibility.golden holds the record as each role reads it.
func TestFieldVisibility(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", visGuests); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	var fields []string
	for name, v := range visFields {
		fields = append(fields, fmt.Sprintf("%q:%s", name, v))
	}
	slices.Sort(fields)
	body := `{"id":"g1","subject":"guest-17","attributes":{"property":"villa-a"},"fields":{` + strings.Join(fields, ",") + `}}`
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", body); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	const blobBytes = "RIFF\x24\x00\x00\x00WAVEfmt passport"
	var bl struct{ ID, SHA256 string }
	if r := e.do("POST", "/v1/tenants/acme/blobs?subject=guest-17", blobBytes, withHeader("Content-Type", "audio/wav")); r.status != http.StatusCreated {
		t.Fatalf("blob: %d %s", r.status, r.body)
	} else {
		r.json(t, &bl)
	}
	class := visClass(t)

	var subjects []visRole
	for _, name := range apikeys.Roles() {
		r, _ := roles.Builtin(name)
		subjects = append(subjects, visRole{name, r, e.createKey(t, "acme", `{"name":"`+name+`","role":"`+name+`"}`).Token})
	}
	old, err := roles.FromAPIKey([]string{apikeys.PermRead})
	if err != nil {
		t.Fatal(err)
	}
	subjects = append(subjects, visRole{"old read key", old, e.createKey(t, "acme", `{"name":"old","permissions":["read"]}`).Token})

	var golden bytes.Buffer
	for _, s := range subjects {
		as := withHeader("Authorization", "Bearer "+s.token)
		if !s.role.Allows(roles.P(roles.Records, roles.Read)) {
			t.Fatalf("%s: every tenant role reads records; this test assumes it", s.name)
		}
		check := func(how string, masked bool) visRecord {
			t.Helper()
			q := ""
			if masked {
				q = "?mask=true"
			}
			r := e.do("GET", "/v1/tenants/acme/collections/guests/records/g1"+q, "", as)
			if r.status != http.StatusOK {
				t.Fatalf("%s, %s: %d %s", s.name, how, r.status, r.body)
			}
			var rec visRecord
			r.json(t, &rec)
			checkVisible(t, s.name+", "+how, s.role, class, rec, masked)
			return rec
		}
		rec := check("get", false)
		check("get with mask=true", true)
		b, _ := json.Marshal(rec)
		fmt.Fprintf(&golden, "%s\t%s\n", s.name, b)

		// Finds lead to records read as above; a find by a blind index
		// only for a classification read in clear.
		for _, q := range []struct{ field, value string }{{"email", `"jane.doe@example.com"`}, {"diet", `"vegan"`}, {"room", `"a-12"`}} {
			r := e.do("GET", "/v1/tenants/acme/collections/guests/records?field="+q.field+"&value="+url.QueryEscape(q.value), "", as)
			if s.role.Visibility(class[q.field]) != roles.Clear {
				checkProblem(t, r, http.StatusForbidden, "withheld", "/v1/tenants/acme/collections/guests/records")
				continue
			}
			if ids := visIDs(t, r); !slices.Equal(ids, []string{"g1"}) {
				t.Errorf("%s: find by %s: %d %s", s.name, q.field, r.status, r.body)
			}
			check("found by "+q.field, false)
		}
		for _, q := range []string{"?attribute=property:villa-a", ""} {
			r := e.do("GET", "/v1/tenants/acme/collections/guests/records"+q, "", as)
			if ids := visIDs(t, r); !slices.Equal(ids, []string{"g1"}) {
				t.Errorf("%s: list %q: %d %s", s.name, q, r.status, r.body)
			}
			check("listed by "+q, false)
		}

		// The subject view names records and blobs, never a value.
		if s.role.Allows(roles.P(roles.Subjects, roles.Read)) {
			r := e.do("GET", "/v1/tenants/acme/subjects/guest-17", "", as)
			if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"id":"g1"`)) || !bytes.Contains(r.body, []byte(bl.ID)) {
				t.Errorf("%s: subject view: %d %s", s.name, r.status, r.body)
			}
			for name, v := range visFields {
				if bytes.Contains(r.body, []byte(strings.Trim(v, `"`))) {
					t.Errorf("%s: subject view holds %s's value: %s", s.name, name, r.body)
				}
			}
		}

		// Blob bytes for roles reading BlobClass in clear; metadata for
		// every role reading blobs.
		if s.role.Allows(roles.P(roles.Blobs, roles.Read)) {
			// The content's digest is the content's: with it, metadata,
			// listings and the subject view answer it, without it none.
			reads := s.role.Visibility(roles.BlobClass) == roles.Clear
			for _, path := range []string{"/blobs/" + bl.ID + "/metadata", "/blobs", "/blobs?subject=guest-17", "/subjects/guest-17"} {
				r := e.do("GET", "/v1/tenants/acme"+path, "", as)
				if r.status == http.StatusForbidden && strings.HasPrefix(path, "/subjects/") && !s.role.Allows(roles.P(roles.Subjects, roles.Read)) {
					continue
				}
				if r.status != http.StatusOK || bytes.Contains(r.body, []byte(`"sha256"`)) != reads || bytes.Contains(r.body, []byte(bl.SHA256)) != reads {
					t.Errorf("%s: %s (reads content: %v): %d %s", s.name, path, reads, r.status, r.body)
				}
				if path == "/blobs/"+bl.ID+"/metadata" && (r.header.Get("ETag") != "") != reads {
					t.Errorf("%s: metadata ETag %q (reads content: %v)", s.name, r.header.Get("ETag"), reads)
				}
			}
			r := e.do("GET", "/v1/tenants/acme/blobs/"+bl.ID, "", as)
			h := e.do("HEAD", "/v1/tenants/acme/blobs/"+bl.ID, "", as)
			if s.role.Visibility(roles.BlobClass) == roles.Clear {
				if r.status != http.StatusOK || string(r.body) != blobBytes || h.status != http.StatusOK {
					t.Errorf("%s: blob content: %d %q, HEAD %d", s.name, r.status, r.body, h.status)
				}
			} else {
				checkProblem(t, r, http.StatusForbidden, "withheld", "/v1/tenants/acme/blobs/"+bl.ID)
				if h.status != http.StatusForbidden {
					t.Errorf("%s: HEAD of withheld blob content: %d", s.name, h.status)
				}
				if bytes.Contains(r.body, []byte("passport")) {
					t.Errorf("%s: withheld blob content leaked: %s", s.name, r.body)
				}
			}
		}
	}

	path := filepath.Join("testdata", "visibility.golden")
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestFieldVisibility -update writes it)", err)
	}
	if !bytes.Equal(golden.Bytes(), want) {
		t.Errorf("the record as each role reads it changed; review and rerun with -update:\n%s", golden.Bytes())
	}
}

// checkVisible asserts that rec shows each field as role reads its
// classification (masked: as a mask=true read).
func checkVisible(t *testing.T, what string, role roles.Role, class map[string]roles.Classification, rec visRecord, masked bool) {
	t.Helper()
	var wantMasked, wantWithheld []string
	for name, c := range class {
		v := role.Visibility(c)
		if masked && v == roles.Clear && c != roles.Internal {
			v = roles.Masked
		}
		clear, valued := visFields[name]
		got, shown := rec.Fields[name]
		switch v {
		case roles.Clear:
			if valued && (!shown || string(got) != clear) {
				t.Errorf("%s: %s (%s, clear) reads %s, want %s", what, name, c, got, clear)
			}
		case roles.Masked:
			if !valued {
				break
			}
			wantMasked = append(wantMasked, name)
			var s string
			if !shown || json.Unmarshal(got, &s) != nil || string(got) == clear || strings.Contains(string(got), strings.Trim(clear, `"`)) {
				t.Errorf("%s: %s (%s, masked) reads %s (clear: %s)", what, name, c, got, clear)
			}
		default:
			wantWithheld = append(wantWithheld, name)
			if shown {
				t.Errorf("%s: %s (%s, none) reads %s", what, name, c, got)
			}
		}
	}
	slices.Sort(wantMasked)
	slices.Sort(wantWithheld)
	if !slices.Equal(rec.Masked, wantMasked) || !slices.Equal(rec.Withheld, wantWithheld) {
		t.Errorf("%s: masked %v withheld %v, want %v and %v", what, rec.Masked, rec.Withheld, wantMasked, wantWithheld)
	}
}

// visIDs decodes a page of record ids.
func visIDs(t *testing.T, r response) []string {
	t.Helper()
	var page struct {
		IDs []string `json:"ids"`
	}
	if r.status != http.StatusOK {
		return nil
	}
	r.json(t, &page)
	return page.IDs
}

// TestWriteBackUnread: a role that reads sensitive fields masked (Front
// of house) reads a record, edits a field it reads in clear and writes
// the whole record back (PUT), and patches with what it read: the
// masked forms it sends back, and the fields it was not shown, keep
// their stored values — a masked form never becomes a value. A new
// value for a masked field is written. What the writer is answered is
// shown as it reads.
func TestWriteBackUnread(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", visGuests); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	const rec = "/v1/tenants/acme/collections/guests/records/g1"
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","subject":"guest-17","fields":{"email":"jane@example.com","diet":"vegan","card_last4":4242,"allergy":"nuts","room":"A-12"}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	desk := withHeader("Authorization", "Bearer "+e.createKey(t, "acme", `{"name":"desk","role":"foh"}`).Token)
	var read visRecord
	e.do("GET", rec, "", desk).json(t, &read)
	if !slices.Equal(read.Masked, []string{"allergy", "card_last4", "diet"}) {
		t.Fatalf("foh reads %+v", read)
	}
	read.Fields["room"] = json.RawMessage(`"B-7"`)
	delete(read.Fields, "allergy") // as if never shown
	put, _ := json.Marshal(map[string]any{"subject": "guest-17", "fields": read.Fields})
	r := e.do("PUT", rec, string(put), desk)
	var answered visRecord
	if r.status != http.StatusOK || json.Unmarshal(r.body, &answered) != nil || string(answered.Fields["diet"]) != `"*"` || string(answered.Fields["room"]) != `"B-7"` {
		t.Fatalf("foh write-back: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", rec, `{"fields":{"card_last4":"****","diet":"halal"}}`, desk); r.status != http.StatusOK {
		t.Fatalf("foh patch: %d %s", r.status, r.body)
	}
	var owner visRecord
	e.do("GET", rec, "", withHeader("Authorization", "Bearer "+e.createKey(t, "acme", `{"name":"owner","role":"owner"}`).Token)).json(t, &owner)
	want := map[string]string{"email": `"jane@example.com"`, "diet": `"halal"`, "card_last4": `4242`, "allergy": `"nuts"`, "room": `"B-7"`}
	if len(owner.Fields) != len(want) {
		t.Errorf("owner reads %v", owner.Fields)
	}
	for k, v := range want {
		if string(owner.Fields[k]) != v {
			t.Errorf("after foh's writes, %s = %s, want %s", k, owner.Fields[k], v)
		}
	}
}

// TestVisibilityCanaries walks every read operation of openapi.json (GET
// and HEAD: a new route is walked without being listed) with a key bound
// to each built-in tenant role, over a record and a blob holding canary
// values: no answer carries a pii or sensitive value, the blob's bytes or
// their SHA-256 to a role that does not read them in clear — whatever
// the route.
func TestVisibilityCanaries(t *testing.T) {
	e := newEnv(t, api.Options{})
	s := &suspendEnv{t: t, e: e}
	_, ops := loadSpecOps(t)
	e.mustCreate(attackerTenant, "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	const piiCanary, sensitiveCanary, blobCanary = "pii-canary-7f3a@acme.test", "sensitive-canary-91c2", "blob-canary-5d0e"
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"`+aRecord+`","subject":"`+aSubject+`","fields":{"email":"`+piiCanary+`","stay":"long","notes":{"diet":"`+sensitiveCanary+`"}}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	var bl struct{ ID, SHA256 string }
	if r := e.do("POST", "/v1/tenants/acme/blobs?subject="+aSubject, "RIFF\x24\x00\x00\x00WAVEfmt "+blobCanary, withHeader("Content-Type", "audio/wav")); r.status != http.StatusCreated {
		t.Fatalf("blob: %d %s", r.status, r.body)
	} else {
		r.json(t, &bl)
	}
	s.blob = bl.ID
	s.keyOther = e.createKey(t, "acme", `{"name":"other","role":"qa"}`).ID
	tokens := map[string]string{}
	for _, role := range apikeys.Roles() {
		tokens[role] = e.createKey(t, "acme", `{"name":"`+role+`","role":"`+role+`"}`).Token
	}
	s.calls = e.withCallLog()

	walked := 0
	for _, role := range apikeys.Roles() {
		r0, _ := roles.Builtin(role)
		canaries := map[string]bool{
			piiCanary:       r0.Visibility(roles.PII) == roles.Clear,
			sensitiveCanary: r0.Visibility(roles.Sensitive) == roles.Clear,
			blobCanary:      r0.ReadsBlobContent(),
			bl.SHA256:       r0.ReadsBlobContent(),
		}
		seen := map[string]bool{}
		for _, op := range ops {
			if op.method != http.MethodGet && op.method != http.MethodHead {
				continue
			}
			r, _ := s.asKey(op, tokens[role])
			walked++
			for canary, may := range canaries {
				if !bytes.Contains(r.body, []byte(canary)) {
					continue
				}
				seen[canary] = true
				if !may {
					t.Errorf("%s answered a %s key with %q: %d %s", op, role, canary, r.status, r.body)
				}
			}
		}
		// Not blind: what the role reads in clear, some route answers.
		for canary, may := range canaries {
			if may && !seen[canary] {
				t.Errorf("no read answered a %s key with %q, which it reads in clear", role, canary)
			}
		}
	}
	t.Logf("%d reads walked", walked)
}
