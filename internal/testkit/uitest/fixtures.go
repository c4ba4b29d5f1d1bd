package uitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
)

// Fixtures are one tenant's worth of everything the UI's pages name in
// their paths — a collection, a record, its subject, a blob, a
// data-subject request, a purpose, a user with a session, an API key, a
// custom role, a break-glass grant, single sign-on settings — so that a test can open every page
// of ui.Pages() (the role matrix, the benchmarks) with real values for
// :tenant, :name, :rid and the others.
type Fixtures struct {
	Tenant     string
	Collection string // "guests"
	Record     string
	Subject    string
	Blob       string
	Request    string // a data-subject request (access) of Subject
	Purpose    string
	User       string // a Front-of-house user's id
	Session    string // one of User's sessions
	APIKey     string // an API key's id
	Role       string // a custom role's name
	Grant      string // a break-glass grant (requested, not approved)
}

// GuestsSchema is the fixtures' collection: a pii, an enum, a sensitive
// field; records belong to subjects.
const GuestsSchema = `{"fields":[
 {"name":"email","type":"string","required":true,"classification":"pii","index":true},
 {"name":"stay","type":"enum","classification":"internal","values":["short","long"]},
 {"name":"notes","type":"json","classification":"sensitive"}],
 "retention_days":730,"subject_required":true}`

// Fixtures creates tenant (with Tenant) and its fixtures.
func (n *Node) Fixtures(t testing.TB, tenant string) *Fixtures {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner := n.Tenant(t, tenant)
	f := &Fixtures{Tenant: tenant, Collection: "guests", Record: "r1", Subject: "guest-1", Purpose: "newsletter", Role: "night-desk"}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("fixtures of %s: %s: %v", tenant, what, err)
		}
	}
	_, err := owner.PutCollection(ctx, tenant, f.Collection, json.RawMessage(GuestsSchema))
	must("collection", err)
	_, err = owner.CreateRecord(ctx, tenant, f.Collection, map[string]any{"id": f.Record, "subject": f.Subject,
		"attributes": map[string]string{"property": "villa-a"},
		"fields":     map[string]any{"email": "guest-1@villas.test", "stay": "short", "notes": map[string]any{"diet": "vegetarian"}}})
	must("record", err)
	body := []byte("RIFF\x24\x00\x00\x00WAVEfmt fixture")
	bl, err := owner.UploadBlob(ctx, tenant, client.BlobUpload{Body: bytes.NewReader(body), Size: int64(len(body)), ContentType: "audio/wav", Subject: f.Subject,
		Attributes: map[string]string{"property": "villa-a"}}) // in the scoped Concierge's scope, like the record
	must("blob", err)
	f.Blob = bl.ID
	_, err = owner.CreatePurpose(ctx, tenant, client.NewPurpose{ID: f.Purpose, Description: "The monthly newsletter", Basis: "consent"})
	must("purpose", err)
	_, err = owner.Grant(ctx, tenant, f.Subject, client.ConsentChange{Purposes: []string{f.Purpose}, Source: "web"})
	must("consent", err)
	dsr, err := owner.CreateDSR(ctx, tenant, client.NewDSR{Kind: "access", Subject: f.Subject})
	must("request", err)
	f.Request = dsr.ID
	_, err = owner.CreateRole(ctx, tenant, client.CustomRole{Name: f.Role, Title: "Night desk",
		Permissions: []string{"collections:read", "records:read", "records:update", "audit:read"},
		Visibility:  map[string]string{"pii": "clear", "sensitive": "masked", "internal": "clear"}})
	must("custom role", err)
	u := n.User(t, tenant, "fixture-foh", "foh", nil, false)
	f.User = u.ID
	sessions, err := owner.UserSessions(ctx, tenant, u.ID)
	must("sessions", err)
	if len(sessions) == 0 {
		t.Fatalf("fixtures of %s: the user has no session", tenant)
	}
	f.Session = sessions[0].ID
	// Single sign-on settings (never used to sign in here: the issuer is
	// not reached until a sign-in or a test starts).
	_, err = owner.ConfigureSSO(ctx, tenant, client.SSOSettings{Issuer: "https://idp.villas.test", ClientID: "custos",
		RedirectURL: n.URL + "/ui/sso/callback", Mappings: []client.SSOMapping{{Claim: "groups", Value: "desk", Role: "foh"}}})
	must("single sign-on", err)
	k, err := owner.CreateAPIKey(ctx, tenant, client.NewAPIKey{Name: "fixture-reader", Role: "read-only"})
	must("API key", err)
	f.APIKey = k.ID
	g, err := n.API().RequestBreakGlass(ctx, tenant, "fixture: investigating a support case", time.Hour)
	must("break-glass grant", err)
	f.Grant = g.ID
	return f
}

// Fill replaces the parameters of a UI path (fiber's syntax, below /ui)
// with the fixtures' values. A parameter is looked up with the segment
// before it first ("requests/:rid" is the request, ":rid" alone the
// record); one it does not know is an error, so that a new page with a
// new parameter is noticed rather than skipped.
func (f *Fixtures) Fill(path string) (string, error) {
	byContext := map[string]string{
		"requests/:rid": f.Request, "requests/:id": f.Request, "dsr/:rid": f.Request,
		"sessions/:sid": f.Session, "sessions/:session": f.Session,
		"people/:uid": f.User, "users/:uid": f.User,
		"roles/:name": f.Role, "roles/:role": f.Role,
		"apikeys/:kid": f.APIKey, "apikeys/:id": f.APIKey,
		"breakglass/:gid": f.Grant, "breakglass/:id": f.Grant,
		"purposes/:pid": f.Purpose, "consent/:pid": f.Purpose, "consent/:sid": f.Subject,
		"blobs/:bid": f.Blob, "blobs/:id": f.Blob,
		"subjects/:sid": f.Subject, "subject/:sid": f.Subject,
		"data/:name": f.Collection, "collections/:name": f.Collection,
	}
	byName := map[string]string{
		":tenant": f.Tenant, ":name": f.Collection, ":collection": f.Collection,
		":rid": f.Record, ":record": f.Record, ":sid": f.Subject, ":subject": f.Subject,
		":bid": f.Blob, ":uid": f.User, ":kid": f.APIKey, ":pid": f.Purpose, ":gid": f.Grant,
		":role": f.Role, ":session": f.Session,
		":seq": "1", // an audit entry: the first of every chain
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, ":") {
			continue
		}
		name := strings.TrimSuffix(s, "?")
		v, ok := "", false
		if i > 0 {
			v, ok = byContext[segs[i-1]+"/"+name]
		}
		if !ok {
			v, ok = byName[name]
		}
		if !ok {
			return "", fmt.Errorf("uitest: no fixture for %s in %s: add one to Fixtures.Fill", name, path)
		}
		segs[i] = url.PathEscape(v)
	}
	return strings.Join(segs, "/"), nil
}
