package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

func TestRecords(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, id := range []string{"acme", "globex"} {
		if r := e.do("POST", "/v1/tenants", `{"id":"`+id+`","display_name":"X"}`); r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, r.status, r.body)
		}
		if r := e.do("PUT", "/v1/tenants/"+id+"/collections/guests", guestsV1); r.status != http.StatusCreated {
			t.Fatalf("collection: %d %s", r.status, r.body)
		}
	}
	writer := e.createKey(t, "acme", `{"name":"app","permissions":["read","write","delete"]}`)
	other := e.createKey(t, "globex", `{"name":"app","permissions":["admin"]}`)
	as := func(k createdKey) reqOpt { return withHeader("Authorization", "Bearer "+k.Token) }

	r := e.do("POST", "/v1/tenants/acme/collections/guests/records",
		`{"id":"g1","subject":"guest-17","attributes":{"property":"villa_a"},"fields":{"email":"Jane.Doe@Example.com","stay":"long","notes":{"allergy":"nuts"}}}`, as(writer))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var rec struct {
		ID      string                     `json:"id"`
		Subject string                     `json:"subject"`
		Version uint64                     `json:"version"`
		Fields  map[string]json.RawMessage `json:"fields"`
	}
	r = e.do("GET", "/v1/tenants/acme/collections/guests/records/g1", "", as(writer))
	r.json(t, &rec)
	if r.status != 200 || string(rec.Fields["email"]) != `"Jane.Doe@Example.com"` || string(rec.Fields["notes"]) != `{"allergy":"nuts"}` || rec.Subject != "guest-17" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/tenants/acme/collections/guests/records/g1?mask=true", "", as(writer))
	rec.Fields = nil
	r.json(t, &rec)
	if string(rec.Fields["email"]) != `"J***.D**@E******.c**"` || string(rec.Fields["stay"]) != `"long"` {
		t.Fatalf("masked: %s", r.body)
	}
	// Equality search through the blind index (normalized: case, spaces).
	var found struct {
		IDs []string `json:"ids"`
	}
	e.do("GET", "/v1/tenants/acme/collections/guests/records?field=email&value="+url.QueryEscape(`"  jane.doe@example.COM "`), "", as(writer)).json(t, &found)
	if len(found.IDs) != 1 || found.IDs[0] != "g1" {
		t.Fatalf("find: %+v", found)
	}
	checkProblem(t, e.do("GET", `/v1/tenants/acme/collections/guests/records?field=notes&value=1`, "", as(writer)), http.StatusUnprocessableEntity, "validation", "")
	// Another tenant's key, and another tenant's record: 404.
	checkProblem(t, e.do("GET", "/v1/tenants/acme/collections/guests/records/g1", "", as(other)), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("GET", "/v1/tenants/globex/collections/guests/records/g1", "", as(other)), http.StatusNotFound, "not-found", "")
	var none struct {
		IDs []string `json:"ids"`
	}
	e.do("GET", "/v1/tenants/globex/collections/guests/records?field=email&value="+url.QueryEscape(`"jane.doe@example.com"`), "", as(other)).json(t, &none)
	if len(none.IDs) != 0 {
		t.Fatalf("globex finds acme's record: %+v", none)
	}
	// Validation.
	for name, c := range map[string]struct{ body, field string }{
		"unknown field":    {`{"subject":"s1","fields":{"email":"a@b.c","age":3}}`, "fields.age"},
		"wrong type":       {`{"subject":"s1","fields":{"email":42}}`, "fields.email"},
		"enum":             {`{"subject":"s1","fields":{"email":"a@b.c","stay":"forever"}}`, "fields.stay"},
		"missing required": {`{"subject":"s1","fields":{"stay":"long"}}`, "fields.email"},
		"no subject":       {`{"fields":{"email":"a@b.c"}}`, "subject"},
		"bad id":           {`{"id":"a/b","subject":"s1","fields":{"email":"a@b.c"}}`, "id"},
		"too deep":         {`{"subject":"s1","fields":{"email":"a@b.c","notes":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}}`, "fields.notes"},
		"too large":        {`{"subject":"s1","fields":{"email":"` + strings.Repeat("x", 70000) + `"}}`, "fields.email"},
		"bad attribute":    {`{"subject":"s1","attributes":{"Bad Key":"v"},"fields":{"email":"a@b.c"}}`, "attributes.Bad Key"},
	} {
		p := checkProblem(t, e.do("POST", "/v1/tenants/acme/collections/guests/records", c.body, as(writer)), http.StatusUnprocessableEntity, "validation", "")
		if len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %+v, want %s", name, p.Errors, c.field)
		}
	}
	checkProblem(t, e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","subject":"s","fields":{"email":"x@y.z"}}`, as(writer)), http.StatusConflict, "conflict", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/collections/rooms/records", `{"fields":{}}`, as(writer)), http.StatusNotFound, "not-found", "")

	// Acceptance 3: a ciphertext copied from acme's record into globex's
	// (as with direct file access) does not open: an integrity error, not
	// served.
	if r := e.do("POST", "/v1/tenants/globex/collections/guests/records", `{"id":"g1","subject":"guest-17","fields":{"email":"bob@globex.test"}}`); r.status != http.StatusCreated {
		t.Fatalf("globex record: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	var acmeRaw, globexRaw []byte
	if err := e.store.View(ctx, raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		acmeRaw, _, _ = tx.Get(raftstore.Path("tenant:acme", "records", "guests"), []byte("g1"))
		globexRaw, _, _ = tx.Get(raftstore.Path("tenant:globex", "records", "guests"), []byte("g1"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var acmeEnv, globexEnv map[string]json.RawMessage
	json.Unmarshal(acmeRaw, &acmeEnv)
	json.Unmarshal(globexRaw, &globexEnv)
	globexEnv["sealed"] = acmeEnv["sealed"]
	forged, _ := json.Marshal(globexEnv)
	if _, err := e.store.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("tenant:globex", "records", "guests"), Key: []byte("g1"), Value: forged}}}); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/v1/tenants/globex/collections/guests/records/g1", "")
	checkProblem(t, r, http.StatusInternalServerError, "integrity-error", "")
	if strings.Contains(string(r.body), "Jane") {
		t.Fatal("the moved ciphertext was served")
	}

	// Replace with optimistic concurrency: If-Match of an old version is
	// 412; the new version's values open, the old index entry is gone.
	r = e.do("PUT", "/v1/tenants/acme/collections/guests/records/g1", `{"subject":"guest-17","fields":{"email":"jane@new.example","stay":"short"}}`, as(writer), withHeader("If-Match", `"1"`))
	if r.status != 200 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/guests/records/g1", `{"subject":"guest-17","fields":{"email":"x@y.z"}}`, as(writer), withHeader("If-Match", `"1"`)), http.StatusPreconditionFailed, "precondition-failed", "")
	rec.Fields = nil
	e.do("GET", "/v1/tenants/acme/collections/guests/records/g1", "", as(writer)).json(t, &rec)
	if string(rec.Fields["email"]) != `"jane@new.example"` || rec.Version != 2 || rec.Fields["notes"] != nil {
		t.Fatalf("after replace: %+v", rec)
	}
	found.IDs = nil
	e.do("GET", "/v1/tenants/acme/collections/guests/records?field=email&value="+url.QueryEscape(`"jane.doe@example.com"`), "", as(writer)).json(t, &found)
	if len(found.IDs) != 0 {
		t.Fatalf("the old value still finds the record: %+v", found)
	}
	found.IDs = nil
	e.do("GET", "/v1/tenants/acme/collections/guests/records?field=email&value="+url.QueryEscape(`"JANE@new.example"`), "", as(writer)).json(t, &found)
	if len(found.IDs) != 1 {
		t.Fatalf("the new value does not find the record: %+v", found)
	}

	// Patch: merge (null removes), a new version; a required field cannot go.
	r = e.do("PATCH", "/v1/tenants/acme/collections/guests/records/g1", `{"fields":{"stay":null,"notes":{"k":1}}}`, as(writer), withHeader("If-Match", `"2"`))
	rec.Fields = nil
	r.json(t, &rec)
	if r.status != 200 || rec.Version != 3 || rec.Fields["stay"] != nil || string(rec.Fields["notes"]) != `{"k":1}` || string(rec.Fields["email"]) != `"jane@new.example"` {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	p := checkProblem(t, e.do("PATCH", "/v1/tenants/acme/collections/guests/records/g1", `{"fields":{"email":null}}`, as(writer)), http.StatusUnprocessableEntity, "validation", "")
	if len(p.Errors) != 1 || p.Errors[0].Field != "fields.email" {
		t.Fatalf("removing a required field: %+v", p.Errors)
	}
	checkProblem(t, e.do("PATCH", "/v1/tenants/acme/collections/guests/records/g1", `{"fields":{"stay":"long"}}`, as(writer), withHeader("If-Match", `"2"`)), http.StatusPreconditionFailed, "precondition-failed", "")

	// Listing, with an attribute filter, page by page.
	for i := 2; i <= 6; i++ {
		prop := "villa_a"
		if i%2 == 1 {
			prop = "villa_b"
		}
		if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", fmt.Sprintf(`{"id":"g%d","subject":"s%d","attributes":{"property":"%s"},"fields":{"email":"g%d@x.y"}}`, i, i, prop, i), as(writer)); r.status != http.StatusCreated {
			t.Fatalf("create g%d: %d %s", i, r.status, r.body)
		}
	}
	var page struct {
		IDs  []string `json:"ids"`
		Next string   `json:"next"`
	}
	e.do("GET", "/v1/tenants/acme/collections/guests/records?limit=4", "", as(writer)).json(t, &page)
	if strings.Join(page.IDs, ",") != "g1,g2,g3,g4" || page.Next != "g4" {
		t.Fatalf("page 1: %+v", page)
	}
	page.IDs, page.Next = nil, ""
	e.do("GET", "/v1/tenants/acme/collections/guests/records?limit=4&after=g4", "", as(writer)).json(t, &page)
	if strings.Join(page.IDs, ",") != "g5,g6" || page.Next != "" {
		t.Fatalf("page 2: %+v", page)
	}
	page.IDs = nil
	e.do("GET", "/v1/tenants/acme/collections/guests/records?attribute=property:villa_a", "", as(writer)).json(t, &page)
	if strings.Join(page.IDs, ",") != "g2,g4,g6" { // g1 was replaced without attributes
		t.Fatalf("by attribute: %+v", page)
	}
	page.IDs = nil
	e.do("GET", "/v1/tenants/globex/collections/guests/records", "", as(other)).json(t, &page)
	if len(page.IDs) != 1 || page.IDs[0] != "g1" { // globex's own g1 only
		t.Fatalf("globex's list: %+v", page)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/collections/guests/records?attribute=property", "", as(writer)), http.StatusBadRequest, "validation", "")
	for i := 2; i <= 6; i++ {
		e.do("DELETE", fmt.Sprintf("/v1/tenants/acme/collections/guests/records/g%d", i), "", as(writer))
	}

	// The subject's holdings; another tenant sees none of them.
	var held struct {
		Records []struct{ Collection, ID string } `json:"records"`
	}
	e.do("GET", "/v1/tenants/acme/subjects/guest-17", "", as(writer)).json(t, &held)
	if len(held.Records) != 1 || held.Records[0].ID != "g1" || held.Records[0].Collection != "guests" {
		t.Fatalf("subject: %+v", held)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/subjects/guest-17", "", as(other)), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("GET", "/v1/tenants/acme/subjects/nobody", "", as(writer)), http.StatusNotFound, "not-found", "")

	// Delete: gone, and its index entry too.
	if r := e.do("DELETE", "/v1/tenants/acme/collections/guests/records/g1", "", as(writer)); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/collections/guests/records/g1", "", as(writer)), http.StatusNotFound, "not-found", "")
	found.IDs = nil
	e.do("GET", "/v1/tenants/acme/collections/guests/records?field=email&value="+url.QueryEscape(`"jane.doe@example.com"`), "", as(writer)).json(t, &found)
	if len(found.IDs) != 0 {
		t.Fatalf("the index outlived the record: %+v", found)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/subjects/guest-17", "", as(writer)), http.StatusNotFound, "not-found", "")
	// Audited with the key as actor: create, two reads of pii, delete.
	items, _, err := e.audit.List(ctx, raftstore.Linearizable, "tenant:acme", audit.Filter{Target: "record:guests/g1"}, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		if it.Entry.Actor.ID == writer.ID {
			got = append(got, it.Entry.Action)
		}
	}
	if strings.Join(got, ",") != "record.create,record.read,record.read,record.update,record.read,record.update,record.delete" {
		t.Fatalf("record audit entries by the key: %v", got)
	}
}
