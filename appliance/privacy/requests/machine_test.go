package requests_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/validation"
)

// A request's starting states, and the steps that bring an access
// request there.
var starts = []struct {
	name  string
	steps []requests.TransitionInput
}{
	{"received", nil},
	{"verified", []requests.TransitionInput{verify}},
	{"in_progress", []requests.TransitionInput{verify, {To: requests.InProgress}}},
	{"extended-verified", []requests.TransitionInput{verify, extend}},
	{"extended-unverified", []requests.TransitionInput{extend}},
	{"completed", []requests.TransitionInput{verify, {To: requests.InProgress}, {To: requests.Completed, Note: "letter sent"}}},
	{"rejected", []requests.TransitionInput{{To: requests.Rejected, Reason: "not the subject"}}},
}

var (
	verify = requests.TransitionInput{To: requests.Verified, Evidence: &requests.Evidence{Method: "document", Text: "passport seen"}}
	extend = requests.TransitionInput{To: requests.Extended, Reason: "many requests this month"}
)

// step is the input of a step to to, with what the step needs.
func step(to requests.Status) requests.TransitionInput {
	switch to {
	case requests.Verified:
		return verify
	case requests.Extended:
		return extend
	case requests.Rejected:
		return requests.TransitionInput{To: to, Reason: "cannot verify"}
	case requests.Completed:
		return requests.TransitionInput{To: to, Note: "answered by letter"}
	}
	return requests.TransitionInput{To: to}
}

// allowed is the state machine written out by hand, independently of the
// package's table: from each start, the statuses a manual step may reach.
var allowed = map[string][]requests.Status{
	"received":            {requests.Verified, requests.Rejected, requests.Extended},
	"verified":            {requests.InProgress, requests.Rejected, requests.Extended},
	"in_progress":         {requests.Completed, requests.Rejected, requests.Extended},
	"extended-verified":   {requests.InProgress, requests.Completed, requests.Rejected},
	"extended-unverified": {requests.Verified, requests.Rejected},
	"completed":           nil,
	"rejected":            nil,
}

// Every from × to through the service: an allowed step is made (one audit
// entry, the status and history as asked); any other is a
// *TransitionError (received: a validation error) and changes nothing —
// neither the request nor the chain.
func TestStateMachine(t *testing.T) {
	e := newEnv(t, tenants.Patch{})
	n := 0
	for _, st := range starts {
		for _, to := range requests.Statuses() {
			t.Run(fmt.Sprintf("%s to %s", st.name, to), func(t *testing.T) {
				n++
				r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: fmt.Sprintf("guest-%d", n)})
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range st.steps {
					if r, err = e.svc.Transition(ctx(t), compliance, "acme", r.ID, in); err != nil {
						t.Fatalf("setup %s: %v", in.To, err)
					}
				}
				before, head := r, e.head(t)
				got, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, step(to))
				ok := false
				for _, a := range allowed[st.name] {
					ok = ok || a == to
				}
				if ok {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if got.Status != to || len(got.History) != len(before.History)+1 || got.History[len(got.History)-1].From != before.Status {
						t.Errorf("after the step: %+v", got)
					}
					if h := e.head(t); h != head+1 {
						t.Errorf("chain moved by %d, want 1", h-head)
					}
					return
				}
				var te *requests.TransitionError
				switch {
				case to == requests.Received:
					if !errors.Is(err, validation.ErrInvalid) {
						t.Errorf("to received: %v, want a validation error", err)
					}
				case !errors.As(err, &te) || !errors.Is(err, requests.ErrInvalidTransition) || te.From != before.Status || te.To != to:
					t.Errorf("got %v, want an invalid transition from %s", err, before.Status)
				}
				after, err := e.svc.Get(ctx(t), compliance, "acme", r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(after, before) {
					t.Errorf("the request changed:\n%+v\n%+v", after, before)
				}
				if h := e.head(t); h != head {
					t.Errorf("the chain moved by %d", h-head)
				}
			})
		}
	}
}

// Export, portability, erasure and rectification requests are completed
// by their operations (Finish), never by a manual step; Begin takes up
// only the kinds it is told and only a verified request.
func TestOwnRouteKindsAndBegin(t *testing.T) {
	e := newEnv(t, tenants.Patch{})
	for _, kind := range []requests.Kind{requests.Export, requests.Portability, requests.Erasure} {
		r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: kind, Subject: "guest-1"})
		if err != nil {
			t.Fatal(err)
		}
		var te *requests.TransitionError
		if _, err := e.svc.Begin(ctx(t), compliance, "acme", r.ID, kind); !errors.As(err, &te) || te.Why != requests.WhyNotVerified {
			t.Errorf("%s: Begin unverified: %v", kind, err)
		}
		if _, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, verify); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Begin(ctx(t), compliance, "acme", r.ID, requests.Access); !errors.As(err, &te) || te.Why != requests.WhyKind {
			t.Errorf("%s: Begin of another kind: %v", kind, err)
		}
		head := e.head(t)
		got, err := e.svc.Begin(ctx(t), compliance, "acme", r.ID, requests.Export, kind)
		if err != nil || got.Status != requests.InProgress || got.Subject != "guest-1" {
			t.Fatalf("%s: Begin: %+v, %v", kind, got, err)
		}
		if again, err := e.svc.Begin(ctx(t), compliance, "acme", r.ID, kind); err != nil || again.Status != requests.InProgress {
			t.Errorf("%s: Begin again: %+v, %v", kind, again, err)
		}
		if h := e.head(t); h != head+1 {
			t.Errorf("%s: Begin twice wrote %d entries, want 1", kind, h-head)
		}
		if _, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, step(requests.Completed)); !errors.As(err, &te) || te.Why != requests.WhyOwnRoute {
			t.Errorf("%s: completed by hand: %v", kind, err)
		}
		res := requests.Result{Export: "exp-1", Counts: map[string]uint64{"records": 3}, Receipt: "signed text"}
		done, err := e.svc.Finish(ctx(t), compliance, "acme", r.ID, res)
		if err != nil || done.Status != requests.Completed || !reflect.DeepEqual(*done.Result, res) || done.Subject != "guest-1" {
			t.Fatalf("%s: Finish: %+v, %v", kind, done, err)
		}
		if _, err := e.svc.Finish(ctx(t), compliance, "acme", r.ID, res); !errors.As(err, &te) {
			t.Errorf("%s: Finish twice: %v", kind, err)
		}
		read, err := e.svc.Get(ctx(t), compliance, "acme", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		// An erased subject is kept only as its pseudonym.
		if erased := kind == requests.Erasure; (read.Subject == "") != erased || (read.Verification.Evidence == "") != erased || read.SubjectPseudonym != r.SubjectPseudonym {
			t.Errorf("%s: read after completion: subject %q, evidence %q", kind, read.Subject, read.Verification.Evidence)
		}
	}
	all, err := e.svc.BySubject(ctx(t), compliance, "acme", "guest-1")
	if err != nil || len(all) != 3 {
		t.Fatalf("by subject: %d, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Errorf("by subject not in order of arrival: %s after %s", all[i].ID, all[i-1].ID)
		}
	}
	if none, err := e.svc.BySubject(ctx(t), compliance, "acme", "guest-2"); err != nil || len(none) != 0 {
		t.Errorf("another subject: %v, %v", none, err)
	}
}
