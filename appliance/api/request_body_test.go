package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/custos/custos/appliance/api"
)

// TestNestedBodyRules: the strict body rules hold below the top level on
// every route that takes a nested body: a key must be a field's exact json
// name (encoding/json would take "Name" for "name", the last one winning),
// appear once, and not be null; a wrong type is named by its full path.
// Nothing refused is written.
func TestNestedBodyRules(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	e.ownerKey("acme") // who puts the collections: made before the state is taken
	before := e.state()
	const coll = "/v1/tenants/acme/collections/c1"
	for _, c := range []struct {
		name, method, target, body string
		status                     int
		slug, field                string
	}{
		{"collection field key in another case", "PUT", coll, `{"fields":[{"name":"a","type":"string","classification":"pii","Name":"b"}]}`, 400, "unknown-field", "fields[0].Name"},
		{"collection field key only in another case", "PUT", coll, `{"fields":[{"name":"a","type":"string","classification":"pii"},{"NAME":"b","type":"string","classification":"pii"}]}`, 400, "unknown-field", "fields[1].NAME"},
		{"collection field unknown key", "PUT", coll, `{"fields":[{"name":"a","type":"string","classification":"pii","tenant":"globex"}]}`, 400, "unknown-field", "fields[0].tenant"},
		{"collection field duplicate key", "PUT", coll, `{"fields":[{"name":"a","type":"string","classification":"pii","name":"b"}]}`, 400, "bad-request", "fields[0].name"},
		{"collection field null", "PUT", coll, `{"fields":[{"name":"a","type":null,"classification":"pii"}]}`, 400, "bad-request", "fields[0].type"},
		{"collection field wrong type", "PUT", coll, `{"fields":[{"name":"a","type":"string","classification":"pii"},{"name":"b","type":1,"classification":"pii"}]}`, 400, "bad-request", "fields[1].type"},
		{"collection enum value wrong type", "PUT", coll, `{"fields":[{"name":"a","type":"enum","classification":"pii","values":["x",2]}]}`, 400, "bad-request", "fields[0].values[1]"},
		{"collection enum value null", "PUT", coll, `{"fields":[{"name":"a","type":"enum","classification":"pii","values":["x",null]}]}`, 400, "bad-request", "fields[0].values[1]"},
		{"tenant vault key in another case", "POST", "/v1/tenants", `{"id":"v1","display_name":"V","key_provider":"vault","vault":{"Address":"https://vault.example"}}`, 400, "unknown-field", "vault.Address"},
		{"tenant vault duplicate key", "POST", "/v1/tenants", `{"id":"v1","display_name":"V","key_provider":"vault","vault":{"address":"https://a.example","address":"https://b.example"}}`, 400, "bad-request", "vault.address"},
		{"tenant vault lone surrogate", "POST", "/v1/tenants", `{"id":"v1","display_name":"V","key_provider":"vault","vault":{"token":"\udc00"}}`, 400, "bad-request", "vault.token"},
		{"api key permission null", "POST", "/v1/tenants/acme/apikeys", `{"name":"k","permissions":["read",null]}`, 400, "bad-request", "permissions[1]"},
		{"api key permission wrong type", "POST", "/v1/tenants/acme/apikeys", `{"name":"k","permissions":["read",7]}`, 400, "bad-request", "permissions[1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := checkProblem(t, e.do(c.method, c.target, c.body), c.status, c.slug, c.target)
			if len(p.Errors) != 1 || p.Errors[0].Field != c.field || p.Errors[0].Reason == "" {
				t.Errorf("errors %+v, want one naming %q", p.Errors, c.field)
			}
			if after := e.state(); after != before {
				t.Errorf("a refused request changed state: %+v -> %+v", before, after)
			}
		})
	}
	// The valid forms are accepted.
	if r := e.do("PUT", coll, `{"fields":[{"name":"a","type":"enum","classification":"pii","values":["x","y"]},{"name":"doc","type":"json","classification":"pii"}]}`); r.status != http.StatusCreated {
		t.Fatalf("valid collection: %d %s", r.status, r.body)
	}
	// Inside a json field anything goes but a duplicate key or a bad
	// string: keys in another case are different keys, null is a value,
	// and a surrogate pair is one character.
	r := e.do("POST", coll+"/records", `{"id":"r1","fields":{"a":"x","doc":{"k":null,"K":[null,"\ud83d\ude00"]}}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("valid record: %d %s", r.status, r.body)
	}
	var rec struct {
		Fields map[string]json.RawMessage `json:"fields"`
	}
	e.do("GET", coll+"/records/r1", "").json(t, &rec)
	var doc map[string][]any
	if err := json.Unmarshal(rec.Fields["doc"], &doc); err != nil || len(doc) != 2 || doc["k"] != nil ||
		len(doc["K"]) != 2 || doc["K"][1] != "😀" {
		t.Errorf("doc read back as %s (%v)", rec.Fields["doc"], err)
	}
}
