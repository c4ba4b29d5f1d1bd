package requests_test

import (
	"errors"
	"testing"
	"time"

	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/tenants"
)

// A request goes received → verified → in progress → completed, read on
// every node; each step is one entry of the tenant's chain.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, tenants.Patch{TimeZone: ptr("Europe/Berlin")})
	seq := e.head(t)
	r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != requests.Received || r.Subject != "guest-1" || r.Regulation != "gdpr" {
		t.Fatalf("created %+v", r)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if got := r.Due.In(berlin).Format(time.DateOnly); got != "2026-04-03" {
		t.Errorf("due %s, want 2026-04-03 (GDPR Art. 12(3): one month)", got)
	}
	if _, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-1"}); !errors.Is(err, requests.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	steps := []requests.TransitionInput{
		{To: requests.Verified, Evidence: &requests.Evidence{Method: "document", Text: "passport checked at the desk"}},
		{To: requests.InProgress},
		{To: requests.Completed, Note: "letter sent"},
	}
	for _, in := range steps {
		if r, err = e.svc.Transition(ctx(t), compliance, "acme", r.ID, in); err != nil {
			t.Fatalf("%s: %v", in.To, err)
		}
	}
	for i, svc := range e.svcs {
		got, err := svc.Get(ctx(t), compliance, "acme", r.ID)
		if err != nil || got.Status != requests.Completed || got.Subject != "guest-1" || got.Verification == nil || got.Verification.Evidence != "passport checked at the desk" {
			t.Errorf("node %d: %+v, %v", i+1, got, err)
		}
	}
	entries := e.chain(t, seq+1)
	var actions []string
	for _, en := range entries {
		actions = append(actions, en.Action)
	}
	want := []string{"request.create", "request.verify", "request.start", "request.complete"}
	if len(actions) != len(want) {
		t.Fatalf("chain actions %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] || entries[i].Target != r.SubjectPseudonym || entries[i].Details["request"] != r.ID {
			t.Errorf("entry %d: %+v", i, entries[i])
		}
	}
	// Completed: the subject may ask again.
	if _, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-1"}); err != nil {
		t.Fatalf("a new request after completion: %v", err)
	}
}
