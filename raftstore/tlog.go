package raftstore

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// Every chain is also a transparency log (RFC 6962, as Go's checksum
// database does it): record i is the data of entry i+1, and the hashes of
// its Merkle tree are stored as entries are applied, so that tree hashes and
// proofs are reads, never recomputations. See DESIGN.md, "Chain Merkle
// trees"; the reads are ReadTx's Chain* methods (read.go).

// bucketTlog holds the stored hashes: \x00tlog/<chain>/<record, 8 bytes
// big-endian> → the hashes that record added to the tree, 32 bytes each:
// its leaf hash, then the hashes of the subtrees it completed
// (tlog.StoredHashes), which sit at stored hash indexes
// StoredHashIndex(0, record) and on.
var bucketTlog = []byte("\x00tlog")

// hashStore is one chain's stored hashes. It is the tlog.HashReader the
// tree functions read through, in a read or a write transaction.
type hashStore struct {
	chain []byte
	b     *bolt.Bucket // nil: the chain has no stored hashes
}

// ReadHashes returns the hashes at the given stored hash indexes, copied out
// of bbolt.
func (s hashStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	lastRecord, v := int64(-1), []byte(nil) // proofs ask for neighbours: read each record once
	for i, idx := range indexes {
		record, level := int64(-1), 0
		if idx >= 0 {
			record, level = storedBy(idx)
		}
		if record != lastRecord {
			lastRecord, v = record, s.record(record)
		}
		if len(v) < tlog.HashSize*(level+1) {
			return nil, fmt.Errorf("chain %q: stored hash %d missing", s.chain, idx)
		}
		copy(out[i][:], v[tlog.HashSize*level:])
	}
	return out, nil
}

// storedBy returns the record that stored the hash at a stored hash index,
// and the hash's offset among that record's hashes: the hash at level L,
// position n of the tree was stored by the last leaf below it, record
// ((n+1) << L) - 1, as its L-th hash.
func storedBy(index int64) (record int64, level int) {
	level, n := tlog.SplitStoredHashIndex(index)
	return (n+1)<<level - 1, level
}

// record returns the hashes record stored (aliasing bbolt memory), or nil.
func (s hashStore) record(record int64) []byte {
	if s.b == nil || record < 0 {
		return nil
	}
	return s.b.Get(binary.BigEndian.AppendUint64(nil, uint64(record)))
}

// storeRecordHashes stores the hashes that record (0-based) with data adds
// to the tree, in one value. It reads earlier hashes through s, so within a
// write transaction it sees what that transaction wrote. writableHashes
// rebuilds a chain's hashes with it, and the 10M-record benchmark fills its
// tree with it.
func storeRecordHashes(s hashStore, record int64, data []byte) error {
	return storeLeafHashes(s, record, tlog.RecordHash(data))
}

// storeLeafHashes is storeRecordHashes given the record's leaf hash: every
// append calls it (appendChain computes the leaf hash once, for the link and
// the tree).
func storeLeafHashes(s hashStore, record int64, leaf tlog.Hash) error {
	hashes, err := tlog.StoredHashesForRecordHash(record, leaf, s)
	if err != nil {
		return err
	}
	v := make([]byte, 0, tlog.HashSize*len(hashes))
	for _, h := range hashes {
		v = append(v, h[:]...)
	}
	// bbolt keeps key and value until the transaction ends: fresh slices.
	if err := s.b.Put(binary.BigEndian.AppendUint64(nil, uint64(record)), v); err != nil {
		return fmt.Errorf("chain %q: store hashes of record %d: %v", s.chain, record, err)
	}
	return nil
}

// writableHashes returns a chain's hash store in a write transaction,
// holding the hashes of its first size records. A chain whose stored hashes
// stop short of that — written before they existed, or partly by an older
// node in a rolling upgrade — gets them rebuilt from its entries,
// deterministically, so every node ends with the same hashes. That fails
// only if entries the rebuild needs were pruned.
func writableHashes(tx *bolt.Tx, chain []byte, size uint64) (hashStore, error) {
	root := tx.Bucket(bucketTlog)
	s := hashStore{chain: chain, b: root.Bucket(chain)}
	if s.b != nil {
		s.b.FillPercent = 1 // keys only ever grow: fill pages completely
		if size == 0 || s.record(int64(size)-1) != nil {
			return s, nil
		}
		if err := root.DeleteBucket(chain); err != nil {
			return s, fmt.Errorf("chain %q: drop stored hashes: %v", chain, err)
		}
	}
	b, err := root.CreateBucket(chain)
	if err != nil {
		return s, fmt.Errorf("chain %q: create stored hashes: %v", chain, err)
	}
	b.FillPercent = 1
	s.b = b
	entries := tx.Bucket(bucketChains).Bucket(chain)
	for seq := uint64(1); seq <= size; seq++ {
		var v []byte
		if entries != nil {
			v = entries.Get(binary.BigEndian.AppendUint64(nil, seq))
		}
		if len(v) < 32 {
			return s, fmt.Errorf("chain %q: rebuild stored hashes: entry %d missing", chain, seq)
		}
		if err := storeRecordHashes(s, int64(seq-1), v[32:]); err != nil {
			return s, fmt.Errorf("chain %q: rebuild stored hashes: %v", chain, err)
		}
	}
	return s, nil
}
