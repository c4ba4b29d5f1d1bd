package records_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// chained is one entry of a chain, with its stored encoding.
type chained struct {
	audit.Entry
	raw string
}

// entries returns the entries of tenant's chain after seq after whose
// action is action.
func (e *env) entries(tenant string, after uint64, action string) []chained {
	e.t.Helper()
	var out []chained
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		var derr error
		r.ChainEntries(tenancytest.Chain(tenant), after+1, func(_ uint64, _ [32]byte, data []byte) bool {
			en, err := audit.Decode(data)
			if err != nil {
				derr = err
				return false
			}
			if en.Action == action {
				out = append(out, chained{en, string(data)})
			}
			return true
		})
		return derr
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// create stores record id of tenant's guests with email and subject.
func (e *env) create(svc *records.Service, tenant, id, subject, email string) {
	e.t.Helper()
	in := records.Input{ID: id, Subject: subject, Fields: map[string]json.RawMessage{"email": json.RawMessage(`"` + email + `"`), "n": json.RawMessage(`7`)}}
	if _, err := svc.Create(context.Background(), custos, tenant, "guests", in); err != nil {
		e.t.Fatal(err)
	}
}

// forge rewrites the stored envelopes of tenant's guests, as with direct
// access to the storage (a raw store transaction): edit gets each decoded
// envelope and returns the bytes to store.
func (e *env) forge(tenant string, ids []string, edit func(envs map[string]map[string]json.RawMessage) map[string][]byte) {
	e.t.Helper()
	ctx := context.Background()
	bucket := tenancytest.Path(tenant, "records", "guests")
	envs := map[string]map[string]json.RawMessage{}
	if err := e.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		for _, id := range ids {
			raw, _, ok := r.Get(bucket, []byte(id))
			if !ok {
				e.t.Fatalf("record %s is not stored under %q", id, bucket)
			}
			var env map[string]json.RawMessage
			if err := json.Unmarshal(raw, &env); err != nil {
				e.t.Fatal(err)
			}
			envs[id] = env
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	var ops []raftstore.Op
	for id, v := range edit(envs) {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: bucket, Key: []byte(id), Value: v})
	}
	if res, err := e.store.Apply(ctx, &raftstore.Txn{Ops: ops}); err != nil || !res.Applied {
		e.t.Fatalf("forge: %+v %v", res, err)
	}
}

// swapEmails swaps the sealed email values of records a and b: each is a
// valid ciphertext, but of the other record.
func (e *env) swapEmails(tenant, a, b string) {
	e.t.Helper()
	e.forge(tenant, []string{a, b}, func(envs map[string]map[string]json.RawMessage) map[string][]byte {
		sealed := map[string]map[string]json.RawMessage{}
		for id, env := range envs {
			var s map[string]json.RawMessage
			if err := json.Unmarshal(env["sealed"], &s); err != nil || s["email"] == nil {
				e.t.Fatalf("envelope of %s: %v", id, err)
			}
			sealed[id] = s
		}
		out := map[string][]byte{}
		for id, other := range map[string]string{a: b, b: a} {
			s := maps.Clone(sealed[id])
			s["email"] = sealed[other]["email"]
			envs[id]["sealed"], _ = json.Marshal(s)
			out[id], _ = json.Marshal(envs[id])
		}
		return out
	})
}

