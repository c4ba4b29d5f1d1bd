package raftstore

import "encoding/binary"

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
