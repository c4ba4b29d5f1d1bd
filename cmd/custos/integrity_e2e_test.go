package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2ERecordIntegrityFileTamper (issue 5, acceptance 3): a ciphertext
// moved inside the state file — from tenant A's record into tenant B's,
// into another field or record of A, the whole envelope into B's record,
// a version bumped, a byte flipped — does not open: the record is answered
// 500 integrity-error problem+json, never served, and A's plaintext is in
// no answer. Records not touched read as before.
//
// It runs on a three-node cluster. Every node holds the same state (the
// ciphertexts are made once, by the node that handles the write, and
// replicated in the raft log), so the test stops all three nodes, makes
// the same edit in each node's state file (state.db in the data directory,
// raftstore.Open), and starts them again; then every node must refuse the
// moved values, whichever answers.
//
// Why the edit survives a restart: the state file records the last raft
// index it applied (\x00meta/applied_index, committed with the data it
// covers), raft is configured with NoSnapshotRestoreOnStart, a snapshot is
// restored at start only when it is ahead of the state file
// (catchUpFromSnapshot), and the FSM skips every log entry at or below the
// file's index (FSM.ApplyBatch). A cleanly stopped node has committed all
// it applied, so restarting re-applies nothing that wrote these records.
// The test does not rely on that reasoning: it checks that the edits are
// what the nodes read — one record deleted in the files is 404 after the
// restart (it would be back had the log been replayed over the file), and
// every tampered record fails while the controls succeed.
func TestE2ERecordIntegrityFileTamper(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	x := newRxClient(t, ctx, c)
	n1 := c.Nodes[0]

	schema := `{"fields":[
		{"name":"email","type":"string","required":true,"classification":"pii","index":true},
		{"name":"name","type":"string","classification":"pii"}]}`
	for _, tn := range []string{"acme", "globex"} {
		x.must(n1.APIAddr, "POST", "/v1/tenants", `{"id":"`+tn+`","display_name":"X"}`, http.StatusCreated)
		x.must(n1.APIAddr, "PUT", "/v1/tenants/"+tn+"/collections/guests", schema, http.StatusCreated)
	}
	// The plaintexts; every record's values are unique, so an answer that
	// contains one of them is traced to its record.
	plain := map[string][2]string{ // tenant/id -> email, name
		"acme/g1":   {"jane.source@acme.test", "Jane Source"},
		"acme/g2":   {"ann.fieldswap@acme.test", "Ann Fieldswap"},
		"acme/g3":   {"carl.target@acme.test", "Carl Target"},
		"acme/g4":   {"vera.version@acme.test", "Vera Version"},
		"acme/g5":   {"dora.deleted@acme.test", "Dora Deleted"},
		"acme/g6":   {"fred.flipped@acme.test", "Fred Flipped"},
		"acme/g7":   {"sam.subject@acme.test", "Sam Subject"},
		"globex/g1": {"bob.samesid@globex.test", "Bob Sameid"},
		"globex/g2": {"eve.envelope@globex.test", "Eve Envelope"},
		"globex/g3": {"gus.control@globex.test", "Gus Control"},
	}
	k := 0
	for key, v := range plain {
		tn, id, _ := strings.Cut(key, "/")
		k++
		subject := ""
		if key == "acme/g7" {
			subject = `"subject":"guest-7",`
		}
		x.must(c.Nodes[k%3].APIAddr, "POST", "/v1/tenants/"+tn+"/collections/guests/records",
			fmt.Sprintf(`{"id":%q,%s"fields":{"email":%q,"name":%q}}`, id, subject, v[0], v[1]), http.StatusCreated)
	}
	// The subject guest-8 gets its own data key (acme/g7 is moved to it).
	x.must(n1.APIAddr, "POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g8","subject":"guest-8","fields":{"email":"other.subject@acme.test"}}`, http.StatusCreated)
	recURL := func(key string) string {
		tn, id, _ := strings.Cut(key, "/")
		return "/v1/tenants/" + tn + "/collections/guests/records/" + id
	}
	// Every record reads before the edit, through every node.
	for key, v := range plain {
		for _, n := range c.Nodes {
			r := x.must(n.APIAddr, "GET", recURL(key), "", http.StatusOK)
			if rec := rxDecodeRecord(t, r); string(rec.Fields["email"]) != `"`+v[0]+`"` {
				t.Fatalf("%s via %s before the edit: %s", key, n.ID, r.Body)
			}
		}
	}
	c.WaitCaughtUp(30*time.Second, true, c.Nodes...)

	// Stop every node gracefully: the state files are then complete and
	// unlocked.
	for _, n := range c.Nodes {
		if err := n.Proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		code, ok := n.Proc.Wait(30 * time.Second)
		if !ok {
			t.Fatalf("%s did not exit within 30s of SIGTERM", n.ID)
		}
		if code != 0 {
			t.Fatalf("%s exited %d after SIGTERM", n.ID, code)
		}
	}

	// The same edits in every node's state file.
	var reference map[string][]byte
	for _, n := range c.Nodes {
		vals := tamperStateFile(t, filepath.Join(n.DataDir, "state.db"), true)
		if reference == nil {
			reference = vals
			continue
		}
		// The nodes held the same bytes before the edit: the claim that
		// every node serves the same state.
		for k, v := range reference {
			if !bytes.Equal(vals[k], v) {
				t.Fatalf("%s: stored %s differs from %s's", n.ID, k, c.Nodes[0].ID)
			}
		}
	}

	for _, n := range c.Nodes {
		c.Start(n)
	}
	for _, n := range c.Nodes {
		c.WaitHealthy(n, 60*time.Second)
	}
	c.WaitLeader(30 * time.Second)

	// Every plaintext and the base64 of every stored ciphertext: none may
	// appear in an answer about a tampered record.
	var secrets []string
	for _, v := range plain {
		secrets = append(secrets, v[0], v[1], strings.SplitN(v[0], "@", 2)[0])
	}
	for k, ct := range reference {
		if strings.Count(k, "/") == 2 && len(ct) > 0 { // tenant/id/field: a ciphertext
			secrets = append(secrets, base64.StdEncoding.EncodeToString(ct)[:24])
		}
	}
	tampered := []struct{ key, how string }{
		{"globex/g1", "email ciphertext copied from acme/g1 (same collection, id, field and version; another tenant)"},
		{"globex/g2", "whole envelope copied from acme/g1 (another tenant)"},
		{"acme/g2", "email ciphertext copied into its own name field"},
		{"acme/g3", "email ciphertext copied from acme/g1 (another record of the same tenant)"},
		{"acme/g4", "version raised from 1 to 2, ciphertexts unchanged"},
		{"acme/g6", "one bit of the email ciphertext flipped"},
		{"acme/g7", "subject changed to guest-8 (another subject's data key)"},
	}
	for _, n := range c.Nodes {
		for _, tc := range tampered {
			what := fmt.Sprintf("%s via %s (%s)", tc.key, n.ID, tc.how)
			r := x.call(n.APIAddr, "GET", recURL(tc.key), "")
			rxCheckProblem(t, what, r, http.StatusInternalServerError, "integrity-error")
			noSecrets(t, what, r, secrets)
			// Masked reads and writes that would re-seal the record's
			// values (a patch of another field) refuse it too.
			r = x.call(n.APIAddr, "GET", recURL(tc.key)+"?mask=true", "")
			rxCheckProblem(t, what+", masked", r, http.StatusInternalServerError, "integrity-error")
			noSecrets(t, what+", masked", r, secrets)
		}
		// The controls: A's source record and B's untouched record read as
		// before, through every node.
		for _, key := range []string{"acme/g1", "globex/g3"} {
			r := x.must(n.APIAddr, "GET", recURL(key), "", http.StatusOK)
			rec := rxDecodeRecord(t, r)
			if string(rec.Fields["email"]) != `"`+plain[key][0]+`"` || string(rec.Fields["name"]) != `"`+plain[key][1]+`"` || rec.Version != 1 {
				t.Errorf("control %s via %s: %s", key, n.ID, r.Body)
			}
		}
		// The record deleted in the files stays deleted: the nodes read
		// the edited files, not a replay of the log.
		rxCheckProblem(t, "acme/g5 via "+n.ID+" (deleted in the state file)", x.call(n.APIAddr, "GET", recURL("acme/g5"), ""), http.StatusNotFound, "not-found")
	}
	// A patch of another field of a tampered record would re-seal the moved
	// value under the record's own place; it is refused, and serves nothing.
	for _, tc := range tampered {
		r := x.call(n1.APIAddr, "PATCH", recURL(tc.key), `{"fields":{"name":"Laundered"}}`)
		rxCheckProblem(t, tc.key+": patch", r, http.StatusInternalServerError, "integrity-error")
		noSecrets(t, tc.key+": patch", r, secrets)
		r = x.call(n1.APIAddr, "PUT", recURL(tc.key), `{"fields":{"email":"new@x.test"}}`)
		rxCheckProblem(t, tc.key+": replace", r, http.StatusInternalServerError, "integrity-error")
	}
	// Still refused afterwards (the refused writes changed nothing), and
	// the controls still read.
	rxCheckProblem(t, "globex/g1 after the refused writes", x.call(c.Nodes[2].APIAddr, "GET", recURL("globex/g1"), ""), http.StatusInternalServerError, "integrity-error")
	x.must(c.Nodes[1].APIAddr, "GET", recURL("acme/g1"), "", http.StatusOK)
}

// noSecrets fails if the answer r contains any of secrets.
func noSecrets(t *testing.T, what string, r *client.Response, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(bytes.ToLower(r.Body), bytes.ToLower([]byte(s))) {
			t.Errorf("%s: the answer contains %q: %s", what, s, r.Body)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(strings.ToLower(v), strings.ToLower(s)) {
					t.Errorf("%s: header %s contains %q", what, k, s)
				}
			}
		}
	}
}

// tamperStateFile opens a stopped node's state file directly with bbolt
// and, if edit is set, makes the edits TestE2ERecordIntegrityFileTamper
// describes. It returns the stored sealed values before the edit, keyed
// "tenant/id/field" (and "tenant/id" for the whole stored value), so the
// caller can compare nodes.
//
// Layout (raftstore: nested buckets, every value prefixed by its 8-byte
// big-endian store version; records package doc: the records of a
// collection under ["tenant:<t>", "records", <collection>], key the record
// id, value the envelope JSON with sealed fields as base64).
func tamperStateFile(t *testing.T, path string, edit bool) map[string][]byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	before := map[string][]byte{}
	err = db.Update(func(tx *bolt.Tx) error {
		bucket := func(tenant string) (*bolt.Bucket, error) {
			p := tenancytest.Path(tenant, "records", "guests")
			b := tx.Bucket(p[0])
			for _, name := range p[1:] {
				if b == nil {
					break
				}
				b = b.Bucket(name)
			}
			if b == nil {
				return nil, fmt.Errorf("no bucket %q", p)
			}
			return b, nil
		}
		acme, err := bucket("acme")
		if err != nil {
			return err
		}
		globex, err := bucket("globex")
		if err != nil {
			return err
		}
		type stored struct {
			b       *bolt.Bucket
			id      string
			version []byte                     // the 8-byte store version
			env     map[string]json.RawMessage // the envelope, as stored
			sealed  map[string][]byte
		}
		load := func(b *bolt.Bucket, tenant, id string) (*stored, error) {
			v := b.Get([]byte(id))
			if len(v) < 8 {
				return nil, fmt.Errorf("%s/%s: not stored", tenant, id)
			}
			s := &stored{b: b, id: id, version: bytes.Clone(v[:8])}
			if err := json.Unmarshal(v[8:], &s.env); err != nil {
				return nil, fmt.Errorf("%s/%s: envelope: %v", tenant, id, err)
			}
			if err := json.Unmarshal(s.env["sealed"], &s.sealed); err != nil {
				return nil, fmt.Errorf("%s/%s: sealed: %v", tenant, id, err)
			}
			before[tenant+"/"+id] = bytes.Clone(v[8:])
			for f, ct := range s.sealed {
				before[tenant+"/"+id+"/"+f] = ct
			}
			return s, nil
		}
		save := func(s *stored) error {
			var err error
			if s.env["sealed"], err = json.Marshal(s.sealed); err != nil {
				return err
			}
			env, err := json.Marshal(s.env)
			if err != nil {
				return err
			}
			return s.b.Put([]byte(s.id), append(bytes.Clone(s.version), env...))
		}
		recs := map[string]*stored{}
		for _, key := range []string{"acme/g1", "acme/g2", "acme/g3", "acme/g4", "acme/g5", "acme/g6", "acme/g7", "acme/g8", "globex/g1", "globex/g2", "globex/g3"} {
			tn, id, _ := strings.Cut(key, "/")
			b := acme
			if tn == "globex" {
				b = globex
			}
			if recs[key], err = load(b, tn, id); err != nil {
				return err
			}
		}
		if binary.BigEndian.Uint64(recs["acme/g1"].version) == 0 {
			return fmt.Errorf("acme/g1: store version 0")
		}
		if !edit {
			return nil
		}
		src := recs["acme/g1"].sealed["email"]
		if len(src) == 0 {
			return fmt.Errorf("acme/g1 has no sealed email")
		}
		// Another tenant's record of the same collection, id, field and
		// version: only the tenant (and so the key) differs.
		recs["globex/g1"].sealed["email"] = bytes.Clone(src)
		// The whole envelope into another tenant's record.
		g2 := recs["globex/g2"]
		if err := g2.b.Put([]byte(g2.id), append(bytes.Clone(g2.version), before["acme/g1"]...)); err != nil {
			return err
		}
		// Into another field of the record it belongs to.
		recs["acme/g2"].sealed["name"] = bytes.Clone(recs["acme/g2"].sealed["email"])
		// Into another record of the same tenant, same field.
		recs["acme/g3"].sealed["email"] = bytes.Clone(src)
		// The version the values are bound to.
		recs["acme/g4"].env["version"] = json.RawMessage("2")
		// One bit.
		flipped := bytes.Clone(recs["acme/g6"].sealed["email"])
		flipped[len(flipped)/2] ^= 0x01
		recs["acme/g6"].sealed["email"] = flipped
		// Another subject: its values are sealed under guest-7's key.
		recs["acme/g7"].env["subject"] = json.RawMessage(`"guest-8"`)
		// globex/g3 (a control) goes through the same decode and encode
		// unchanged: the re-encoding alone breaks nothing.
		for _, key := range []string{"globex/g1", "acme/g2", "acme/g3", "acme/g4", "acme/g6", "acme/g7", "globex/g3"} {
			if err := save(recs[key]); err != nil {
				return err
			}
		}
		// The proof that the nodes read the edited file.
		return acme.Delete([]byte("g5"))
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return before
}
