//go:build bench

package raftstore

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkProveRecord10M: proofs from a chain of ten million records. The
// tree is filled with the function the FSM stores hashes with, 100,000
// records per bbolt transaction (not through raft: only the hashes matter
// here, so the entries themselves are not written), then each proof is one
// read transaction, as a request would make. Run with
//
//	go test -tags bench -run '^$' -bench ProveRecord10M -benchtime 20000x ./raftstore/
func BenchmarkProveRecord10M(b *testing.B) {
	const size, perTx = 10_000_000, 100_000
	chain := []byte("audit")
	f, err := OpenFSM(filepath.Join(b.TempDir(), "state.db"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("a"), 300)
	start := time.Now()
	for done := uint64(0); done < size; done += perTx {
		err := f.db.Update(func(tx *bolt.Tx) error {
			s, err := writableHashes(tx, chain, done)
			if err != nil {
				return err
			}
			for rec := done; rec < done+perTx; rec++ {
				binary.BigEndian.PutUint64(data, rec) // distinct records
				if err := storeRecordHashes(s, int64(rec), data); err != nil {
					return err
				}
			}
			// The chain's head gives the tree its size; its link is not
			// needed for proofs.
			return tx.Bucket(bucketHeads).Put(chain, append(binary.BigEndian.AppendUint64(nil, done+perTx), make([]byte, 32)...))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	fill := time.Since(start)
	st, err := os.Stat(f.path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d records (%d stored hashes) in %v (%.0f records/s); state file %d MiB",
		size, tlog.StoredHashCount(size), fill.Round(time.Millisecond), size/fill.Seconds(), st.Size()>>20)

	var root tlog.Hash
	if err := f.view(func(r *ReadTx) error { root, err = r.ChainTreeHash(chain, size); return err }); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(10, 0))
	b.Run("record", func(b *testing.B) {
		for b.Loop() {
			index := rng.Uint64N(size)
			var p tlog.RecordProof
			if err := f.view(func(r *ReadTx) error { p, err = r.ChainProveRecord(chain, size, index); return err }); err != nil {
				b.Fatal(err)
			}
			if len(p) == 0 {
				b.Fatal("empty proof")
			}
		}
	})
	b.Run("record+check", func(b *testing.B) {
		for b.Loop() {
			index := rng.Uint64N(size)
			var p tlog.RecordProof
			if err := f.view(func(r *ReadTx) error { p, err = r.ChainProveRecord(chain, size, index); return err }); err != nil {
				b.Fatal(err)
			}
			binary.BigEndian.PutUint64(data, index)
			if err := tlog.CheckRecord(p, size, root, int64(index), tlog.RecordHash(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tree", func(b *testing.B) {
		for b.Loop() {
			m := 1 + rng.Int64N(size)
			if err := f.view(func(r *ReadTx) error { _, err = r.ChainProveTree(chain, size, uint64(m)); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("treehash", func(b *testing.B) {
		for b.Loop() {
			n := 1 + rng.Uint64N(size)
			if err := f.view(func(r *ReadTx) error { _, err = r.ChainTreeHash(chain, n); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
