package consent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
)

// A withdrawal of a purpose whose rule is erase or anonymise leaves a
// mark in its own transaction; keep leaves none; a withdrawal of all
// marks every consent or legitimate-interest purpose whose rule is not
// keep; the consumer deletes marks with MarkDoneOps in its transaction.
func TestWithdrawalMarks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for id, rule := range map[string]string{"call-recording": consent.OnWithdrawErase, "user-research": consent.OnWithdrawAnonymise} {
		p, err := e.svc.Purpose(ctx, owner, "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		in := consent.PurposeInput{ID: id, Description: p.Description, Basis: p.Basis, Required: p.Required, DefaultOn: p.DefaultOn, Sale: p.Sale, OnWithdraw: rule}
		if p, err = e.svc.UpdatePurpose(ctx, owner, "acme", in, 0); err != nil || p.OnWithdraw != rule {
			t.Fatalf("%s: %+v %v", id, p, err)
		}
	}
	if _, err := e.svc.UpdatePurpose(ctx, owner, "acme", consent.PurposeInput{ID: "error-tracking", Description: "x", Basis: consent.BasisConsent, OnWithdraw: "shred"}, 0); !errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("an unknown rule: %v", err)
	}
	withdraw := func(subject string, all bool, purposes ...string) {
		t.Helper()
		if _, err := e.svc.Withdraw(ctx, owner, "acme", consent.Input{Subject: subject, Purposes: purposes, All: all, Source: consent.SourceWeb}); err != nil {
			t.Fatal(err)
		}
	}
	withdraw("guest-1", false, "error-tracking") // keep: no mark
	if ms, err := e.svc.WithdrawalMarks(ctx, "acme", 0); err != nil || len(ms) != 0 {
		t.Fatalf("marks after a keep withdrawal: %+v %v", ms, err)
	}
	withdraw("guest-1", false, "call-recording")
	e.clock.set(march1.Add(time.Hour))
	withdraw("guest-2", true)
	ms, err := e.svc.WithdrawalMarks(ctx, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ subject, purpose, rule string }
	want := []got{{"guest-1", "call-recording", "erase"}, {"guest-2", "call-recording", "erase"}, {"guest-2", "user-research", "anonymise"}}
	if len(ms) != len(want) {
		t.Fatalf("marks: %+v", ms)
	}
	for i, m := range ms {
		g := got{m.Subject, m.Purpose, m.Rule}
		if i == 0 && g != want[0] || i > 0 && g != want[1] && g != want[2] || m.Token == "" || m.Seq == 0 {
			t.Errorf("mark %d: %+v", i, m)
		}
	}
	if first, err := e.svc.WithdrawalMarks(ctx, "acme", 1); err != nil || len(first) != 1 || first[0].Subject != "guest-1" {
		t.Errorf("the oldest mark: %+v %v", first, err)
	}
	// The consumer's transaction deletes what it carried out.
	b := tenancy.New(e.store)
	res, err := b.Scope("acme").Apply(ctx, &tenancy.Txn{Ops: e.svc.MarkDoneOps(ms[0])})
	if err != nil || !res.Applied {
		t.Fatalf("done: %+v %v", res, err)
	}
	if left, err := e.svc.WithdrawalMarks(ctx, "acme", 0); err != nil || len(left) != 2 {
		t.Errorf("after done: %+v %v", left, err)
	}
	// An erasure drops the subject's marks with its ledger.
	ops, _, err := e.svc.EraseOps(ctx, "acme", "guest-2")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := b.Scope("acme").Apply(ctx, &tenancy.Txn{Ops: ops}); err != nil || !res.Applied {
		t.Fatalf("erase: %+v %v", res, err)
	}
	if left, err := e.svc.WithdrawalMarks(ctx, "acme", 0); err != nil || len(left) != 0 {
		t.Errorf("after the erasure: %+v %v", left, err)
	}
}

