package raftstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// ReadTx is a read-only view of the state. Every slice it returns is a copy,
// safe to keep after the transaction ends, except the data ChainEntries
// passes to its callback.
type ReadTx struct{ tx *bolt.Tx }

// Get returns the value and version of key in bucket.
func (r *ReadTx) Get(bucket [][]byte, key []byte) (value []byte, version uint64, ok bool) {
	v, ver, ok := getVersioned(bucketAt(r.tx, bucket), key)
	if !ok {
		return nil, 0, false
	}
	return bytes.Clone(v), ver, true
}

// Scan calls fn for the keys of bucket in order, starting after the key
// after (nil: from the first), until fn returns false or limit keys were
// visited (limit <= 0: no limit). Nested buckets are skipped.
func (r *ReadTx) Scan(bucket [][]byte, after []byte, limit int, fn func(key, value []byte, version uint64) bool) {
	b := bucketAt(r.tx, bucket)
	if b == nil {
		return
	}
	c := b.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	n := 0
	for ; k != nil; k, v = c.Next() {
		if len(v) < 8 { // nested buckets have nil values
			continue
		}
		if !fn(bytes.Clone(k), bytes.Clone(v[8:]), binary.BigEndian.Uint64(v)) {
			return
		}
		if n++; limit > 0 && n >= limit {
			return
		}
	}
}

// Count returns the number of keys (not nested buckets) in bucket.
func (r *ReadTx) Count(bucket [][]byte) int {
	b := bucketAt(r.tx, bucket)
	if b == nil {
		return 0
	}
	n := 0
	_ = b.ForEach(func(k, v []byte) error {
		if v != nil {
			n++
		}
		return nil
	})
	return n
}

// BucketCount returns the number of nested buckets in bucket.
func (r *ReadTx) BucketCount(bucket [][]byte) int {
	b := bucketAt(r.tx, bucket)
	if b == nil {
		return 0
	}
	n := 0
	_ = b.ForEachBucket(func([]byte) error {
		n++
		return nil
	})
	return n
}

// Buckets calls fn with the name of each bucket nested in bucket, in key
// order, until fn returns false.
func (r *ReadTx) Buckets(bucket [][]byte, fn func(name []byte) bool) {
	b := bucketAt(r.tx, bucket)
	if b == nil {
		return
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil && !fn(bytes.Clone(k)) {
			return
		}
	}
}

// BucketExists reports whether the nested bucket exists.
func (r *ReadTx) BucketExists(bucket [][]byte) bool { return bucketAt(r.tx, bucket) != nil }

// ChainHead returns the sequence number and link of the last entry of a
// chain; seq 0 and the genesis link (32 zero bytes) for an empty chain.
func (r *ReadTx) ChainHead(chain []byte) (seq uint64, link [32]byte) { return chainHead(r.tx, chain) }

// ChainEntry returns the data and link of entry seq of a chain; ok is false
// for a seq the chain does not hold (beyond the head, or pruned).
func (r *ReadTx) ChainEntry(chain []byte, seq uint64) (data []byte, link [32]byte, ok bool) {
	cb := r.tx.Bucket(bucketChains).Bucket(chain)
	if cb == nil {
		return nil, link, false
	}
	v := cb.Get(binary.BigEndian.AppendUint64(nil, seq))
	if len(v) < 32 {
		return nil, link, false
	}
	copy(link[:], v)
	return bytes.Clone(v[32:]), link, true
}

// Revision is the store revision: the number of applied transactions.
func (r *ReadTx) Revision() uint64 { return getUint(r.tx.Bucket(bucketMeta), keyRevision) }

// AppliedIndex is the last raft index reflected in this view.
func (r *ReadTx) AppliedIndex() uint64 { return getUint(r.tx.Bucket(bucketMeta), keyAppliedIndex) }

