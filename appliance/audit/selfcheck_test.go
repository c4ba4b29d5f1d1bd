package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/testkit/storetest"
)

func (e *env) selfCheck(w *audit.Witness) *audit.CheckReport {
	e.t.Helper()
	rep, err := e.svc.SelfCheck(context.Background(), w)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func problems(rep *audit.CheckReport) string {
	var out []string
	for _, c := range rep.Chains {
		if !c.OK {
			out = append(out, c.Chain+": "+c.Problem)
		}
	}
	return strings.Join(out, "; ")
}

// Acceptance 2, on the live state file: single-byte flips at random
// positions inside the stored entries and the stored tree hashes of a
// node's state.db (written behind the node's back while it is stopped)
// are all found by the node's self-check, which names the chain and the
// entry.
func TestSelfCheckFindsFlippedBytes(t *testing.T) {
	e := newEnv(t)
	const n = 300
	e.fill("tenant:acme", 0, n, "")
	e.checkpoint("tenant:acme")
	e.fill("system", 0, 20, "-sys")
	e.checkpoint("system")
	w := audit.NewWitness(filepath.Join(t.TempDir(), "witness.json"))
	if rep := e.selfCheck(w); !rep.OK {
		t.Fatalf("the untouched node: %s", problems(rep))
	}
	// Compact, so every live value is in the file exactly once (no stale
	// copies in free pages that a flip could hit to no effect).
	if _, err := e.store.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(e.dir, "state.db")
	pristine, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	tree, data := buildTree(t, n, "")
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 24; trial++ {
		var region []byte
		what := ""
		if trial%3 == 2 {
			i := rng.IntN(int(tlog.StoredHashCount(n)))
			h := tree[int64(i)]
			region, what = h[:], "stored hash"
		} else {
			i := rng.IntN(n)
			region, what = data[i], "entry"
		}
		if c := bytes.Count(pristine, region); c != 1 {
			t.Fatalf("%s found %d times in state.db", what, c)
		}
		at := bytes.Index(pristine, region) + rng.IntN(len(region))
		bad := bytes.Clone(pristine)
		bad[at] ^= byte(1 + rng.IntN(255))
		if err := os.WriteFile(statePath, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		reopened := newEnvOn(t, e)
		rep := reopened.selfCheck(w)
		if rep.OK {
			t.Fatalf("trial %d: a flipped byte in a stored %s (file offset %d) went unnoticed", trial, what, at)
		}
		if p := problems(rep); !strings.Contains(p, "tenant:acme") {
			t.Fatalf("trial %d: problem %q does not name the chain", trial, p)
		}
		if err := reopened.store.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(statePath, pristine, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := newEnvOn(t, e).selfCheck(w); !rep.OK {
		t.Fatalf("the restored file: %s", problems(rep))
	}
}

// newEnvOn reopens e's data directory (keys already bootstrapped there).
func newEnvOn(t *testing.T, e *env) *env {
	t.Helper()
	store := storetest.StartWith(t, storetest.Options{Dir: e.dir})
	return &env{t: t, store: store, svc: audit.New(store, nil, nil), id: e.id, v: e.v, dir: e.dir, skey: e.skey, vkey: e.vkey}
}

// The witness: a node whose state was rolled back to a shorter history, or
// replaced by a forked one (even one signed with the cluster key), fails
// its self-check against the checkpoint it verified before.
func TestSelfCheckWitnessCatchesRollbackAndFork(t *testing.T) {
	a := newEnv(t)
	a.fill("tenant:acme", 0, 350, "")
	a.checkpoint("tenant:acme")
	wpath := filepath.Join(t.TempDir(), "witness.json")
	if rep := a.selfCheck(audit.NewWitness(wpath)); !rep.OK {
		t.Fatal(problems(rep))
	}
	witness, err := os.ReadFile(wpath)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		n       int
		variant string
		want    string
	}{
		"rolled back": {200, "", "rolled back"},
		"forked":      {350, "-forged", "Merkle root differs"},
	} {
		b := newEnvWith(t, storetest.Options{Dir: t.TempDir()}, a.skey, a.vkey)
		b.fill("tenant:acme", 0, min(c.n, 300), "")
		if c.n > 300 {
			b.fill("tenant:acme", 300, c.n, c.variant)
		}
		b.checkpoint("tenant:acme")
		if rep := b.selfCheck(nil); !rep.OK {
			t.Fatalf("%s: on its own: %s", name, problems(rep))
		}
		wp := filepath.Join(t.TempDir(), "witness.json")
		if err := os.WriteFile(wp, witness, 0o600); err != nil {
			t.Fatal(err)
		}
		rep := b.selfCheck(audit.NewWitness(wp))
		if rep.OK || !strings.Contains(problems(rep), c.want) {
			t.Fatalf("%s: self-check %v: %s", name, rep.OK, problems(rep))
		}
	}
}

// Acceptance 2, structural changes to the live file, made with bbolt
// itself so the file stays well-formed: an entry deleted, two entries
// swapped, the tail truncated with the chain head rewritten to match, and
// the whole state rolled back to an older copy. The self-check names each.
func TestSelfCheckFindsStructuralTampering(t *testing.T) {
	e := newEnv(t)
	e.fill("tenant:acme", 0, 200, "")
	e.checkpoint("tenant:acme")
	w := audit.NewWitness(filepath.Join(t.TempDir(), "witness.json"))
	if rep := e.selfCheck(w); !rep.OK {
		t.Fatal(problems(rep))
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(e.dir, "state.db")
	pristine, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	key := func(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
	chains := []byte("\x00chains")
	heads := []byte("\x00heads")
	chain := []byte("tenant:acme")
	for name, c := range map[string]struct {
		edit func(tx *bolt.Tx) error
		want string
	}{
		"delete entry 50": {func(tx *bolt.Tx) error {
			return tx.Bucket(chains).Bucket(chain).Delete(key(50))
		}, "entry 50: missing"},
		"swap entries 10 and 11": {func(tx *bolt.Tx) error {
			b := tx.Bucket(chains).Bucket(chain)
			v10, v11 := bytes.Clone(b.Get(key(10))), bytes.Clone(b.Get(key(11)))
			if err := b.Put(key(10), v11); err != nil {
				return err
			}
			return b.Put(key(11), v10)
		}, "entry 10"},
		"truncate the tail": {func(tx *bolt.Tx) error {
			b := tx.Bucket(chains).Bucket(chain)
			for seq := uint64(191); seq <= 200; seq++ {
				if err := b.Delete(key(seq)); err != nil {
					return err
				}
			}
			head := append(key(190), b.Get(key(190))[:32]...)
			return tx.Bucket(heads).Put(chain, head)
		}, "rolled back or truncated"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(statePath, pristine, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(statePath, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(c.edit); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			node := newEnvOn(t, e)
			rep := node.selfCheck(w)
			if rep.OK || !strings.Contains(problems(rep), c.want) {
				t.Fatalf("self-check %v: %q, want %q", rep.OK, problems(rep), c.want)
			}
			if err := node.store.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
