package raftstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Limits enforced when a transaction is built and again when it is decoded.
// They keep every transaction inside what bbolt accepts, so that a
// transaction that reaches the log can only fail for a business reason.
const (
	MaxKeySize      = 1024       // bytes in a key or a bucket name
	MaxValueSize    = 4 << 20    // bytes in one value or chain entry
	MaxPathDepth    = 8          // nested bucket levels
	MaxTxnItems     = 4096       // conditions + ops + appends in one transaction
	MaxChainNameLen = MaxKeySize // bytes in a chain name
	maxBatchTxns    = 1 << 16    // transactions in one log entry
	maxEntrySize    = 64 << 20   // bytes in one encoded log entry
)

// CondKind says what a condition requires of a key.
type CondKind uint8

// Condition kinds.
const (
	CondAbsent  CondKind = 1 // the key does not exist
	CondPresent CondKind = 2 // the key exists
	CondVersion CondKind = 3 // the key exists at exactly Version (0: absent)
)

// OpKind says what an operation does.
type OpKind uint8

// Operation kinds.
const (
	OpPut          OpKind = 1 // put Key=Value in Bucket, creating buckets on the path
	OpDelete       OpKind = 2 // delete Key from Bucket; absent is not an error
	OpDeleteBucket OpKind = 3 // delete the bucket named Key under Bucket (nil Bucket: top level)
	// OpPruneChain deletes the entries of the chain named Key whose
	// sequence number is below Value (8 bytes, big-endian; build it with
	// PruneChain), never the chain's last entry. The chain's Merkle tree
	// keeps every hash, so tree hashes and proofs do not change; where the
	// chain now starts and the link before it are kept (ReadTx.ChainPruned).
	// Pruning to a point already pruned does nothing. Bucket must be empty.
	OpPruneChain OpKind = 4
)

// Cond is one precondition of a transaction.
type Cond struct {
	Kind    CondKind
	Bucket  [][]byte
	Key     []byte
	Version uint64
}

// Op is one write of a transaction.
type Op struct {
	Kind   OpKind
	Bucket [][]byte
	Key    []byte
	Value  []byte
}

// Append adds Data to the chain named Chain.
type Append struct {
	Chain []byte
	Data  []byte
}

// Txn is the unit of replication: all conditions hold and then every op and
// append is applied, or nothing is.
type Txn struct {
	Conds   []Cond
	Ops     []Op
	Appends []Append
}

// PruneChain returns the op that deletes the entries of chain below seq
// before (see OpPruneChain).
func PruneChain(chain []byte, before uint64) Op {
	return Op{Kind: OpPruneChain, Key: chain, Value: binary.BigEndian.AppendUint64(nil, before)}
}

// pruneBefore is the sequence number an OpPruneChain prunes below.
func pruneBefore(o Op) uint64 { return binary.BigEndian.Uint64(o.Value) }

// Path is a convenience for building bucket paths from strings.
func Path(names ...string) [][]byte {
	p := make([][]byte, len(names))
	for i, n := range names {
		p[i] = []byte(n)
	}
	return p
}

// Validate checks the transaction against the store's limits. Bucket names
// starting with 0x00 are reserved for the store itself.
func (t *Txn) Validate() error {
	if n := len(t.Conds) + len(t.Ops) + len(t.Appends); n == 0 {
		return fmt.Errorf("%w: empty transaction", ErrInvalidTxn)
	} else if n > MaxTxnItems {
		return fmt.Errorf("%w: %d items, limit %d", ErrInvalidTxn, n, MaxTxnItems)
	}
	for i, c := range t.Conds {
		if c.Kind < CondAbsent || c.Kind > CondVersion {
			return fmt.Errorf("%w: condition %d: unknown kind %d", ErrInvalidTxn, i, c.Kind)
		}
		if err := validPath(c.Bucket, false); err != nil {
			return fmt.Errorf("%w: condition %d: %v", ErrInvalidTxn, i, err)
		}
		if err := validKey(c.Key); err != nil {
			return fmt.Errorf("%w: condition %d: %v", ErrInvalidTxn, i, err)
		}
	}
	for i, o := range t.Ops {
		if o.Kind < OpPut || o.Kind > OpPruneChain {
			return fmt.Errorf("%w: op %d: unknown kind %d", ErrInvalidTxn, i, o.Kind)
		}
		if o.Kind == OpPruneChain {
			if err := validPrune(o); err != nil {
				return fmt.Errorf("%w: op %d: %v", ErrInvalidTxn, i, err)
			}
			continue
		}
		if err := validPath(o.Bucket, o.Kind == OpDeleteBucket); err != nil {
			return fmt.Errorf("%w: op %d: %v", ErrInvalidTxn, i, err)
		}
		if err := validKey(o.Key); err != nil {
			return fmt.Errorf("%w: op %d: %v", ErrInvalidTxn, i, err)
		}
		if o.Kind == OpDeleteBucket && len(o.Bucket) == 0 && o.Key[0] == 0 {
			return fmt.Errorf("%w: op %d: reserved bucket", ErrInvalidTxn, i)
		}
		if len(o.Value) > MaxValueSize {
			return fmt.Errorf("%w: op %d: value of %d bytes, limit %d", ErrInvalidTxn, i, len(o.Value), MaxValueSize)
		}
		if o.Kind != OpPut && len(o.Value) != 0 {
			return fmt.Errorf("%w: op %d: value on a delete", ErrInvalidTxn, i)
		}
	}
	for i, a := range t.Appends {
		if len(a.Chain) == 0 || len(a.Chain) > MaxChainNameLen {
			return fmt.Errorf("%w: append %d: chain name must be 1..%d bytes", ErrInvalidTxn, i, MaxChainNameLen)
		}
		if len(a.Data) > MaxValueSize {
			return fmt.Errorf("%w: append %d: %d bytes, limit %d", ErrInvalidTxn, i, len(a.Data), MaxValueSize)
		}
	}
	return nil
}

