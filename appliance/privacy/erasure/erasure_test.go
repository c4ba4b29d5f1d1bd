package erasure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/erasure"
	"github.com/custos/custos/appliance/privacy/receipt"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/sealtest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

var custos = audit.System()

type env struct {
	t       *testing.T
	store   *raftstore.Store
	b       *tenancy.Boundary
	keys    *keyring.Hierarchy
	colls   *collections.Service
	recs    *records.Service
	blobs   *blobs.Service
	consent *consent.Service
	reqs    *requests.Service
	svc     *erasure.Service
	vkey    string
	req     string // the last request made
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	store := storetest.Start(t)
	seal := sealtest.Bootstrap(t, store, "custos-audit-test")
	id, vkey := seal.Identity, seal.VerifierKey
	b := tenancy.New(store)
	keys := seal.Hierarchy(b)
	ten := tenants.New(b, storetest.Region, tenants.WithKeys(keys))
	if _, err := ten.Create(ctx, audit.Principal{Kind: audit.ActorOperator, ID: "operator"}, tenants.CreateInput{ID: "acme", DisplayName: "acme"}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, b: b, keys: keys, colls: collections.New(b, nil), vkey: vkey,
		reqs: requests.New(b, keys)}
	e.recs = records.New(b, keys, e.colls, nil)
	e.blobs = blobs.New(b, keys, e.recs, blobs.Config{}, nil)
	e.consent = consent.New(b, keys, nil)
	e.svc = erasure.New(b, erasure.Deps{Records: e.recs, Blobs: e.blobs, Consent: e.consent, Keys: keys,
		Audit: audit.New(store, []age.Identity{id}, nil), Requests: e.reqs})
	return e
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// seed defines guests, notes (erased with their guest), comments (erased
// with their note: transitive) and bookings (detached from their guest),
// and writes for subjects s1 and s2.
func (e *env) seed() {
	e.t.Helper()
	ctx := context.Background()
	defs := map[string][]collections.Field{
		"guests":   {{Name: "email", Type: collections.TypeString, Classification: collections.ClassPII, Index: true}},
		"notes":    {{Name: "guest", Type: collections.TypeRef, Collection: "guests", OnErase: "erase", Classification: collections.ClassInternal}, {Name: "text", Type: collections.TypeString, Classification: collections.ClassPII, Index: true}},
		"comments": {{Name: "note", Type: collections.TypeRef, Collection: "notes", OnErase: "erase", Classification: collections.ClassInternal}, {Name: "text", Type: collections.TypeString, Classification: collections.ClassPII}},
		"bookings": {{Name: "guest", Type: collections.TypeRef, Collection: "guests", Classification: collections.ClassInternal}, {Name: "room", Type: collections.TypeString, Classification: collections.ClassInternal, Index: true}},
	}
	for name, fields := range defs {
		if _, _, err := e.colls.Put(ctx, custos, "acme", name, collections.Definition{Fields: fields}, 0); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, r := range []struct {
		col, id, subject string
		fields           map[string]json.RawMessage
	}{
		{"guests", "g1", "s1", map[string]json.RawMessage{"email": raw(`"jane@example.com"`)}},
		{"guests", "g2", "s2", map[string]json.RawMessage{"email": raw(`"john@example.com"`)}},
		{"notes", "n1", "", map[string]json.RawMessage{"guest": raw(`"g1"`), "text": raw(`"likes tea"`)}},
		{"notes", "n2", "", map[string]json.RawMessage{"guest": raw(`"g2"`), "text": raw(`"likes coffee"`)}},
		{"comments", "c1", "", map[string]json.RawMessage{"note": raw(`"n1"`), "text": raw(`"indeed"`)}},
		{"bookings", "b1", "s2", map[string]json.RawMessage{"guest": raw(`"g1"`), "room": raw(`"101"`)}},
		{"bookings", "b2", "s1", map[string]json.RawMessage{"guest": raw(`"g1"`), "room": raw(`"102"`)}},
	} {
		if _, err := e.recs.Create(ctx, custos, "acme", r.col, records.Input{ID: r.id, Subject: r.subject, Fields: r.fields}); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, s := range []string{"s1", "s2"} {
		if _, err := e.blobs.Put(ctx, custos, "acme", blobs.Input{Subject: s, ContentType: "audio/wav", Length: 5}, bytes.NewReader([]byte("hello"))); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.consent.CreatePurpose(ctx, custos, "acme", consent.PurposeInput{ID: "call-recording", Description: "calls", Basis: consent.BasisConsent}); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range []string{"s1", "s2"} {
		if _, err := e.consent.Grant(ctx, custos, "acme", consent.Input{Subject: s, Purposes: []string{"call-recording"}, Source: consent.SourceIVR, Evidence: consent.Evidence{Text: "yes, record me"}}); err != nil {
			e.t.Fatal(err)
		}
	}
	e.request("s1")
}

// request makes a verified erasure request of subject and returns its id.
func (e *env) request(subject string) string {
	e.t.Helper()
	ctx := context.Background()
	r, err := e.reqs.Create(ctx, custos, "acme", requests.Input{Kind: requests.Erasure, Subject: subject})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reqs.Transition(ctx, custos, "acme", r.ID, requests.TransitionInput{To: requests.Verified, Evidence: &requests.Evidence{Method: "document", Text: "passport"}}); err != nil {
		e.t.Fatal(err)
	}
	e.req = r.ID
	return r.ID
}

func (e *env) exists(col, id string) bool {
	e.t.Helper()
	_, err := e.recs.Get(context.Background(), custos, "acme", col, id, false)
	if err != nil && !errors.Is(err, records.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

func TestErase(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	entry, err := e.svc.Erase(ctx, custos, "acme", e.req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{erasure.KindRecords: 2, erasure.KindLinked: 2, erasure.KindDetached: 1, erasure.KindBlobs: 1, erasure.KindConsent: 1}
	done, err := e.reqs.Get(ctx, custos, "acme", e.req)
	if err != nil || done.Status != requests.Completed || done.Result == nil || done.Result.Receipt != entry.Receipt || fmt.Sprint(done.Result.Counts) != fmt.Sprint(want) {
		t.Fatalf("request after the erasure: %+v %v", done, err)
	}
	if fmt.Sprint(entry.Counts) != fmt.Sprint(want) || !entry.KeyShredded {
		t.Fatalf("counts %v, shredded %v", entry.Counts, entry.KeyShredded)
	}
	for _, c := range []struct {
		col, id string
		want    bool
	}{{"guests", "g1", false}, {"notes", "n1", false}, {"comments", "c1", false}, {"bookings", "b2", false},
		{"guests", "g2", true}, {"notes", "n2", true}, {"bookings", "b1", true}} {
		if got := e.exists(c.col, c.id); got != c.want {
			t.Errorf("%s/%s exists %v, want %v", c.col, c.id, got, c.want)
		}
	}
	b1, err := e.recs.Get(ctx, custos, "acme", "bookings", "b1", false)
	if err != nil || b1.Fields["guest"] != nil || b1.Version != 2 || string(b1.Fields["room"]) != `"101"` {
		t.Fatalf("detached b1: %+v %v", b1, err)
	}
	if ids, _, err := e.recs.Find(ctx, custos, "acme", "guests", "email", raw(`"jane@example.com"`), "", 10); err != nil || len(ids) != 0 {
		t.Fatalf("find: %v %v", ids, err)
	}
	if _, err := e.recs.Subject(ctx, custos, "acme", "s1"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("subject: %v", err)
	}
	if bl, _, err := e.blobs.List(ctx, custos, "acme", "s1", "", 10); err != nil || len(bl) != 0 {
		t.Fatalf("blobs: %v %v", bl, err)
	}
	if bl, _, _ := e.blobs.List(ctx, custos, "acme", "s2", "", 10); len(bl) != 1 {
		t.Fatalf("other subject's blobs: %v", bl)
	}
	if h, err := e.consent.History(ctx, custos, "acme", "s1"); err != nil || len(h) != 0 {
		t.Fatalf("consent history %v %v", h, err)
	}
	if h, _ := e.consent.History(ctx, custos, "acme", "s2"); len(h) != 1 {
		t.Fatalf("other subject's consent %v", h)
	}
	if p, err := e.consent.ErasedProofs(ctx, "acme", "s1"); err != nil || len(p) != 1 || p[0].Purposes[0] != "call-recording" || p[0].EvidenceDigest == "" {
		t.Fatalf("proofs %+v %v", p, err)
	}
	// No bucket named by the subject's id or an erased record's id is left.
	err = e.b.Scope("acme").View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		for _, p := range [][][]byte{raftstore.Path("subjects", "s1"), raftstore.Path("blob_subjects", "s1"), raftstore.Path("refs", "guests", "g1"), raftstore.Path("refs", "notes", "n1")} {
			if r.BucketExists(p) {
				t.Errorf("bucket %q left", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The receipt verifies, and fails when altered.
	rc, err := receipt.VerifyReceipt([]byte(e.vkey), []byte(entry.Receipt))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Request != e.req || rc.Entry != entry.AuditSeq || rc.Subject != entry.Subject || !rc.KeyShredded || len(rc.Counts) != 5 {
		t.Fatalf("receipt %+v", rc)
	}
	altered := strings.Replace(entry.Receipt, "count blobs 1", "count blobs 0", 1)
	if _, err := receipt.VerifyReceipt([]byte(e.vkey), []byte(altered)); err == nil || altered == entry.Receipt {
		t.Fatal("an altered receipt verified")
	}
	// The request is completed: erasing it again is refused, nothing
	// changes.
	var te *requests.TransitionError
	if _, err := e.svc.Erase(ctx, custos, "acme", e.req); !errors.As(err, &te) {
		t.Fatalf("erase a completed request: %v", err)
	}
	ledger, err := e.svc.Ledger(ctx, "acme")
	if err != nil || len(ledger) != 1 || ledger[0].Token == "" || strings.Contains(fmt.Sprint(ledger), "s1") && strings.Contains(ledger[0].Token, "s1") {
		t.Fatalf("ledger %+v %v", ledger, err)
	}
	if got, err := e.svc.Receipt(ctx, "acme", e.req); err != nil || got != entry.Receipt {
		t.Fatalf("receipt read %v", err)
	}
}

func TestEraseBadInput(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	for _, c := range []struct {
		tenant, id string
		want       error
	}{
		{"acme", "no-such", requests.ErrNotFound},
		{"acme", "bad/id", erasure.ErrNotFound},
		{"acme", "", erasure.ErrNotFound},
	} {
		if _, err := e.svc.Erase(ctx, custos, c.tenant, c.id); !errors.Is(err, c.want) {
			t.Errorf("%s/%s: %v, want %v", c.tenant, c.id, err, c.want)
		}
	}
	if _, err := e.svc.Receipt(ctx, "acme", e.req); !errors.Is(err, erasure.ErrNotFound) {
		t.Errorf("receipt before the erasure: %v", err)
	}
	if _, err := e.svc.Ledger(ctx, "nobody"); !errors.Is(err, erasure.ErrNoTenant) {
		t.Errorf("ledger of no tenant: %v", err)
	}
	if !e.exists("guests", "g1") {
		t.Error("bad input erased something")
	}
}

// TestEraseManyInPieces erases a subject whose records need several
// transactions.
func TestEraseManyInPieces(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	for i := range 1500 {
		in := records.Input{ID: fmt.Sprintf("m%d", i), Subject: "s1", Fields: map[string]json.RawMessage{"email": raw(fmt.Sprintf(`"m%d@example.com"`, i))}}
		if _, err := e.recs.Create(ctx, custos, "acme", "guests", in); err != nil {
			t.Fatal(err)
		}
	}
	entry, err := e.svc.Erase(ctx, custos, "acme", e.req)
	if err != nil || entry.Counts[erasure.KindRecords] != 1502 {
		t.Fatalf("%v %v", entry.Counts, err)
	}
	if h, err := e.recs.Holdings(ctx, "acme", "s1"); err != nil || len(h) != 0 {
		t.Fatalf("left %v %v", h, err)
	}
}

// TestReapply erases again a subject whose data came back (a restore from
// an older backup), from the ledger's entries.
func TestReapply(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	if _, err := e.svc.Erase(ctx, custos, "acme", e.req); err != nil {
		t.Fatal(err)
	}
	ledger, err := e.svc.Ledger(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.recs.Create(ctx, custos, "acme", "guests", records.Input{ID: "g1", Subject: "s1", Fields: map[string]json.RawMessage{"email": raw(`"jane@example.com"`)}}); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.Reapply(ctx, custos, "acme", ledger)
	if err != nil || n != 1 {
		t.Fatalf("reapply %d %v", n, err)
	}
	if e.exists("guests", "g1") || !e.exists("guests", "g2") {
		t.Fatal("reapply did not erase exactly the subject")
	}
	if n, err := e.svc.Reapply(ctx, custos, "acme", ledger); err != nil || n != 0 {
		t.Fatalf("second reapply %d %v", n, err)
	}
}

// TestEraseResumes: an erasure that stopped right after its first
// transaction (the key shredded; nothing removed) is finished by running
// it again.
func TestEraseResumes(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	if _, err := e.reqs.Begin(ctx, custos, "acme", e.req, requests.Erasure); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ShredOnly(ctx, custos, "acme", "s1", e.req); err != nil {
		t.Fatal(err)
	}
	// Unreadable already: the values do not open under any key now.
	if _, err := e.recs.Get(ctx, custos, "acme", "guests", "g1", false); !errors.Is(err, records.ErrIntegrity) {
		t.Fatalf("g1 after the shred: %v", err)
	}
	if _, err := e.svc.Receipt(ctx, "acme", e.req); !errors.Is(err, erasure.ErrNotFound) {
		t.Fatalf("a receipt before the erasure completed: %v", err)
	}
	entry, err := e.svc.Erase(ctx, custos, "acme", e.req)
	if err != nil {
		t.Fatal(err)
	}
	if !entry.KeyShredded || entry.Phase != erasure.PhaseCompleted || entry.Counts[erasure.KindRecords] != 2 || entry.Counts[erasure.KindBlobs] != 1 {
		t.Fatalf("resumed erasure %+v", entry)
	}
	for _, c := range [][2]string{{"guests", "g1"}, {"notes", "n1"}, {"comments", "c1"}, {"bookings", "b2"}} {
		if e.exists(c[0], c[1]) {
			t.Errorf("%s/%s left", c[0], c[1])
		}
	}
	if h, err := e.recs.Holdings(ctx, "acme", "s1"); err != nil || len(h) != 0 {
		t.Fatalf("holdings %v %v", h, err)
	}
	if _, err := receipt.VerifyReceipt([]byte(e.vkey), []byte(entry.Receipt)); err != nil {
		t.Fatal(err)
	}
}
