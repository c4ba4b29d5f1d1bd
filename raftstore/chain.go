package raftstore

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// Chains are append-only logs whose entries the FSM numbers (seq, from 1)
// and links as it applies them: the link of an entry is SHA-256(link of
// the entry before ‖ the entry's Merkle leaf hash) (ChainLink), the entry
// before the first having the genesis link, 32 zero bytes. The Merkle trees
// over the same entries are in tlog.go.

// Reserved buckets of the chains (see fsm.go).
var (
	// \x00chains/<chain>/<seq, 8 bytes big-endian> → link ‖ data.
	bucketChains = []byte("\x00chains")
	// \x00heads/<chain> → seq ‖ link of the chain's last entry.
	bucketHeads = []byte("\x00heads")
	// \x00pruned/<chain> → first present seq (8 bytes) ‖ link of the entry
	// before it (32 bytes).
	bucketPruned = []byte("\x00pruned")
	// \x00tally/<chain>/<key> → the number of the chain's entries
	// Config.ChainTally counted under key (8 bytes big-endian).
	bucketTally = []byte("\x00tally")
)

// maxTallyKey bounds a tally key (longer ones are not counted).
const maxTallyKey = 128

// chainHooks are the functions of the store's configuration the state
// machine asks on every append: Config.ChainFault and Config.ChainTally.
type chainHooks struct {
	fault func(chain, data []byte) error
	tally func(chain, data []byte) []byte
}

// ChainPos is where an append landed: the entry's sequence number (from 1)
// and its link.
type ChainPos struct {
	Chain string
	Seq   uint64
	Link  [32]byte
}

// chainCache keeps, within one write transaction, where each chain stands
// and its open buckets, so that a batch of appends to one chain reads the
// head and finds the buckets once instead of per append.
type chainCache map[string]*chainState

// chainState is where one chain stands in a chainCache.
type chainState struct {
	seq    uint64
	link   [32]byte
	hashes hashStore
	cb     *bolt.Bucket
	dirty  bool // seq/link not yet written to the heads bucket
	// tally counts this transaction's appends by tally key, added to
	// the stored counts by flush.
	tally map[string]uint64
}

// appendChain adds entry seq = head+1 to a chain: the linked entry, the new
// head (kept in chains until chainCache.flush writes it) and the Merkle
// tree hashes it adds (record seq-1, over exactly data). Any failure
// refuses the whole transaction with ErrChainUnwritable. fault, if set, is
// asked first (a test hook: Config.ChainFault); hooks.tally names the
// count the entry adds to (Config.ChainTally).
func appendChain(tx *bolt.Tx, name, data []byte, hooks chainHooks, chains chainCache) (ChainPos, error) {
	if hooks.fault != nil {
		if err := hooks.fault(name, data); err != nil {
			return ChainPos{}, fmt.Errorf("chain %q: %w: %v", name, ErrChainUnwritable, err)
		}
	}
	st := chains[string(name)]
	if st == nil {
		seq, prev := chainHead(tx, name)
		hashes, err := writableHashes(tx, name, seq)
		if err != nil {
			return ChainPos{}, fmt.Errorf("%w: %v", ErrChainUnwritable, err)
		}
		cb, err := tx.Bucket(bucketChains).CreateBucketIfNotExists(name)
		if err != nil {
			return ChainPos{}, fmt.Errorf("chain %q: %v", name, err)
		}
		cb.FillPercent = 1 // keys only grow: fill pages, no half-empty splits
		st = &chainState{seq: seq, link: prev, hashes: hashes, cb: cb}
		chains[string(name)] = st
	}
	seq := st.seq + 1
	leaf := tlog.RecordHash(data) // once, for the tree and the link
	if err := storeLeafHashes(st.hashes, int64(seq-1), leaf); err != nil {
		return ChainPos{}, fmt.Errorf("%w: %v", ErrChainUnwritable, err)
	}
	link := ChainLink(st.link, leaf)
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	entry := make([]byte, 0, 32+len(data))
	entry = append(append(entry, link[:]...), data...)
	if err := st.cb.Put(k[:], entry); err != nil {
		return ChainPos{}, fmt.Errorf("chain %q: %v", name, err)
	}
	st.seq, st.link, st.dirty = seq, link, true
	if hooks.tally != nil {
		if k := hooks.tally(name, data); len(k) > 0 && len(k) <= maxTallyKey {
			if st.tally == nil {
				st.tally = map[string]uint64{}
			}
			st.tally[string(k)]++
		}
	}
	return ChainPos{Chain: string(name), Seq: seq, Link: link}, nil
}

