package raftstore

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// ReadTx is a read-only view of the state. Every slice it returns is a copy,
// safe to keep after the transaction ends.
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

// BucketExists reports whether the nested bucket exists.
func (r *ReadTx) BucketExists(bucket [][]byte) bool { return bucketAt(r.tx, bucket) != nil }

// ChainHead returns the sequence number and hash of the last entry of a
// chain; seq 0 and a zero hash for an empty chain.
func (r *ReadTx) ChainHead(chain []byte) (seq uint64, hash [32]byte) {
	if h := r.tx.Bucket(bucketHeads).Get(chain); len(h) == 40 {
		seq = binary.BigEndian.Uint64(h)
		copy(hash[:], h[8:])
	}
	return seq, hash
}

// ChainEntry returns the data and hash of entry seq of a chain.
func (r *ReadTx) ChainEntry(chain []byte, seq uint64) (data []byte, hash [32]byte, ok bool) {
	cb := r.tx.Bucket(bucketChains).Bucket(chain)
	if cb == nil {
		return nil, hash, false
	}
	v := cb.Get(binary.BigEndian.AppendUint64(nil, seq))
	if len(v) < 32 {
		return nil, hash, false
	}
	copy(hash[:], v)
	return bytes.Clone(v[32:]), hash, true
}

// Revision is the store revision: the number of applied transactions.
func (r *ReadTx) Revision() uint64 { return getUint(r.tx.Bucket(bucketMeta), keyRevision) }

// AppliedIndex is the last raft index reflected in this view.
func (r *ReadTx) AppliedIndex() uint64 { return getUint(r.tx.Bucket(bucketMeta), keyAppliedIndex) }
