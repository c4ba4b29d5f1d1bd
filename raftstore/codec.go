package raftstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

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
	// that the commit index always names an entry the FSM sees, and one per
	// round to confirm the leadership (readindex.go).
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

// count reads an element count; each element takes at least one byte.
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