// flush writes the heads of the chains appended to (once per chain, not per
// append). It runs before the batch's transaction ends and before anything
// reads a head in the same transaction (a prune).
func (c chainCache) flush(tx *bolt.Tx, only []byte) error {
	for name, st := range c {
		if !st.dirty || (only != nil && name != string(only)) {
			continue
		}
		head := make([]byte, 0, 40)
		head = append(binary.BigEndian.AppendUint64(head, st.seq), st.link[:]...)
		if err := tx.Bucket(bucketHeads).Put([]byte(name), head); err != nil {
			return fmt.Errorf("chain %q: %v", name, err)
		}
		if err := flushTally(tx, name, st.tally); err != nil {
			return err
		}
		st.dirty, st.tally = false, nil
	}
	return nil
}

// flushTally adds a transaction's counts to a chain's stored ones.
func flushTally(tx *bolt.Tx, chain string, counts map[string]uint64) error {
	if len(counts) == 0 {
		return nil
	}
	root, err := tx.CreateBucketIfNotExists(bucketTally) // a state file older than tallies
	if err != nil {
		return fmt.Errorf("chain %q: tally: %v", chain, err)
	}
	b, err := root.CreateBucketIfNotExists([]byte(chain))
	if err != nil {
		return fmt.Errorf("chain %q: tally: %v", chain, err)
	}
	for k, n := range counts {
		var sum uint64
		if v := b.Get([]byte(k)); len(v) == 8 {
			sum = binary.BigEndian.Uint64(v)
		}
		if err := b.Put([]byte(k), binary.BigEndian.AppendUint64(nil, sum+n)); err != nil {
			return fmt.Errorf("chain %q: tally %q: %v", chain, k, err)
		}
	}
	return nil
}

// ChainLink is the link of an entry whose Merkle leaf hash is leaf
// (tlog.RecordHash of its data: SHA-256(0x00 ‖ data)) after an entry whose
// link is prev: SHA-256(prev ‖ leaf). Linking the leaf rather than the data
// lets a verifier hash each entry's data once for both the links and the
// tree. The store computes links with it, and verifiers outside the store
// check them with it.
func ChainLink(prev [32]byte, leaf tlog.Hash) [32]byte {
	var buf [64]byte
	copy(buf[:32], prev[:])
	copy(buf[32:], leaf[:])
	return sha256.Sum256(buf[:])
}

// pruneChain deletes a chain's entries below seq before, never its last
// entry, and records where the chain now starts with the link of the entry
// before that, so a verifier can continue the link chain. The stored hashes
// stay (and are completed first if they were missing, since they cannot be
// rebuilt once the entries are gone). Pruning to a point already pruned
// does nothing.
func pruneChain(tx *bolt.Tx, chain []byte, before uint64) error {
	size, _ := chainHead(tx, chain)
	from, _ := chainPruned(tx, chain)
	before = min(before, size)
	if before <= from {
		return nil
	}
	if _, err := writableHashes(tx, chain, size); err != nil {
		return fmt.Errorf("%w: %v", ErrChainUnwritable, err)
	}
	entries := tx.Bucket(bucketChains).Bucket(chain)
	prev := entries.Get(binary.BigEndian.AppendUint64(nil, before-1))
	if len(prev) < 32 {
		return fmt.Errorf("chain %q: entry %d missing", chain, before-1)
	}
	rec := make([]byte, 0, 40)
	rec = append(binary.BigEndian.AppendUint64(rec, before), prev[:32]...) // copied before any delete
	for seq := from; seq < before; seq++ {
		if err := entries.Delete(binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return fmt.Errorf("chain %q: prune entry %d: %v", chain, seq, err)
		}
	}
	if err := tx.Bucket(bucketPruned).Put(chain, rec); err != nil {
		return fmt.Errorf("chain %q: record prune: %v", chain, err)
	}
	return nil
}

// chainHead returns the last seq of a chain and its link; 0 when empty.
func chainHead(tx *bolt.Tx, chain []byte) (seq uint64, link [32]byte) {
	if h := tx.Bucket(bucketHeads).Get(chain); len(h) == 40 {
		seq = binary.BigEndian.Uint64(h)
		copy(link[:], h[8:])
	}
	return seq, link
}

// chainPruned returns the first seq a chain still holds and the link of
// the entry before it: 1 and 32 zero bytes (the genesis link) when nothing
// was pruned.
func chainPruned(tx *bolt.Tx, chain []byte) (before uint64, link [32]byte) {
	if p := tx.Bucket(bucketPruned).Get(chain); len(p) == 40 {
		copy(link[:], p[8:])
		return binary.BigEndian.Uint64(p), link
	}
	return 1, link
}