func validPrune(o Op) error {
	if len(o.Bucket) != 0 {
		return fmt.Errorf("prune with a bucket path")
	}
	if len(o.Key) == 0 || len(o.Key) > MaxChainNameLen {
		return fmt.Errorf("chain name must be 1..%d bytes", MaxChainNameLen)
	}
	if len(o.Value) != 8 {
		return fmt.Errorf("prune point of %d bytes, want 8", len(o.Value))
	}
	return nil
}

func validPath(p [][]byte, allowEmpty bool) error {
	if len(p) == 0 && !allowEmpty {
		return fmt.Errorf("empty bucket path")
	}
	if len(p) > MaxPathDepth {
		return fmt.Errorf("bucket path of depth %d, limit %d", len(p), MaxPathDepth)
	}
	for _, name := range p {
		if err := validKey(name); err != nil {
			return fmt.Errorf("bucket name: %v", err)
		}
	}
	if len(p) > 0 && p[0][0] == 0 {
		return fmt.Errorf("bucket names starting with 0x00 are reserved")
	}
	return nil
}

func validKey(k []byte) error {
	if len(k) == 0 {
		return fmt.Errorf("empty key")
	}
	if len(k) > MaxKeySize {
		return fmt.Errorf("key of %d bytes, limit %d", len(k), MaxKeySize)
	}
	return nil
}

// Command envelope. Byte 0 is the command type, byte 1 the lowest codec
// version that can decode the payload. Types with flagIgnorable set may be
// skipped by a node that does not know them (a rolling upgrade may introduce
// such advisory commands); any other unknown or undecodable command stops the
// node, because skipping it would let replicas diverge.
//
// Version 2 added OpPruneChain and nothing else: the encoding is unchanged,
// and a batch without a prune is still written as version 1, so a node of
// version 1 decodes everything but a prune — which stops it with
// ErrUnknownCommand instead of letting it apply less than its peers. A batch
// is labelled with exactly the version it needs (one encoding per entry).
const (
	codecVersion  byte = 2 // the newest version this node decodes
	flagIgnorable byte = 0x80

	cmdTxnBatch byte = 1
	// cmdNoop carries nothing; the read gate commits one per leader term so
	// that the commit index always names an entry the FSM sees.
	cmdNoop byte = 2 | flagIgnorable
)

// noopEntry is an encoded cmdNoop.
var noopEntry = []byte{cmdNoop, 1}

// batchVersion is the lowest codec version that decodes txns.
func batchVersion(txns []*Txn) byte {
	for _, t := range txns {
		for _, o := range t.Ops {
			if o.Kind == OpPruneChain {
				return 2
			}
		}
	}
	return 1
}

// encodeBatch encodes transactions into one log entry.
func encodeBatch(txns []*Txn) []byte {
	var b bytes.Buffer
	b.WriteByte(cmdTxnBatch)
	b.WriteByte(batchVersion(txns))
	putUvarint(&b, uint64(len(txns)))
	for _, t := range txns {
		encodeTxn(&b, t)
	}
	return b.Bytes()
}

