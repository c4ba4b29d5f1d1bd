package raftstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/tlog"

	bolt "go.etcd.io/bbolt"
)

// A dump is the state as a stream of its buckets, keys and values — a
// logical copy, not a copy of the file: a raw copy (what a raft snapshot
// is, Tx.WriteTo) carries the file's free pages, which may still hold
// shredded keys until Compact runs (see DESIGN.md, "Compaction for
// crypto-shredding"), and a backup is kept for months. A dump holds only
// live data, so a key shredded before the dump is in no backup.
//
// Format, after the magic line: records of one tag byte each,
//
//	'B' uvarint(len) name uvarint(sequence)   open a nested bucket
//	'K' uvarint(len) key uvarint(len) value   a key in the open bucket
//	'E'                                       close the open bucket
//	'Z'                                       the end
//
// in bbolt's own order (keys sorted within a bucket), so a load appends.
const dumpMagic = "custos-state-dump/1\n"

// Dump tags.
const (
	tagBucket = 'B'
	tagKey    = 'K'
	tagEnd    = 'E'
	tagDone   = 'Z'
)

// ErrBadDump means the stream is not a dump, or is damaged.
var ErrBadDump = errors.New("raftstore: not a state dump (or a damaged one)")

// ErrOffline is the error of a write on a state file opened offline.
var ErrOffline = errors.New("raftstore: the state is open offline (read only)")

// maxDumpItem bounds one name, key or value of a dump read back (bbolt's
// own limits are lower for keys; values of the store are at most a
// transaction's 4 MiB).
const maxDumpItem = 64 << 20

// DumpInfo describes the state a dump holds: the raft position of its
// last applied entry, the store revision and every chain's head.
type DumpInfo struct {
	Index, Term, Revision uint64
	Chains                []ChainHead
}

// ChainHead is a chain's size, Merkle root and last link.
type ChainHead struct {
	Name string
	Size uint64
	Root tlog.Hash
	Link [32]byte
}

// Dump writes a consistent logical copy of the state (see the format
// above) to w: after a read barrier, so it holds every write acknowledged
// before the call, from one read transaction, so it is the state at one
// raft index. It runs on the node called, leader or follower. The read
// transaction is open while w consumes the dump; a long one delays a
// Compact on this node (which waits for readers) and keeps bbolt from
// remapping a file growing past its 1 GiB initial map.
func (s *Store) Dump(ctx context.Context, w io.Writer) (DumpInfo, error) {
	if err := s.Barrier(ctx); err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: dump: %w", err)
	}
	s.fsm.mu.RLock()
	if s.fsm.db == nil {
		s.fsm.mu.RUnlock()
		return DumpInfo{}, ErrClosed
	}
	tx, err := s.fsm.db.Begin(false)
	s.fsm.mu.RUnlock()
	if err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: dump: %w", err)
	}
	defer tx.Rollback()
	info, err := infoOf(&ReadTx{tx: tx})
	if err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: dump: %w", err)
	}
	if err := writeDump(ctx, tx, w); err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: dump: %w", err)
	}
	return info, nil
}

// infoOf reads a state's DumpInfo.
func infoOf(r *ReadTx) (DumpInfo, error) {
	meta := r.tx.Bucket(bucketMeta)
	info := DumpInfo{Index: getUint(meta, keyAppliedIndex), Term: getUint(meta, keyAppliedTerm), Revision: getUint(meta, keyRevision)}
	var err error
	r.Chains(func(name []byte, size uint64) bool {
		h := ChainHead{Name: string(name), Size: size}
		_, h.Link = r.ChainHead(name)
		h.Root, err = r.ChainTreeHash(name, size)
		info.Chains = append(info.Chains, h)
		return err == nil
	})
	return info, err
}

func writeDump(ctx context.Context, tx *bolt.Tx, out io.Writer) error {
	w := bufio.NewWriterSize(out, 1<<20)
	if _, err := w.WriteString(dumpMagic); err != nil {
		return err
	}
	var n int
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if v == nil {
				if err := openBucket(w, k, b.Bucket(k)); err != nil {
					return err
				}
				if err := walk(b.Bucket(k)); err != nil {
					return err
				}
				if err := w.WriteByte(tagEnd); err != nil {
					return err
				}
				continue
			}
			w.WriteByte(tagKey)
			writeBytes(w, k)
			if err := writeBytes(w, v); err != nil {
				return err
			}
		}
		return nil
	}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if err := openBucket(w, name, b); err != nil {
			return err
		}
		if err := walk(b); err != nil {
			return err
		}
		return w.WriteByte(tagEnd)
	})
	if err != nil {
		return err
	}
	w.WriteByte(tagDone)
	return w.Flush()
}

func openBucket(w *bufio.Writer, name []byte, b *bolt.Bucket) error {
	w.WriteByte(tagBucket)
	writeBytes(w, name)
	_, err := w.Write(binary.AppendUvarint(nil, b.Sequence()))
	return err
}

func writeBytes(w *bufio.Writer, p []byte) error {
	var l [binary.MaxVarintLen64]byte
	w.Write(l[:binary.PutUvarint(l[:], uint64(len(p)))])
	_, err := w.Write(p)
	return err
}

// DumpReader is what LoadDump reads from (a *bufio.Reader is one).
type DumpReader interface {
	io.Reader
	io.ByteReader
}

