package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// env is the audit service over a real single-node store with the
// cluster's checkpoint keys bootstrapped as operator init does.
type env struct {
	t     testing.TB
	store *raftstore.Store
	svc   *audit.Service
	id    *age.X25519Identity
	v     note.Verifier
	dir   string
	skey  string
	vkey  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	skey, vkey, err := audit.NewKeys("custos-audit-test")
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, storetest.Options{Dir: t.TempDir()}, skey, vkey)
}

// newEnvWith makes an env with the given checkpoint key pair: a second
// store with the same cluster key makes a fork.
func newEnvWith(t testing.TB, o storetest.Options, skey, vkey string) *env {
	t.Helper()
	store := storetest.StartWith(t, o)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := keyring.EncryptToRecipients([]string{id.Recipient().String()}, []byte(skey))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := store.Apply(context.Background(), &raftstore.Txn{Ops: audit.BootstrapOps(vkey, enc)}); err != nil || !res.Applied {
		t.Fatalf("bootstrap: %+v %v", res, err)
	}
	v, err := audit.Verifier([]byte(vkey))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, svc: audit.New(store, []age.Identity{id}, nil), id: id, v: v, dir: o.Dir, skey: skey, vkey: vkey}
}

// entry is the i-th test entry of a chain (fixed times: bytes are
// reproducible, so two stores can hold the same history).
func entry(i int, variant string) audit.Entry {
	return audit.Entry{
		Time:   time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Actor:  audit.Actor{Type: audit.ActorUser, ID: fmt.Sprintf("u-%d", i%7)},
		Action: []string{"record.read", "record.write", "consent.grant"}[i%3],
		Target: fmt.Sprintf("guests/r%d%s", i, variant), Outcome: audit.OutcomeSuccess,
		Details: map[string]string{"n": fmt.Sprint(i)},
	}
}

// fill appends entries from..to-1 of chain, many per transaction.
func (e *env) fill(chain string, from, to int, variant string) {
	e.t.Helper()
	ctx := context.Background()
	for start := from; start < to; start += 1000 {
		txn := &raftstore.Txn{}
		for i := start; i < min(start+1000, to); i++ {
			a, err := audit.Record(chain, entry(i, variant))
			if err != nil {
				e.t.Fatal(err)
			}
			txn.Appends = append(txn.Appends, a)
		}
		if res, err := e.store.Apply(ctx, txn); err != nil || !res.Applied {
			e.t.Fatalf("fill: %+v %v", res, err)
		}
	}
}

// memTree is the tree of the same entries computed independently, in
// memory, with tlog: what a client checks proofs against.
type memTree map[int64]tlog.Hash

func (m memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := m[x]
		if !ok {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = h
	}
	return out, nil
}

func buildTree(t testing.TB, n int, variant string) (memTree, [][]byte) {
	t.Helper()
	m := memTree{}
	var data [][]byte
	for i := 0; i < n; i++ {
		e := entry(i, variant)
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), b, m)
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range hs {
			m[tlog.StoredHashIndex(0, int64(i))+int64(j)] = h
		}
		data = append(data, b)
	}
	return m, data
}

// Acceptance 3: inclusion and consistency proofs from the service verify
// with the tlog functions against independently computed roots, for random
// indexes and sizes up to 100,000.
func TestProofsVerify(t *testing.T) {
	const n = 100_000
	e := newEnv(t)
	e.fill("tenant:acme", 0, n, "")
	tree, data := buildTree(t, n, "")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < 300; k++ {
		size := uint64(1 + rng.IntN(n))
		if k == 0 {
			size = n
		}
		index := uint64(rng.IntN(int(size)))
		p, err := e.svc.ProveInclusion(ctx, "tenant:acme", index, size)
		if err != nil {
			t.Fatal(err)
		}
		root, err := tlog.TreeHash(int64(size), tree)
		if err != nil {
			t.Fatal(err)
		}
		if p.Root != root || !bytes.Equal(p.Entry, data[index]) {
			t.Fatalf("index %d size %d: root or entry differs", index, size)
		}
		if err := tlog.CheckRecord(p.Proof, int64(size), root, int64(index), tlog.RecordHash(data[index])); err != nil {
			t.Fatalf("inclusion proof of %d in %d does not verify: %v", index, size, err)
		}
		old := uint64(1 + rng.IntN(int(size)))
		cp, err := e.svc.ProveConsistency(ctx, "tenant:acme", old, size)
		if err != nil {
			t.Fatal(err)
		}
		oldRoot, _ := tlog.TreeHash(int64(old), tree)
		if err := tlog.CheckTree(cp.Proof, int64(size), root, int64(old), oldRoot); err != nil {
			t.Fatalf("consistency proof %d -> %d does not verify: %v", old, size, err)
		}
		// A proof does not verify for another entry.
		if index > 0 {
			if err := tlog.CheckRecord(p.Proof, int64(size), root, int64(index), tlog.RecordHash(data[index-1])); err == nil {
				t.Fatal("a proof verified for the wrong entry")
			}
		}
	}
	for _, c := range []struct{ index, size uint64 }{{5, n + 1}, {n, n}} {
		if _, err := e.svc.ProveInclusion(ctx, "tenant:acme", c.index, c.size); err == nil {
			t.Errorf("proof of %d in %d: no error", c.index, c.size)
		}
	}
}