// ChainEntries calls fn for the entries of a chain from seq fromSeq (or the
// first one not pruned) on, in order, until fn returns false. For speed, data
// aliases the state file's memory: it is valid only while fn runs — copy it
// to keep it.
func (r *ReadTx) ChainEntries(chain []byte, fromSeq uint64, fn func(seq uint64, link [32]byte, data []byte) bool) {
	cb := r.tx.Bucket(bucketChains).Bucket(chain)
	if cb == nil {
		return
	}
	c := cb.Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, fromSeq)); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) < 32 {
			continue
		}
		if !fn(binary.BigEndian.Uint64(k), [32]byte(v[:32]), v[32:]) {
			return
		}
	}
}

// ChainTally calls fn with the counts of a chain's entries by tally key
// (Config.ChainTally), for the keys in [from, to) in key order (to nil:
// to the last), until fn returns false.
func (r *ReadTx) ChainTally(chain, from, to []byte, fn func(key []byte, n uint64) bool) {
	root := r.tx.Bucket(bucketTally)
	if root == nil {
		return
	}
	b := root.Bucket(chain)
	if b == nil {
		return
	}
	c := b.Cursor()
	for k, v := c.Seek(from); k != nil && (to == nil || bytes.Compare(k, to) < 0); k, v = c.Next() {
		if len(v) != 8 {
			continue
		}
		if !fn(k, binary.BigEndian.Uint64(v)) {
			return
		}
	}
}

// ChainEntriesBefore is ChainEntries backwards: fn gets the entries of a
// chain below seq before (0: from the last), newest first, until it
// returns false or the first retained entry was given. data aliases the
// state file's memory as in ChainEntries.
func (r *ReadTx) ChainEntriesBefore(chain []byte, before uint64, fn func(seq uint64, link [32]byte, data []byte) bool) {
	cb := r.tx.Bucket(bucketChains).Bucket(chain)
	if cb == nil {
		return
	}
	c := cb.Cursor()
	var k, v []byte
	if before == 0 {
		k, v = c.Last()
	} else {
		// Seek lands on before or the next key after it (or nothing):
		// step back from there.
		if k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, before)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	for ; k != nil; k, v = c.Prev() {
		if len(k) != 8 || len(v) < 32 {
			continue
		}
		if !fn(binary.BigEndian.Uint64(k), [32]byte(v[:32]), v[32:]) {
			return
		}
	}
}

// ChainPruned returns the first seq a chain still holds after pruning
// (OpPruneChain) and the link of the entry before it, from which a verifier
// continues the link chain: 1 and the genesis link (32 zero bytes) when
// nothing was pruned.
func (r *ReadTx) ChainPruned(chain []byte) (before uint64, link [32]byte) {
	return chainPruned(r.tx, chain)
}

// ChainSize is the number of records in a chain's Merkle tree: its head seq,
// pruned entries included.
func (r *ReadTx) ChainSize(chain []byte) uint64 {
	seq, _ := chainHead(r.tx, chain)
	return seq
}

// ChainTreeHash returns the root hash of the chain's tree of its first n
// records (record i is the data of entry i+1); n = 0 gives the empty tree's
// hash.
func (r *ReadTx) ChainTreeHash(chain []byte, n uint64) (tlog.Hash, error) {
	s, err := r.tree(chain, n)
	if err != nil {
		return tlog.Hash{}, err
	}
	h, err := tlog.TreeHash(int64(n), s)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("raftstore: chain %q: tree hash of size %d: %w", chain, n, err)
	}
	return h, nil
}

// ChainProveRecord returns the proof that the chain's tree of size n
// contains record index (the data of entry index+1); check it with
// tlog.CheckRecord against ChainTreeHash(chain, n).
func (r *ReadTx) ChainProveRecord(chain []byte, n, index uint64) (tlog.RecordProof, error) {
	s, err := r.tree(chain, n)
	if err != nil {
		return nil, err
	}
	if index >= n {
		return nil, fmt.Errorf("raftstore: chain %q: record %d not in a tree of size %d: %w", chain, index, n, ErrOutOfRange)
	}
	p, err := tlog.ProveRecord(int64(n), int64(index), s)
	if err != nil {
		return nil, fmt.Errorf("raftstore: chain %q: prove record %d in size %d: %w", chain, index, n, err)
	}
	return p, nil
}