func encodeTxn(b *bytes.Buffer, t *Txn) {
	putUvarint(b, uint64(len(t.Conds)))
	for _, c := range t.Conds {
		b.WriteByte(byte(c.Kind))
		putPath(b, c.Bucket)
		putBytes(b, c.Key)
		putUvarint(b, c.Version)
	}
	putUvarint(b, uint64(len(t.Ops)))
	for _, o := range t.Ops {
		b.WriteByte(byte(o.Kind))
		putPath(b, o.Bucket)
		putBytes(b, o.Key)
		putBytes(b, o.Value)
	}
	putUvarint(b, uint64(len(t.Appends)))
	for _, a := range t.Appends {
		putBytes(b, a.Chain)
		putBytes(b, a.Data)
	}
}

func putUvarint(b *bytes.Buffer, v uint64) {
	var tmp [binary.MaxVarintLen64]byte
	b.Write(tmp[:binary.PutUvarint(tmp[:], v)])
}

func putBytes(b *bytes.Buffer, p []byte) {
	putUvarint(b, uint64(len(p)))
	b.Write(p)
}

func putPath(b *bytes.Buffer, p [][]byte) {
	putUvarint(b, uint64(len(p)))
	for _, e := range p {
		putBytes(b, e)
	}
}

// decodeCommand decodes a log entry. ignorable reports an unknown command
// that carries the ignorable flag; err is any other decoding failure.
func decodeCommand(data []byte) (txns []*Txn, ignorable bool, err error) {
	if len(data) < 2 {
		return nil, false, fmt.Errorf("%w: entry of %d bytes", ErrCorruptEntry, len(data))
	}
	typ, ver := data[0], data[1]
	if typ == cmdNoop && ver <= codecVersion && len(data) == 2 {
		return []*Txn{}, false, nil
	}
	known := typ == cmdTxnBatch && ver >= 1 && ver <= codecVersion
	if !known {
		if typ&flagIgnorable != 0 {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("%w: command type %d version %d (this node decodes up to version %d)",
			ErrUnknownCommand, typ, ver, codecVersion)
	}
	d := decoder{buf: data[2:]}
	n := d.count(maxBatchTxns)
	txns = make([]*Txn, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		txns = append(txns, d.txn())
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrCorruptEntry, d.err)
	}
	for i, t := range txns {
		if err := t.Validate(); err != nil {
			return nil, false, fmt.Errorf("%w: transaction %d: %v", ErrCorruptEntry, i, err)
		}
	}
	if need := batchVersion(txns); ver != need {
		return nil, false, fmt.Errorf("%w: labelled codec version %d, content needs %d", ErrCorruptEntry, ver, need)
	}
	return txns, false, nil
}

// decoder reads the encoding written by encodeTxn. The first error sticks;
// every length is checked against what remains, so hostile input can neither
// panic nor allocate more than the input's size.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("bad varint")
		return 0
	}
	var tmp [binary.MaxVarintLen64]byte
	if binary.PutUvarint(tmp[:], v) != n {
		d.err = fmt.Errorf("non-canonical varint") // one encoding per entry
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a element count; each element takes at least one byte.
func (d *decoder) count(limit int) int {
	v := d.uvarint()
	if d.err == nil && (v > uint64(limit) || v > uint64(len(d.buf))) {
		d.err = fmt.Errorf("count %d exceeds limit or input", v)
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.err = fmt.Errorf("length %d exceeds input", n)
		return nil
	}
	p := d.buf[:n:n]
	d.buf = d.buf[n:]
	return p
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.err = fmt.Errorf("unexpected end")
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *decoder) path() [][]byte {
	n := d.count(MaxPathDepth)
	var p [][]byte
	for i := 0; i < n && d.err == nil; i++ {
		p = append(p, d.bytes())
	}
	return p
}

func (d *decoder) txn() *Txn {
	t := &Txn{}
	for i, n := 0, d.count(MaxTxnItems); i < n && d.err == nil; i++ {
		t.Conds = append(t.Conds, Cond{Kind: CondKind(d.byte()), Bucket: d.path(), Key: d.bytes(), Version: d.uvarint()})
	}
	for i, n := 0, d.count(MaxTxnItems); i < n && d.err == nil; i++ {
		t.Ops = append(t.Ops, Op{Kind: OpKind(d.byte()), Bucket: d.path(), Key: d.bytes(), Value: d.bytes()})
	}
	for i, n := 0, d.count(MaxTxnItems); i < n && d.err == nil; i++ {
		t.Appends = append(t.Appends, Append{Chain: d.bytes(), Data: d.bytes()})
	}
	return t
}
