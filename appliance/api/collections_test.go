package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

const guestsV1 = `{"fields":[
 {"name":"email","type":"string","required":true,"classification":"pii","index":true},
 {"name":"stay","type":"enum","classification":"internal","values":["short","long"]},
 {"name":"notes","type":"json","classification":"sensitive"}],
 "retention_days":730,"subject_required":true}`

func TestCollections(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, id := range []string{"acme", "globex"} {
		if r := e.do("POST", "/v1/tenants", `{"id":"`+id+`","display_name":"X"}`); r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, r.status, r.body)
		}
	}
	r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1)
	var sc struct {
		Version uint64 `json:"version"`
		Fields  []struct {
			Name  string `json:"name"`
			Index bool   `json:"index"`
		} `json:"fields"`
		RetentionDays   int  `json:"retention_days"`
		SubjectRequired bool `json:"subject_required"`
	}
	r.json(t, &sc)
	if r.status != http.StatusCreated || r.header.Get("ETag") != `"1"` || sc.Version != 1 || len(sc.Fields) != 3 || !sc.SubjectRequired || sc.RetentionDays != 730 {
		t.Fatalf("define: %d %v %s", r.status, r.header.Get("ETag"), r.body)
	}
	// The same definition again changes nothing.
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1); r.status != 200 || r.header.Get("ETag") != `"1"` {
		t.Fatalf("unchanged: %d %s", r.status, r.body)
	}
	// A compatible change: a new optional field, an enum value added.
	v2 := strings.Replace(guestsV1, `"values":["short","long"]}`, `"values":["short","long","extended"]},
 {"name":"room","type":"number","classification":"internal","index":true}`, 1)
	r = e.do("PUT", "/v1/tenants/acme/collections/guests", v2, withHeader("If-Match", `"1"`))
	if r.status != 200 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("v2: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1, withHeader("If-Match", `"1"`)), http.StatusPreconditionFailed, "precondition-failed", "")
	// Incompatible changes name the field.
	for name, c := range map[string]struct{ from, to, field string }{
		"type change":        {`"name":"email","type":"string"`, `"name":"email","type":"number"`, "fields[0].type"},
		"drop enum value":    {`["short","long","extended"]`, `["short","extended"]`, "fields[1].values"},
		"new required field": {`{"name":"notes","type":"json","classification":"sensitive"}`, `{"name":"notes","type":"json","classification":"sensitive"},{"name":"x","type":"string","classification":"pii","required":true}`, "fields[4].required"},
		"index on existing":  {`{"name":"stay","type":"enum","classification":"internal"`, `{"name":"stay","type":"enum","classification":"internal","index":true`, "fields[1].index"},
		"becomes required":   {`{"name":"stay","type":"enum","classification":"internal"`, `{"name":"stay","type":"enum","classification":"internal","required":true`, "fields[1].required"},
	} {
		p := checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/guests", strings.Replace(v2, c.from, c.to, 1)), http.StatusUnprocessableEntity, "validation", "")
		if len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %+v, want %s", name, p.Errors, c.field)
		}
	}
	// Versions stay readable; the list shows the current ones.
	if r := e.do("GET", "/v1/tenants/acme/collections/guests?version=1", ""); r.status != 200 || r.header.Get("ETag") != `"1"` {
		t.Fatalf("version 1: %d %s", r.status, r.body)
	}
	var list struct {
		Collections []struct{ Name string } `json:"collections"`
	}
	e.do("GET", "/v1/tenants/acme/collections", "").json(t, &list)
	if len(list.Collections) != 1 || list.Collections[0].Name != "guests" {
		t.Fatalf("list: %+v", list)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/collections/rooms", ""), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("GET", "/v1/tenants/globex/collections/guests", ""), http.StatusNotFound, "not-found", "")
	// API keys: read may read, admin may define, another tenant's key sees nothing.
	reader := e.createKey(t, "acme", `{"name":"r","permissions":["read"]}`)
	admin := e.createKey(t, "acme", `{"name":"a","permissions":["admin"]}`)
	other := e.createKey(t, "globex", `{"name":"o","permissions":["admin"]}`)
	as := func(k createdKey) reqOpt { return withHeader("Authorization", "Bearer "+k.Token) }
	if r := e.do("GET", "/v1/tenants/acme/collections/guests", "", as(reader)); r.status != 200 {
		t.Fatalf("read with a read key: %d", r.status)
	}
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/rooms", guestsV1, as(reader)), http.StatusForbidden, "forbidden", "")
	if r := e.do("PUT", "/v1/tenants/acme/collections/rooms", guestsV1, as(admin)); r.status != http.StatusCreated {
		t.Fatalf("define with an admin key: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/collections/guests", "", as(other)), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/x", guestsV1, as(other)), http.StatusNotFound, "not-found", "")
	// Audited, with the actor.
	items, _, err := e.audit.List(context.Background(), raftstore.Linearizable, "tenant:acme", audit.Filter{Action: "collection."}, 0, 10)
	if err != nil || len(items) != 3 || items[2].Entry.Actor.Type != audit.ActorAPIKey || items[2].Entry.Actor.ID != admin.ID {
		t.Fatalf("collection entries: %+v %v", items, err)
	}
}

func TestCollectionValidation(t *testing.T) {
	e := newEnv(t, api.Options{})
	if r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"X"}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	for name, c := range map[string]struct{ body, field string }{
		"no fields":      {`{"fields":[]}`, "fields"},
		"bad field name": {`{"fields":[{"name":"E-mail","type":"string","classification":"pii"}]}`, "fields[0].name"},
		"twice":          {`{"fields":[{"name":"a","type":"string","classification":"pii"},{"name":"a","type":"bool","classification":"pii"}]}`, "fields[1].name"},
		"bad type":       {`{"fields":[{"name":"a","type":"blob","classification":"pii"}]}`, "fields[0].type"},
		"no class":       {`{"fields":[{"name":"a","type":"string"}]}`, "fields[0].classification"},
		"enum no values": {`{"fields":[{"name":"a","type":"enum","classification":"internal"}]}`, "fields[0].values"},
		"values on text": {`{"fields":[{"name":"a","type":"string","classification":"internal","values":["x"]}]}`, "fields[0].values"},
		"index on json":  {`{"fields":[{"name":"a","type":"json","classification":"internal","index":true}]}`, "fields[0].index"},
		"retention":      {`{"fields":[{"name":"a","type":"string","classification":"pii"}],"retention_days":-1}`, "retention_days"},
	} {
		p := checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/guests", c.body), http.StatusUnprocessableEntity, "validation", "")
		if len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %+v, want %s", name, p.Errors, c.field)
		}
	}
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/Bad-Name", `{"fields":[]}`), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/guests", `{"fields":[{"name":"a","type":"string","classification":"pii","tenant":"globex"}]}`), http.StatusBadRequest, "unknown-field", "")
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/guests", `{"fields":[{"name":"a","type":1,"classification":"pii"}]}`), http.StatusBadRequest, "bad-request", "")
	checkProblem(t, e.do("PUT", "/v1/tenants/nope/collections/guests", `{"fields":[{"name":"a","type":"string","classification":"pii"}]}`), http.StatusNotFound, "not-found", "")
}
