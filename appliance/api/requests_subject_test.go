package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/client"
)

// TestRequestsBySubject: ?subject= lists one subject's requests (with
// the other filters and pages), nothing of another subject's; a subject
// with none has an empty list; a malformed one is refused naming it.
func TestRequestsBySubject(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	base := "/v1/tenants/acme/requests"
	ids := map[string][]string{}
	for _, c := range []struct{ kind, subject string }{
		{"access", "guest-1"}, {"access", "guest-2"}, {"erasure", "guest-1"}, {"export", "guest-1"}, {"erasure", "guest-2"},
	} {
		var d client.DSR
		r := e.do("POST", base, `{"kind":"`+c.kind+`","subject":"`+c.subject+`"}`)
		r.json(t, &d)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		ids[c.subject] = append(ids[c.subject], d.ID)
	}
	list := func(q string) (got []string, next string) {
		t.Helper()
		var page client.DSRPage
		r := e.do("GET", base+q, "")
		r.json(t, &page)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		for _, d := range page.Requests {
			got = append(got, d.ID)
		}
		return got, page.Next
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"?subject=guest-1", ids["guest-1"]},
		{"?subject=guest-2", ids["guest-2"]},
		{"?subject=guest-1&kind=erasure", ids["guest-1"][1:2]},
		{"?subject=guest-2&status=open", ids["guest-2"]},
		{"?subject=nobody", nil},
	} {
		if got, _ := list(tc.q); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %v, want %v", tc.q, got, tc.want)
		}
	}
	// Pages of one.
	var all []string
	q := "?subject=guest-1&limit=1"
	for range 5 {
		got, next := list(q)
		all = append(all, got...)
		if next == "" {
			break
		}
		q = "?subject=guest-1&limit=1&after=" + next
	}
	if strings.Join(all, ",") != strings.Join(ids["guest-1"], ",") {
		t.Errorf("paged: %v, want %v", all, ids["guest-1"])
	}
	p := checkProblem(t, e.do("GET", base+"?subject=a/b", ""), http.StatusBadRequest, "validation", "")
	if len(p.Errors) != 1 || p.Errors[0].Field != "subject" {
		t.Errorf("malformed subject: %+v", p.Errors)
	}
}