// Blob kinds: defined with the tenant's purposes only; RequireKind
// refuses an upload without consent and a read after a withdrawal, and a
// kind the tenant does not define.
func TestBlobKinds(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.svc.PutKind(ctx, owner, "acme", "call-recording", []string{"call-recording", "nope"}); !errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("a kind naming no purpose: %v", err)
	}
	if _, err := e.svc.PutKind(ctx, stranger, "acme", "call-recording", nil); !errors.Is(err, consent.ErrNoTenant) {
		t.Fatalf("another tenant's principal: %v", err)
	}
	k, err := e.svc.PutKind(ctx, owner, "acme", "call-recording", []string{"call-recording"})
	if err != nil || k.Version != 1 {
		t.Fatalf("put: %+v %v", k, err)
	}
	var re *consent.RequiredError
	if err := e.svc.RequireKind(ctx, "acme", "guest-1", "call-recording", false); !errors.As(err, &re) || re.Purpose != "call-recording" || re.Reason != consent.ReasonNotGranted {
		t.Fatalf("upload without consent: %v", err)
	}
	if err := e.svc.RequireKind(ctx, "acme", "guest-1", "call-recording", true); err != nil {
		t.Fatalf("a read before any decision: %v", err)
	}
	if err := e.svc.RequireKind(ctx, "acme", "", "call-recording", false); err != nil {
		t.Fatalf("no subject: %v", err)
	}
	if err := e.svc.RequireKind(ctx, "acme", "guest-1", "voicemail", false); !errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("an unknown kind: %v", err)
	}
	if _, err := e.svc.Grant(ctx, owner, "acme", consent.Input{Subject: "guest-1", Purposes: []string{"call-recording"}, Source: consent.SourceIVR}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RequireKind(ctx, "acme", "guest-1", "call-recording", false); err != nil {
		t.Fatalf("upload with consent: %v", err)
	}
	if _, err := e.svc.Withdraw(ctx, owner, "acme", consent.Input{Subject: "guest-1", Purposes: []string{"call-recording"}, Source: consent.SourceWeb}); err != nil {
		t.Fatal(err)
	}
	for _, read := range []bool{false, true} {
		if err := e.svc.RequireKind(ctx, "acme", "guest-1", "call-recording", read); !errors.As(err, &re) || re.Reason != consent.ReasonWithdrawn {
			t.Errorf("after the withdrawal (read %v): %v", read, err)
		}
	}
	ks, err := e.svc.Kinds(ctx, owner, "acme")
	if err != nil || len(ks) != 1 || ks[0].Kind != "call-recording" {
		t.Errorf("kinds: %+v %v", ks, err)
	}
}

// TestClusterEnforcement: on a 3-node cluster, a blob kind defined and a
// grant made through one node allow the upload through every node; the
// withdrawal through another refuses it on every node at once (Require
// reads linearizably) and its mark is listed through every node; neither
// the subject's id nor the withdrawal's evidence text reaches any node's
// files in the clear (the mark holds the id sealed).
func TestClusterEnforcement(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewCluster(t, 3)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	svcs := make([]*consent.Service, len(c.Nodes))
	for i, n := range c.Nodes {
		b := tenancy.New(n)
		keys := hierarchy(t, b, id)
		if i == 0 {
			if _, err := tenants.New(b, storetest.Region, tenants.WithKeys(keys)).Create(ctx, operator, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
				t.Fatal(err)
			}
		}
		svcs[i] = consent.New(b, keys, nil)
	}
	createFixture(t, svcs[0])
	rec := fixture[len(fixture)-1]
	rec.OnWithdraw = consent.OnWithdrawErase
	if _, err := svcs[1].UpdatePurpose(ctx, owner, "acme", rec, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs[2].PutKind(ctx, owner, "acme", "call-recording", []string{rec.ID}); err != nil {
		t.Fatal(err)
	}
	const subject, evidence = "canary-caller-7d2e", "canary-evidence-please-stop-9f1a"
	if _, err := svcs[0].Grant(ctx, owner, "acme", consent.Input{Subject: subject, Purposes: []string{rec.ID}, Source: consent.SourceIVR}); err != nil {
		t.Fatal(err)
	}
	for i, s := range svcs {
		if err := s.RequireKind(ctx, "acme", subject, "call-recording", false); err != nil {
			t.Errorf("node %d after the grant: %v", i+1, err)
		}
	}
	if _, err := svcs[2].Withdraw(ctx, owner, "acme", consent.Input{Subject: subject, Purposes: []string{rec.ID}, Source: consent.SourceWeb,
		Evidence: consent.Evidence{Text: evidence}}); err != nil {
		t.Fatal(err)
	}
	var re *consent.RequiredError
	for i, s := range svcs {
		if err := s.RequireKind(ctx, "acme", subject, "call-recording", false); !errors.As(err, &re) || re.Reason != consent.ReasonWithdrawn {
			t.Errorf("node %d after the withdrawal: %v", i+1, err)
		}
		ms, err := s.WithdrawalMarks(ctx, "acme", 0)
		if err != nil || len(ms) != 1 || ms[0].Subject != subject || ms[0].Rule != consent.OnWithdrawErase {
			t.Errorf("node %d marks: %+v %v", i+1, ms, err)
		}
	}
	for _, canary := range []string{subject, evidence} {
		if found := testkit.FilesHolding(t, []byte(canary), c.DataDirs...); len(found) > 0 {
			t.Errorf("%q in the clear in %v", canary, found)
		}
	}
}
