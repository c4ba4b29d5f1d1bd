package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// TestReadReason: the reason a person gives for a record or subject read
// is the "reason" detail of the read's audit entries (and only of that
// request's); a reason the API refuses is 400 naming it.
func TestReadReason(t *testing.T) {
	e := newEnv(t, api.Options{})
	ctx := context.Background()
	if r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"X"}`); r.status != http.StatusCreated {
		t.Fatalf("tenant: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","subject":"guest-17","fields":{"email":"jane@example.com"}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	const why = "Guest called: checking the booking's e-mail — ticket #42"
	one := "/v1/tenants/acme/collections/guests/records/g1"
	if r := e.do("GET", one+"?mask=true", ""); r.status != 200 {
		t.Fatalf("masked read: %d %s", r.status, r.body)
	}
	if r := e.do("GET", one+"?reason="+url.QueryEscape(why), ""); r.status != 200 || !strings.Contains(string(r.body), "jane@example.com") {
		t.Fatalf("read with a reason: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/tenants/acme/subjects/guest-17?reason="+url.QueryEscape(why), ""); r.status != 200 {
		t.Fatalf("subject with a reason: %d %s", r.status, r.body)
	}
	reasons := func(f audit.Filter) []string {
		items, _, err := e.audit.List(ctx, raftstore.Linearizable, "tenant:acme", f, 0, 20)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range items {
			out = append(out, it.Entry.Details["masked"]+"/"+it.Entry.Details["reason"])
		}
		return out
	}
	if got := reasons(audit.Filter{Action: "record.read"}); strings.Join(got, "|") != "true/|false/"+why {
		t.Errorf("record.read entries (masked/reason): %q", got)
	}
	if got := reasons(audit.Filter{Action: "subject.read"}); strings.Join(got, "|") != "/"+why {
		t.Errorf("subject.read entries (reason): %q", got)
	}

	for _, tc := range []struct{ name, reason string }{
		{"empty", ""},
		{"201 characters", strings.Repeat("a", 201)},
		{"a control character", "line\nbreak"},
		{"more than 512 bytes", strings.Repeat("😀", 129)},
		{"not UTF-8", "\xff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "?reason=" + url.QueryEscape(tc.reason)
			for _, target := range []string{one + q, "/v1/tenants/acme/subjects/guest-17" + q} {
				p := checkProblem(t, e.do("GET", target, ""), http.StatusBadRequest, "validation", "")
				if len(p.Errors) != 1 || p.Errors[0].Field != "reason" {
					t.Errorf("%s: errors %+v, want one naming reason", target, p.Errors)
				}
			}
		})
	}
	if r := e.do("GET", one+"?reason="+url.QueryEscape(strings.Repeat("é", 200)), ""); r.status != 200 {
		t.Fatalf("200 characters of 2 bytes: %d %s", r.status, r.body)
	}
}