// ChainProveTree returns the proof that the chain's tree of size m is a
// prefix of its tree of size n (1 <= m <= n); check it with tlog.CheckTree.
func (r *ReadTx) ChainProveTree(chain []byte, n, m uint64) (tlog.TreeProof, error) {
	s, err := r.tree(chain, n)
	if err != nil {
		return nil, err
	}
	if m == 0 || m > n {
		return nil, fmt.Errorf("raftstore: chain %q: no consistency proof from size %d to size %d (want 1 <= old <= new): %w", chain, m, n, ErrOutOfRange)
	}
	p, err := tlog.ProveTree(int64(n), int64(m), s)
	if err != nil {
		return nil, fmt.Errorf("raftstore: chain %q: prove size %d in size %d: %w", chain, m, n, err)
	}
	return p, nil
}

// ChainStoredHashes returns the chain's stored hashes with stored hash
// index in [from, to) (tlog.StoredHashIndex order), for export bundles that
// let a verifier recompute any tree hash and proof offline. The chain holds
// tlog.StoredHashCount(ChainSize) of them.
func (r *ReadTx) ChainStoredHashes(chain []byte, from, to int64) ([]tlog.Hash, error) {
	if count := tlog.StoredHashCount(int64(r.ChainSize(chain))); from < 0 || to < from || to > count {
		return nil, fmt.Errorf("raftstore: chain %q: stored hashes [%d, %d) outside [0, %d): %w", chain, from, to, count, ErrOutOfRange)
	}
	out := make([]tlog.Hash, 0, to-from)
	if from == to {
		return out, nil
	}
	// Records store their hashes in index order: walk them from the one
	// holding index from.
	record, skip := storedBy(from)
	if s := r.hashes(chain); s.b != nil {
		c := s.b.Cursor()
		k, v := c.Seek(binary.BigEndian.AppendUint64(nil, uint64(record)))
		for ; k != nil && int64(binary.BigEndian.Uint64(k)) == record && int64(len(out)) < to-from; k, v = c.Next() {
			for off := tlog.HashSize * skip; off+tlog.HashSize <= len(v) && int64(len(out)) < to-from; off += tlog.HashSize {
				out = append(out, tlog.Hash(v[off:off+tlog.HashSize]))
			}
			record, skip = record+1, 0
		}
	}
	if int64(len(out)) != to-from {
		return nil, fmt.Errorf("raftstore: chain %q: stored hash %d missing", chain, from+int64(len(out)))
	}
	return out, nil
}

// ChainReadHashes returns the chain's stored hashes at the given stored
// hash indexes, like a tlog.HashReader.
func (r *ReadTx) ChainReadHashes(chain []byte, indexes []int64) ([]tlog.Hash, error) {
	count := tlog.StoredHashCount(int64(r.ChainSize(chain)))
	for _, idx := range indexes {
		if idx < 0 || idx >= count {
			return nil, fmt.Errorf("raftstore: chain %q: stored hash %d outside [0, %d): %w", chain, idx, count, ErrOutOfRange)
		}
	}
	hs, err := r.hashes(chain).ReadHashes(indexes)
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	return hs, nil
}

// tree returns the chain's stored hashes after checking that it has a tree
// of size n.
func (r *ReadTx) tree(chain []byte, n uint64) (hashStore, error) {
	if size := r.ChainSize(chain); n > size {
		return hashStore{}, fmt.Errorf("raftstore: chain %q: tree size %d exceeds chain size %d: %w", chain, n, size, ErrOutOfRange)
	}
	return r.hashes(chain), nil
}

func (r *ReadTx) hashes(chain []byte) hashStore {
	s := hashStore{chain: chain}
	if root := r.tx.Bucket(bucketTlog); root != nil {
		s.b = root.Bucket(chain)
	}
	return s
}

// Chains calls fn with the name and size of every chain, in name order,
// until fn returns false. name is valid only during the call.
func (r *ReadTx) Chains(fn func(name []byte, size uint64) bool) {
	c := r.tx.Bucket(bucketHeads).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) != 40 {
			continue
		}
		if !fn(k, binary.BigEndian.Uint64(v)) {
			return
		}
	}
}
