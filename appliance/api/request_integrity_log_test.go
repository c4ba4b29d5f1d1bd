package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/raftstore"
)

// TestIntegrityErrorIsLogged: a record whose sealed value was swapped with
// another record's (as with direct access to the storage) is refused 500
// integrity-error, and the failure is logged at ERROR with the request id,
// method, path and the internal error naming the collection, record and
// field; the response names none of them.
func TestIntegrityErrorIsLogged(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/all", allTypes); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	for _, b := range []string{
		`{"id":"r1","subject":"s1","fields":{"req":"jane@example.com"}}`,
		`{"id":"r2","subject":"s2","fields":{"req":"bob@example.com"}}`,
	} {
		if r := e.do("POST", "/v1/tenants/acme/collections/all/records", b); r.status != http.StatusCreated {
			t.Fatalf("record: %d %s", r.status, r.body)
		}
	}

	// Swap the sealed values of req between r1 and r2: each is a valid
	// ciphertext, but of another record.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bucket := tenancytest.Path("acme", "records", "all")
	envs := map[string]map[string]json.RawMessage{}
	sealed := map[string]map[string]json.RawMessage{}
	if err := e.store.View(ctx, raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		for _, id := range []string{"r1", "r2"} {
			raw, _, ok := tx.Get(bucket, []byte(id))
			if !ok {
				t.Fatalf("record %s is not stored under %q", id, bucket)
			}
			var env, s map[string]json.RawMessage
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(env["sealed"], &s); err != nil || s["req"] == nil {
				t.Fatalf("envelope of %s: %v %s", id, err, raw)
			}
			envs[id], sealed[id] = env, s
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var ops []raftstore.Op
	for id, other := range map[string]string{"r1": "r2", "r2": "r1"} {
		s := map[string]json.RawMessage{"req": sealed[other]["req"]}
		envs[id]["sealed"], _ = json.Marshal(s)
		forged, err := json.Marshal(envs[id])
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: bucket, Key: []byte(id), Value: forged})
	}
	if res, err := e.store.Apply(ctx, &raftstore.Txn{Ops: ops}); err != nil || !res.Applied {
		t.Fatalf("forge: %+v %v", res, err)
	}

	const target = "/v1/tenants/acme/collections/all/records/r1"
	logged := len(e.logBuf.String())
	r := e.do("GET", target, "")
	p := checkProblem(t, r, http.StatusInternalServerError, "integrity-error", target)
	for _, secret := range []string{"bob@", "jane@", "field req", "all/r1", "records:", "api:"} {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("the response carries %q: %s", secret, r.body)
		}
	}

	var entry map[string]any
	for _, line := range strings.Split(e.logBuf.String()[logged:], "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["request_id"] == p.RequestID && m["level"] == "ERROR" {
			if entry != nil {
				t.Errorf("more than one ERROR line for the request:\n%v\n%v", entry, m)
			}
			entry = m
		}
	}
	if entry == nil {
		t.Fatalf("no ERROR line with request_id %q in:\n%s", p.RequestID, e.logBuf.String()[logged:])
	}
	if entry["method"] != "GET" || entry["route"] != "/v1/tenants/:id/collections/:name/records/:rid" || entry["path"] != nil ||
		!strings.Contains(entry["msg"].(string), "integrity") {
		t.Errorf("log line: %v", entry)
	}
	errText, _ := entry["error"].(string)
	for _, want := range []string{"integrity check", "all/r1 field req", `"acme"`} {
		if !strings.Contains(errText, want) {
			t.Errorf("logged error %q does not name %q", errText, want)
		}
	}
	if strings.Contains(e.logBuf.String(), "bob@") || strings.Contains(e.logBuf.String(), "jane@") {
		t.Error("the log carries a field value")
	}

	// A refusal that is not an integrity failure logs nothing at ERROR.
	logged = len(e.logBuf.String())
	checkProblem(t, e.do("GET", "/v1/tenants/acme/collections/all/records/r9", ""), http.StatusNotFound, "not-found", "")
	if tail := e.logBuf.String()[logged:]; strings.Contains(tail, `"level":"ERROR"`) {
		t.Errorf("a 404 was logged at ERROR: %s", tail)
	}
}
