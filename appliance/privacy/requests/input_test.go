package requests_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// An open request of a kind refuses another of that kind for the same
// subject, naming it; another kind, another subject, or the same after
// the first was answered, is accepted. Concurrent duplicates on different
// nodes: exactly one is created.
func TestDuplicates(t *testing.T) {
	e := newEnv(t, tenants.Patch{})
	first, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Erasure, Subject: "guest-1"})
	if err != nil {
		t.Fatal(err)
	}
	head := e.head(t)
	var de *requests.DuplicateError
	for i, svc := range e.svcs {
		if _, err := svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Erasure, Subject: "guest-1"}); !errors.As(err, &de) || de.Existing != first.ID || de.Kind != requests.Erasure {
			t.Errorf("node %d: %v, want a duplicate naming %s", i+1, err, first.ID)
		}
	}
	if h := e.head(t); h != head {
		t.Errorf("refused duplicates moved the chain by %d", h-head)
	}
	if page, _, err := e.svc.List(ctx(t), compliance, "acme", requests.Filter{}); err != nil || len(page) != 1 {
		t.Errorf("after refused duplicates: %d requests, %v", len(page), err)
	}
	for _, in := range []requests.Input{{Kind: requests.Access, Subject: "guest-1"}, {Kind: requests.Erasure, Subject: "guest-2"}} {
		if _, err := e.svc.Create(ctx(t), compliance, "acme", in); err != nil {
			t.Errorf("%+v: %v", in, err)
		}
	}
	if _, err := e.svc.Transition(ctx(t), compliance, "acme", first.ID, requests.TransitionInput{To: requests.Rejected, Reason: "not verifiable"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Erasure, Subject: "guest-1"}); err != nil {
		t.Errorf("after the first was rejected: %v", err)
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []string
		dups    int
	)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.svcs[i%3].Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.OptOut, Subject: "guest-9"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created = append(created, r.ID)
			case errors.As(err, new(*requests.DuplicateError)):
				dups++
			default:
				t.Errorf("concurrent create: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(created) != 1 || dups != 5 {
		t.Errorf("concurrent duplicates: created %v, %d refused", created, dups)
	}
}

// Bad input is a validation error naming the field, a missing request is
// ErrNotFound and another tenant's principal ErrNoTenant — and nothing is
// written.
func TestBadInput(t *testing.T) {
	e := newEnv(t, tenants.Patch{})
	r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-1"})
	if err != nil {
		t.Fatal(err)
	}
	head := e.head(t)
	patch := &requests.Patch{Collection: "guests", Record: "g1", Fields: map[string]json.RawMessage{"email": json.RawMessage(`"a@b.c"`)}}
	creates := []struct {
		name  string
		in    requests.Input
		field string
	}{
		{"unknown kind", requests.Input{Kind: "deletion", Subject: "guest-1"}, "kind"},
		{"no kind", requests.Input{Subject: "guest-1"}, "kind"},
		{"no subject", requests.Input{Kind: requests.Access}, "subject"},
		{"bad subject", requests.Input{Kind: requests.Access, Subject: "guest 1"}, "subject"},
		{"long subject", requests.Input{Kind: requests.Access, Subject: strings.Repeat("g", 65)}, "subject"},
		{"received in the future", requests.Input{Kind: requests.Access, Subject: "guest-2", Received: march3.Add(time.Minute)}, "received"},
		{"rectification without a patch", requests.Input{Kind: requests.Rectification, Subject: "guest-2"}, "rectification"},
		{"a patch on an access request", requests.Input{Kind: requests.Access, Subject: "guest-2", Rectification: patch}, "rectification"},
		{"a patch of no fields", requests.Input{Kind: requests.Rectification, Subject: "guest-2", Rectification: &requests.Patch{Collection: "guests", Record: "g1"}}, "rectification.fields"},
		{"a patch of bad JSON", requests.Input{Kind: requests.Rectification, Subject: "guest-2", Rectification: &requests.Patch{Collection: "guests", Record: "g1", Fields: map[string]json.RawMessage{"a": json.RawMessage(`{`)}}}, "rectification.fields"},
		{"a bad attribute", requests.Input{Kind: requests.Access, Subject: "guest-2", Attributes: map[string]string{"property": "villa a"}}, "attributes"},
	}
	for _, c := range creates {
		_, err := e.svc.Create(ctx(t), compliance, "acme", c.in)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a field error on %s", c.name, err, c.field)
		}
	}
	transitions := []struct {
		name  string
		in    requests.TransitionInput
		field string
	}{
		{"unknown status", requests.TransitionInput{To: "done"}, "to"},
		{"back to received", requests.TransitionInput{To: requests.Received}, "to"},
		{"verify without evidence", requests.TransitionInput{To: requests.Verified}, "evidence"},
		{"verify by an unknown method", requests.TransitionInput{To: requests.Verified, Evidence: &requests.Evidence{Method: "vibes", Text: "x"}}, "evidence.method"},
		{"verify with empty evidence", requests.TransitionInput{To: requests.Verified, Evidence: &requests.Evidence{Method: "email", Text: " "}}, "evidence.text"},
		{"evidence on a rejection", requests.TransitionInput{To: requests.Rejected, Reason: "x", Evidence: &requests.Evidence{Method: "email", Text: "x"}}, "evidence"},
		{"reject without a reason", requests.TransitionInput{To: requests.Rejected}, "reason"},
		{"extend without a reason", requests.TransitionInput{To: requests.Extended}, "reason"},
		{"a reason on a start", requests.TransitionInput{To: requests.InProgress, Reason: "x"}, "reason"},
		{"a period that is none", requests.TransitionInput{To: requests.Extended, Reason: "x", Extension: "soon"}, "extension"},
		{"a period beyond the law's", requests.TransitionInput{To: requests.Extended, Reason: "x", Extension: "3 months"}, "extension"},
		{"a period in days under GDPR", requests.TransitionInput{To: requests.Extended, Reason: "x", Extension: "20 days"}, "extension"},
		{"a note on a rejection", requests.TransitionInput{To: requests.Rejected, Reason: "x", Note: "y"}, "note"},
		{"a reason too long", requests.TransitionInput{To: requests.Rejected, Reason: strings.Repeat("x", requests.MaxText+1)}, "reason"},
	}
	for _, c := range transitions {
		_, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, c.in)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a field error on %s", c.name, err, c.field)
		}
	}
	for _, id := range []string{"dsr-00000000000000000", "", "no such!"} {
		if _, err := e.svc.Get(ctx(t), compliance, "acme", id); !errors.Is(err, requests.ErrNotFound) {
			t.Errorf("get %q: %v", id, err)
		}
		if _, err := e.svc.Transition(ctx(t), compliance, "acme", id, step(requests.Verified)); !errors.Is(err, requests.ErrNotFound) {
			t.Errorf("transition %q: %v", id, err)
		}
	}
	if _, err := e.svc.Get(ctx(t), stranger, "acme", r.ID); !errors.Is(err, requests.ErrNoTenant) {
		t.Errorf("another tenant's principal: %v", err)
	}
	if _, err := e.svc.Create(ctx(t), operator, "nope", requests.Input{Kind: requests.Access, Subject: "guest-1"}); !errors.Is(err, requests.ErrNoTenant) && !errors.Is(err, keyring.ErrNoKeys) {
		t.Errorf("a missing tenant: %v", err)
	}
	for _, f := range []requests.Filter{{Status: "late"}, {Kind: "deletion"}, {After: "bad id!"}, {Limit: 10000}} {
		if _, _, err := e.svc.List(ctx(t), compliance, "acme", f); !errors.Is(err, validation.ErrInvalid) {
			t.Errorf("list %+v: %v", f, err)
		}
	}
	if h := e.head(t); h != head {
		t.Errorf("bad input moved the chain by %d", h-head)
	}
	if got, err := e.svc.Get(ctx(t), compliance, "acme", r.ID); err != nil || got.Status != requests.Received || len(got.History) != 1 {
		t.Errorf("the request changed: %+v, %v", got, err)
	}
}