// LoadDump builds a new state file at path (which must not exist) from
// the dump r holds, reading exactly the dump: r is left at the byte after
// it. It commits every 64 MiB and syncs once at the end.
func LoadDump(path string, r DumpReader) (DumpInfo, error) {
	if _, err := os.Stat(path); err == nil {
		return DumpInfo{}, fmt.Errorf("raftstore: load dump: %s exists", path)
	}
	opts := *boltOptions()
	opts.NoSync, opts.NoFreelistSync = true, true
	db, err := bolt.Open(path, 0o600, &opts)
	if err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: load dump: %w", err)
	}
	ok := false
	defer func() {
		db.Close()
		if !ok {
			os.Remove(path)
		}
	}()
	if err := loadDump(db, r); err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: load dump: %w", err)
	}
	if err := db.Sync(); err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: load dump: %w", err)
	}
	var info DumpInfo
	if err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("%w: no %q bucket", ErrBadDump, bucketMeta)
		}
		info, err = infoOf(&ReadTx{tx: tx})
		return err
	}); err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: load dump: %w", err)
	}
	ok = true
	return info, nil
}

func loadDump(db *bolt.DB, r DumpReader) error {
	magic := make([]byte, len(dumpMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != dumpMagic {
		return fmt.Errorf("%w: magic", ErrBadDump)
	}
	tx, err := db.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var (
		path    [][]byte
		buckets []*bolt.Bucket
		written int
	)
	// reopen commits and starts a new transaction, finding the open
	// buckets again.
	reopen := func() error {
		if err := tx.Commit(); err != nil {
			return err
		}
		if tx, err = db.Begin(true); err != nil {
			return err
		}
		for i := range buckets {
			if i == 0 {
				buckets[0] = tx.Bucket(path[0])
			} else {
				buckets[i] = buckets[i-1].Bucket(path[i])
			}
			buckets[i].FillPercent = 1
		}
		written = 0
		return nil
	}
	for {
		tag, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadDump, err)
		}
		switch tag {
		case tagDone:
			if len(buckets) != 0 {
				return fmt.Errorf("%w: ends inside a bucket", ErrBadDump)
			}
			return tx.Commit()
		case tagEnd:
			if len(buckets) == 0 {
				return fmt.Errorf("%w: closes no bucket", ErrBadDump)
			}
			buckets, path = buckets[:len(buckets)-1], path[:len(path)-1]
		case tagBucket:
			name, err := readBytes(r)
			if err != nil {
				return err
			}
			seq, err := binary.ReadUvarint(r)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrBadDump, err)
			}
			var b *bolt.Bucket
			if len(buckets) == 0 {
				b, err = tx.CreateBucket(name)
			} else {
				b, err = buckets[len(buckets)-1].CreateBucket(name)
			}
			if err != nil {
				return fmt.Errorf("%w: bucket %q: %v", ErrBadDump, name, err)
			}
			b.FillPercent = 1
			if err := b.SetSequence(seq); err != nil {
				return err
			}
			buckets, path = append(buckets, b), append(path, name)
		case tagKey:
			k, err := readBytes(r)
			if err != nil {
				return err
			}
			v, err := readBytes(r)
			if err != nil {
				return err
			}
			if len(buckets) == 0 {
				return fmt.Errorf("%w: a key outside any bucket", ErrBadDump)
			}
			if err := buckets[len(buckets)-1].Put(k, v); err != nil {
				return fmt.Errorf("%w: key %q: %v", ErrBadDump, k, err)
			}
			if written += len(k) + len(v); written > 64<<20 {
				if err := reopen(); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%w: tag %#x", ErrBadDump, tag)
		}
	}
}

func readBytes(r DumpReader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxDumpItem {
		return nil, fmt.Errorf("%w: length", ErrBadDump)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDump, err)
	}
	return p, nil
}

// Offline is a state file opened without raft, for the tools that work
// on a restored copy (backup verification, a restore's ledger reading):
// View reads it (every consistency is local), Apply refuses.
type Offline struct{ db *bolt.DB }

// OpenOffline opens the state file at path.
func OpenOffline(path string) (*Offline, error) {
	db, err := bolt.Open(path, 0o600, boltOptions())
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", path, err)
	}
	return &Offline{db: db}, nil
}

// View runs fn on the state.
func (o *Offline) View(_ context.Context, _ Consistency, fn func(*ReadTx) error) error {
	return o.db.View(func(tx *bolt.Tx) error { return fn(&ReadTx{tx: tx}) })
}

// Apply refuses: ErrOffline.
func (o *Offline) Apply(context.Context, *Txn) (Result, error) { return Result{}, ErrOffline }

// Info is the state's DumpInfo.
func (o *Offline) Info() (DumpInfo, error) {
	var info DumpInfo
	err := o.db.View(func(tx *bolt.Tx) error {
		var err error
		info, err = infoOf(&ReadTx{tx: tx})
		return err
	})
	return info, err
}

// StartNewLog makes the state the initial state of a new cluster: its
// applied index and term become 0, so that the new cluster's log, which
// starts at index 1, applies on top of it (the FSM skips entries at or
// below its applied index). The revision, the data and the chains stay.
func (o *Offline) StartNewLog() error {
	return o.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: no %q bucket", ErrBadDump, bucketMeta)
		}
		if err := putUint(meta, keyAppliedIndex, 0); err != nil {
			return err
		}
		return putUint(meta, keyAppliedTerm, 0)
	})
}

// Close closes the file.
func (o *Offline) Close() error { return o.db.Close() }

// Count counts the state's buckets and keys (every level).
func (o *Offline) Count() (buckets, keys int, err error) {
	err = o.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			st := b.Stats()
			buckets += st.BucketN
			keys += st.KeyN
			return nil
		})
	})
	return buckets, keys, err
}