// indexKeys are the keys of tenant's guests email index that end in id.
func (e *env) indexKeys(tenant, id string) int {
	e.t.Helper()
	n := 0
	if err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.Scan(tenancytest.Path(tenant, "index", "guests", "email"), nil, 0, func(k, _ []byte, _ uint64) bool {
			if len(k) == 32+len(id) && bytes.HasSuffix(k, []byte(id)) {
				n++
			}
			return true
		})
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) find(svc *records.Service, tenant, email string) []string {
	e.t.Helper()
	ids, _, err := svc.Find(context.Background(), custos, tenant, "guests", "email", json.RawMessage(`"`+email+`"`), "", 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// TestDeleteTamperedRecord: a record whose sealed value was swapped with
// another record's cannot be read, but can be deleted: the envelope, its
// subject entry and its index entries (found by a scan, since its value
// does not open) go, and the delete is audited with the failure noted.
// The other record's entries stay. A record whose envelope does not even
// decode is deleted too.
func TestDeleteTamperedRecord(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	e.tenant(svc, "acme")
	ctx := context.Background()
	e.create(svc, "acme", "t1", "s-1", "ann@acme.example")
	e.create(svc, "acme", "t2", "s-2", "bob@acme.example")
	e.swapEmails("acme", "t1", "t2")

	if _, err := svc.Get(ctx, reader(1), "acme", "guests", "t1", false); !errors.Is(err, records.ErrIntegrity) {
		t.Fatalf("read of the tampered record: %v, want ErrIntegrity", err)
	}
	if n := e.indexKeys("acme", "t1"); n != 1 {
		t.Fatalf("%d index entries of t1 before the delete, want 1", n)
	}
	size := e.chainSize("acme")
	if err := svc.Delete(ctx, custos, "acme", "guests", "t1"); err != nil {
		t.Fatalf("delete of the tampered record: %v", err)
	}
	if _, ok, err := svc.Attributes(ctx, custos, "acme", "guests", "t1"); err != nil || ok {
		t.Fatalf("t1 exists after its delete: %v %v", ok, err)
	}
	if _, err := svc.Get(ctx, reader(2), "acme", "guests", "t1", false); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("read after the delete: %v, want ErrNotFound", err)
	}
	if n := e.indexKeys("acme", "t1"); n != 0 {
		t.Fatalf("%d index entries of t1 after its delete", n)
	}
	if ids := e.find(svc, "acme", "ann@acme.example"); len(ids) != 0 {
		t.Fatalf("find by t1's old value: %v, want nothing", ids)
	}
	if _, err := svc.Subject(ctx, custos, "acme", "s-1"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("t1's subject still holds something: %v", err)
	}
	// t2, tampered too, keeps all it had.
	if ids := e.find(svc, "acme", "bob@acme.example"); !slices.Equal(ids, []string{"t2"}) {
		t.Fatalf("find by t2's value: %v, want [t2]", ids)
	}
	if held, err := svc.Subject(ctx, custos, "acme", "s-2"); err != nil || len(held) != 1 || held[0].ID != "t2" {
		t.Fatalf("t2's subject: %v %v", held, err)
	}
	dels := e.entries("acme", size, "record.delete")
	if len(dels) != 1 {
		t.Fatalf("%d record.delete entries, want 1", len(dels))
	}
	want := map[string]string{"integrity_failure": "fields", "fields": "email", "fields_failed": "1"}
	if d := dels[0]; d.Target != "record:guests/t1" || d.Outcome != audit.OutcomeSuccess || !maps.Equal(d.Details, want) {
		t.Fatalf("delete entry %+v, want target record:guests/t1, success, details %v", d.Entry, want)
	}

	// A record without tampering is deleted as ever: no failure noted.
	size = e.chainSize("acme")
	if err := svc.Delete(ctx, custos, "acme", "guests", "g1"); err != nil {
		t.Fatal(err)
	}
	if dels := e.entries("acme", size, "record.delete"); len(dels) != 1 || len(dels[0].Details) != 0 {
		t.Fatalf("delete entries %+v, want one without details", dels)
	}

	// An envelope that does not decode (a version that is not a number):
	// its subject, stored in the clear, still names the subject entry.
	e.create(svc, "acme", "t9", "s-9", "eve@acme.example")
	e.forge("acme", []string{"t9"}, func(envs map[string]map[string]json.RawMessage) map[string][]byte {
		envs["t9"]["version"] = json.RawMessage(`"one"`)
		b, _ := json.Marshal(envs["t9"])
		return map[string][]byte{"t9": b}
	})
	size = e.chainSize("acme")
	if _, err := svc.Get(ctx, reader(3), "acme", "guests", "t9", false); !errors.Is(err, records.ErrIntegrity) {
		t.Fatalf("read of a broken envelope: %v, want ErrIntegrity", err)
	}
	if f := e.entries("acme", size, "record.integrity_failure"); len(f) != 1 || !maps.Equal(f[0].Details, map[string]string{"failed": "envelope"}) {
		t.Fatalf("integrity entries %+v, want one naming the envelope", f)
	}
	if err := svc.Delete(ctx, custos, "acme", "guests", "t9"); err != nil {
		t.Fatalf("delete of a broken envelope: %v", err)
	}
	if n := e.indexKeys("acme", "t9"); n != 0 {
		t.Fatalf("%d index entries of t9 after its delete", n)
	}
	if _, err := svc.Subject(ctx, custos, "acme", "s-9"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("t9's subject still holds something: %v", err)
	}
	if dels := e.entries("acme", size, "record.delete"); len(dels) != 1 || !maps.Equal(dels[0].Details, map[string]string{"integrity_failure": "envelope"}) {
		t.Fatalf("delete entries %+v, want one noting the envelope", dels)
	}
}

// TestIntegrityFailureAudited: a read that finds a value that does not
// open — Get, and the read step of Replace and Patch — fails with
// ErrIntegrity and leaves one record.integrity_failure entry naming the
// field (never a value). The entry is best effort: when it cannot be
// written, the read still fails with ErrIntegrity.
func TestIntegrityFailureAudited(t *testing.T) {
	var refuse atomic.Bool
	fault := func(chain, data []byte) error {
		if refuse.Load() && bytes.Contains(data, []byte(`"record.integrity_failure"`)) {
			return errors.New("test: chain refuses integrity entries")
		}
		return nil
	}
	e := newEnv(t, storetest.Options{ChainFault: fault})
	svc := e.service()
	e.tenant(svc, "acme")
	ctx := context.Background()
	e.create(svc, "acme", "t1", "", "ann@acme.example")
	e.create(svc, "acme", "t2", "", "bob@acme.example")
	e.swapEmails("acme", "t1", "t2")
	email := records.Input{Fields: map[string]json.RawMessage{"email": json.RawMessage(`"new@acme.example"`)}}

	ops := []struct {
		name string
		call func(caller audit.Principal) error
	}{
		{"get", func(c audit.Principal) error { _, err := svc.Get(ctx, c, "acme", "guests", "t1", false); return err }},
		{"get-masked", func(c audit.Principal) error { _, err := svc.Get(ctx, c, "acme", "guests", "t1", true); return err }},
		{"replace", func(c audit.Principal) error {
			_, err := svc.Replace(ctx, c, "acme", "guests", "t1", email, 0)
			return err
		}},
		{"patch", func(c audit.Principal) error {
			_, err := svc.Patch(ctx, c, "acme", "guests", "t1", records.Input{Fields: map[string]json.RawMessage{"n": json.RawMessage(`8`)}}, false, false, 0)
			return err
		}},
	}
	for i, op := range ops {
		size := e.chainSize("acme")
		caller := reader(100 + i)
		if err := op.call(caller); !errors.Is(err, records.ErrIntegrity) {
			t.Fatalf("%s: %v, want ErrIntegrity", op.name, err)
		}
		got := e.entries("acme", size, "record.integrity_failure")
		if len(got) != 1 {
			t.Fatalf("%s: %d integrity entries, want 1", op.name, len(got))
		}
		want := map[string]string{"failed": "fields", "fields": "email", "fields_failed": "1"}
		if g := got[0]; g.Target != "record:guests/t1" || g.Outcome != audit.OutcomeFailure || g.RequestID != caller.RequestID || !maps.Equal(g.Details, want) {
			t.Fatalf("%s: entry %+v, want target record:guests/t1, failure, request %s, details %v", op.name, g.Entry, caller.RequestID, want)
		}
		if strings.Contains(got[0].raw, "@acme") {
			t.Fatalf("%s: the entry carries a value: %s", op.name, got[0].raw)
		}
		if n := len(e.entries("acme", size, "record.read")) + len(e.entries("acme", size, "record.update")); n != 0 {
			t.Fatalf("%s: %d read or update entries for a refused operation", op.name, n)
		}
	}

	// The chain refuses the entry: the read still fails as an integrity
	// failure, and nothing is written.
	refuse.Store(true)
	size := e.chainSize("acme")
	if _, err := svc.Get(ctx, reader(200), "acme", "guests", "t1", false); !errors.Is(err, records.ErrIntegrity) {
		t.Fatalf("read with the entry refused: %v, want ErrIntegrity", err)
	}
	if n := e.chainSize("acme"); n != size {
		t.Fatalf("chain grew from %d to %d", size, n)
	}
}
