package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/client"
)

// Data-subject requests over the API: the desk records one and reads
// none; Compliance handles it; a duplicate, a step out of order, an
// unknown kind and a bad filter are each their problem and change
// nothing; a rectification of a record that is not the subject's is
// refused and the request stays in progress.
func TestRequestsAPI(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", `{"fields":[{"name":"email","type":"string","classification":"pii"}]}`); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	for _, rec := range []string{`{"id":"g1","subject":"guest-1","fields":{"email":"a@b.c"}}`, `{"id":"g2","subject":"guest-2","fields":{"email":"d@e.f"}}`} {
		if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", rec); r.status != http.StatusCreated {
			t.Fatalf("record: %d %s", r.status, r.body)
		}
	}
	desk := bearer(e.createKey(t, "acme", `{"name":"desk","role":"foh"}`).Token)
	dpo := bearer(e.createKey(t, "acme", `{"name":"dpo","role":"compliance"}`).Token)
	base := "/v1/tenants/acme/requests"

	r := e.do("POST", base, `{"kind":"access","subject":"guest-1"}`, desk)
	var req client.DSR
	r.json(t, &req)
	if r.status != http.StatusCreated || req.Status != "received" || req.Subject != "guest-1" || r.header.Get("Location") != base+"/"+req.ID {
		t.Fatalf("create at the desk: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", base, "", desk), http.StatusForbidden, "forbidden", base)
	p := checkProblem(t, e.do("POST", base, `{"kind":"access","subject":"guest-1"}`, desk), http.StatusConflict, "duplicate-request", base)
	if !strings.Contains(p.Detail, req.ID) {
		t.Errorf("the duplicate's detail does not name %s: %q", req.ID, p.Detail)
	}
	checkProblem(t, e.do("POST", base, `{"kind":"deletion","subject":"guest-1"}`, dpo), http.StatusUnprocessableEntity, "validation", base)
	checkProblem(t, e.do("GET", base+"?status=late", "", dpo), http.StatusBadRequest, "validation", base)
	one := base + "/" + req.ID
	checkProblem(t, e.do("POST", one+"/transition", `{"to":"completed","note":"sent"}`, dpo), http.StatusConflict, "invalid-transition", one+"/transition")
	checkProblem(t, e.do("POST", one+"/transition", `{"to":"verified"}`, dpo), http.StatusUnprocessableEntity, "validation", one+"/transition")
	checkProblem(t, e.do("POST", one+"/transition", `{"to":"verified","evidence":{"method":"document","text":"passport"}}`, desk), http.StatusForbidden, "forbidden", one+"/transition")
	checkProblem(t, e.do("GET", base+"/dsr-nothing", "", dpo), http.StatusNotFound, "not-found", base+"/dsr-nothing")
	r = e.do("GET", one, "", dpo)
	var same client.DSR
	r.json(t, &same)
	if r.status != http.StatusOK || same.Status != "received" || len(same.History) != 1 {
		t.Fatalf("after refused steps: %d %s", r.status, r.body)
	}
	for _, step := range []string{`{"to":"verified","evidence":{"method":"document","text":"passport"}}`, `{"to":"extended","reason":"many requests"}`, `{"to":"completed","note":"letter sent"}`} {
		if r := e.do("POST", one+"/transition", step, dpo); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", step, r.status, r.body)
		}
	}

	// A rectification naming another subject's record.
	r = e.do("POST", base, `{"kind":"rectification","subject":"guest-1","rectification":{"collection":"guests","record":"g2","fields":{"email":"x@y.z"}}}`, dpo)
	var rect client.DSR
	r.json(t, &rect)
	if r.status != http.StatusCreated {
		t.Fatalf("rectification: %d %s", r.status, r.body)
	}
	rp := base + "/" + rect.ID
	if r := e.do("POST", rp+"/transition", `{"to":"verified","evidence":{"method":"account","text":"logged in"}}`, dpo); r.status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("POST", rp+"/rectify", "", dpo), http.StatusNotFound, "not-found", rp+"/rectify")
	r = e.do("GET", rp, "", dpo)
	r.json(t, &rect)
	if rect.Status != "in_progress" {
		t.Errorf("after a failed rectification: %s", rect.Status)
	}
	if r := e.do("GET", "/v1/tenants/acme/collections/guests/records/g2", ""); !strings.Contains(string(r.body), "d@e.f") {
		t.Errorf("the other subject's record changed: %s", r.body)
	}

	r = e.do("GET", "/v1/tenants/acme/requests-summary", "", dpo)
	var sum client.DSRSummary
	r.json(t, &sum)
	if r.status != http.StatusOK || sum.Open != 1 || sum.ByStatus["completed"] != 1 || sum.ByStatus["in_progress"] != 1 {
		t.Errorf("summary: %d %s", r.status, r.body)
	}
	r = e.do("GET", base+"?status=open&kind=rectification", "", dpo)
	var page client.DSRPage
	r.json(t, &page)
	if r.status != http.StatusOK || len(page.Requests) != 1 || page.Requests[0].ID != rect.ID {
		t.Errorf("list: %d %s", r.status, r.body)
	}
}