// No subject id, evidence or reason is stored or audited in the clear.
func TestNothingPersonalInTheClear(t *testing.T) {
	e := newEnv(t, tenants.Patch{})
	const subject, evidence, reason = "guest-canary-7731", "passport canary-4410", "canary-9902 asked twice"
	r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []requests.TransitionInput{
		{To: requests.Verified, Evidence: &requests.Evidence{Method: "document", Text: evidence}},
		{To: requests.Rejected, Reason: reason},
	} {
		if _, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, in); err != nil {
			t.Fatal(err)
		}
	}
	canaries := []string{subject, "canary-4410", "canary-9902"}
	for _, en := range e.chain(t, 1) {
		b, _ := json.Marshal(en)
		for _, c := range canaries {
			if bytes.Contains(b, []byte(c)) {
				t.Errorf("audit entry %s holds %q", b, c)
			}
		}
	}
	err = tenancy.New(e.store).Scope("acme").View(ctx(t), raftstore.Linearizable, func(rd tenancy.Read) error {
		for _, bucket := range []string{"dsr_requests", "dsr_subjects", "dsr_open"} {
			rd.Scan([][]byte{[]byte(bucket)}, nil, 0, func(k, v []byte, _ uint64) bool {
				for _, c := range canaries {
					if bytes.Contains(k, []byte(c)) || bytes.Contains(v, []byte(c)) {
						t.Errorf("%s holds %q in the clear", bucket, c)
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Get(ctx(t), compliance, "acme", r.ID)
	if err != nil || got.Subject != subject || got.Verification.Evidence != evidence || got.Rejection != reason {
		t.Errorf("read back: %+v, %v", got, err)
	}
}

// A principal scoped to a property records and sees only requests inside
// its scope; one outside it is refused, and others' read as missing.
func TestScopedPrincipal(t *testing.T) {
	e := newEnv(t, tenants.Patch{})
	mine, err := e.svc.Create(ctx(t), villaA, "acme", requests.Input{Kind: requests.Access, Subject: "guest-1", Attributes: map[string]string{"property": "villa-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Create(ctx(t), villaA, "acme", requests.Input{Kind: requests.Access, Subject: "guest-2", Attributes: map[string]string{"property": "villa-b"}}); !errors.Is(err, tenancy.ErrRestricted) {
		t.Errorf("outside the scope: %v", err)
	}
	theirs, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-3"})
	if err != nil {
		t.Fatal(err)
	}
	page, _, err := e.svc.List(ctx(t), villaA, "acme", requests.Filter{})
	if err != nil || len(page) != 1 || page[0].ID != mine.ID {
		t.Errorf("scoped list: %v, %v", page, err)
	}
	if _, err := e.svc.Get(ctx(t), villaA, "acme", theirs.ID); !errors.Is(err, requests.ErrNotFound) {
		t.Errorf("another's request: %v", err)
	}
	if sum, err := e.svc.Summary(ctx(t), villaA, "acme"); err != nil || sum.Open != 1 {
		t.Errorf("scoped summary: %+v, %v", sum, err)
	}
	if sum, err := e.svc.Tally(ctx(t), "acme"); err != nil || sum.Open != 2 {
		t.Errorf("tally: %+v, %v", sum, err)
	}
}