// TestRequestsSetConsentFlags: completing a restriction request sets the
// subject's restrict-processing flag, completing an opt-out sets
// do-not-sell, each an event of the subject's consent ledger naming the
// request; a subject the tenant holds nothing about completes with
// nothing to flag, and a refused completion sets no flag.
func TestRequestsSetConsentFlags(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", `{"fields":[{"name":"email","type":"string","classification":"pii"}]}`); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","subject":"guest-1","fields":{"email":"a@b.c"}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	base := "/v1/tenants/acme/requests"
	create := func(kind, subject string) string {
		t.Helper()
		var req client.DSR
		r := e.do("POST", base, `{"kind":"`+kind+`","subject":"`+subject+`"}`)
		r.json(t, &req)
		if r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", kind, r.status, r.body)
		}
		return req.ID
	}
	step := func(id, body string, want int) {
		t.Helper()
		if r := e.do("POST", base+"/"+id+"/transition", body); r.status != want {
			t.Fatalf("%s %s: %d %s", id, body, r.status, r.body)
		}
	}
	flags := func() (events []client.ConsentEvent) {
		t.Helper()
		r := e.do("GET", "/v1/tenants/acme/consent/guest-1/history", "")
		var h struct {
			Events []client.ConsentEvent `json:"events"`
		}
		r.json(t, &h)
		if r.status != http.StatusOK {
			t.Fatalf("history: %d %s", r.status, r.body)
		}
		for _, ev := range h.Events {
			if ev.Kind == "flag" {
				events = append(events, ev)
			}
		}
		return events
	}

	restrict := create("restriction", "guest-1")
	step(restrict, `{"to":"completed","note":"done"}`, http.StatusConflict) // not verified: refused, no flag
	if got := flags(); len(got) != 0 {
		t.Fatalf("a refused completion set flags: %+v", got)
	}
	step(restrict, `{"to":"verified","evidence":{"method":"document","text":"passport"}}`, http.StatusOK)
	step(restrict, `{"to":"in_progress"}`, http.StatusOK)
	step(restrict, `{"to":"completed","note":"processing restricted"}`, http.StatusOK)
	optOut := create("opt-out", "guest-1")
	step(optOut, `{"to":"verified","evidence":{"method":"account","text":"logged in"}}`, http.StatusOK)
	step(optOut, `{"to":"in_progress"}`, http.StatusOK)
	step(optOut, `{"to":"completed"}`, http.StatusOK)

	got := flags()
	if len(got) != 2 || got[0].Flag != "restrict-processing" || !got[0].On || got[1].Flag != "do-not-sell" || !got[1].On {
		t.Fatalf("flags after the two requests: %+v", got)
	}
	r := e.do("GET", "/v1/tenants/acme/consent/guest-1", "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"do_not_sell":true`) || !strings.Contains(string(r.body), `"restrict_processing":true`) {
		t.Errorf("state after the two requests: %d %s", r.status, r.body)
	}

	nobody := create("opt-out", "guest-nobody")
	step(nobody, `{"to":"verified","evidence":{"method":"email","text":"replied"}}`, http.StatusOK)
	step(nobody, `{"to":"in_progress"}`, http.StatusOK)
	step(nobody, `{"to":"completed"}`, http.StatusOK)
}
