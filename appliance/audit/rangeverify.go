package audit

import (
	"bytes"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxRange is the most entries VerifyRange checks at once: each needs an
// inclusion proof, so a client asks for a bounded range (a bundle, which
// Verify checks at a million entries a second, is for whole chains).
const MaxRange = 1000

// RangeEvidence is what a client fetches through the API to check entries
// From..To of a chain against a signed checkpoint, without a bundle: the
// chain's checkpoint (GET {chain}/checkpoint), the entries (GET {chain}
// with after=From-1), one inclusion proof per entry against the
// checkpoint's size (GET {chain}/proof/inclusion), and optionally a
// checkpoint the auditor kept from earlier with the consistency proof from
// its size to the checkpoint's (GET {chain}/proof/consistency).
type RangeEvidence struct {
	Chain      string
	From, To   uint64 // sequence numbers, inclusive
	Checkpoint []byte // the signed checkpoint note
	Entries    []Item // seq From..To, in order
	Inclusion  []Proof
	// Kept is an earlier signed checkpoint (nil: none); Consistency
	// proves Checkpoint's tree extends it.
	Kept        []byte
	Consistency *Proof
}

// RangeReport is what a verified range establishes.
type RangeReport struct {
	Chain    string
	From, To uint64
	// Checkpoint is the signed tree head every entry was proved in.
	Checkpoint Checkpoint
	// Key is the verifier key's name, KeyHash its hash (the "+hash" part
	// of the key's text).
	Key     string
	KeyHash uint32
	// KeptSize is the size of the kept checkpoint the tree extends (0:
	// none given).
	KeptSize uint64
	// KeptTime is when the kept checkpoint was signed.
	KeptTime time.Time
}

// Entries is the number of entries verified.
func (r *RangeReport) Entries() uint64 { return r.To - r.From + 1 }

// VerifyRange checks ev with the verifier key v: the checkpoint's
// signature and origin (<key name>/<chain>); that the entries run
// From..To without a gap and lie within the checkpoint's tree; that each
// entry's parsed fields re-encode to its raw bytes, that its inclusion
// proof is for exactly those bytes at its index, against the
// checkpoint's size and root, and that tlog.CheckRecord accepts it; and,
// with a kept checkpoint, its signature and origin and that the
// consistency proof shows the checkpoint's tree extends it (not rolled
// back, not forked). The first failure is a *VerifyError naming the place
// ("checkpoint", "entry 17", "kept checkpoint").
//
// It proves membership and order in a signed tree; unlike Verify on a
// bundle it does not recompute the hash-chain links, which the API's
// entries do not carry (the tree already fixes every entry's position).
func VerifyRange(v note.Verifier, ev RangeEvidence) (*RangeReport, error) {
	cp, err := OpenCheckpoint(ev.Checkpoint, v)
	if err != nil {
		return nil, &VerifyError{Place: "checkpoint", What: err.Error()}
	}
	if want := Origin(v.Name(), ev.Chain); cp.Origin != want {
		return nil, &VerifyError{Place: "checkpoint", What: fmt.Sprintf("origin %q, want %q", cp.Origin, want)}
	}
	rep := &RangeReport{Chain: ev.Chain, From: ev.From, To: ev.To, Checkpoint: cp, Key: v.Name(), KeyHash: v.KeyHash()}
	switch {
	case ev.From == 0 || ev.To < ev.From:
		return nil, &VerifyError{Place: "range", What: fmt.Sprintf("%d..%d is not a range of sequence numbers (the first entry is 1)", ev.From, ev.To)}
	case ev.To-ev.From >= MaxRange:
		return nil, &VerifyError{Place: "range", What: fmt.Sprintf("%d entries; at most %d at once", ev.To-ev.From+1, MaxRange)}
	case ev.To > cp.Size:
		return nil, &VerifyError{Place: "range", What: fmt.Sprintf("entry %d is beyond the signed checkpoint of %d entries: it is not covered yet (checkpoints are signed at least every minute)", ev.To, cp.Size)}
	}
	if err := verifyEntries(ev, cp); err != nil {
		return nil, err
	}
	if ev.Kept != nil {
		kept, err := verifyKept(v, ev, cp)
		if err != nil {
			return nil, err
		}
		rep.KeptSize, rep.KeptTime = kept.Size, kept.Time
	}
	return rep, nil
}

func verifyEntries(ev RangeEvidence, cp Checkpoint) error {
	want := ev.To - ev.From + 1
	if uint64(len(ev.Entries)) != want || len(ev.Inclusion) != len(ev.Entries) {
		return &VerifyError{Place: "range", What: fmt.Sprintf("%d entries and %d proofs for %d sequence numbers (entries removed by retention cannot be verified)", len(ev.Entries), len(ev.Inclusion), want)}
	}
	for i, it := range ev.Entries {
		seq := ev.From + uint64(i)
		place := fmt.Sprintf("entry %d", seq)
		if it.Seq != seq {
			return &VerifyError{Place: place, What: fmt.Sprintf("the list gave entry %d here: the entries do not run without a gap", it.Seq)}
		}
		enc, err := it.Entry.Encode()
		if err != nil {
			return &VerifyError{Place: place, What: "its fields do not encode: " + err.Error()}
		}
		if !bytes.Equal(enc, it.Raw) {
			return &VerifyError{Place: place, What: "its fields do not re-encode to its signed bytes"}
		}
		p := ev.Inclusion[i]
		switch {
		case p.Index != seq-1:
			return &VerifyError{Place: place, What: fmt.Sprintf("the inclusion proof is for index %d, want %d", p.Index, seq-1)}
		case p.Size != cp.Size || p.Root != cp.Root:
			return &VerifyError{Place: place, What: fmt.Sprintf("the inclusion proof is against a tree of %d entries with another root, not the checkpoint's", p.Size)}
		case !bytes.Equal(p.Entry, it.Raw):
			return &VerifyError{Place: place, What: "the inclusion proof is for other bytes than the listed entry"}
		}
		if err := tlog.CheckRecord(tlog.RecordProof(p.Proof), int64(cp.Size), cp.Root, int64(seq-1), tlog.RecordHash(it.Raw)); err != nil {
			return &VerifyError{Place: place, What: "not in the checkpoint's tree: " + err.Error()}
		}
	}
	return nil
}

func verifyKept(v note.Verifier, ev RangeEvidence, cp Checkpoint) (Checkpoint, error) {
	kept, err := OpenCheckpoint(ev.Kept, v)
	if err != nil {
		return Checkpoint{}, &VerifyError{Place: "kept checkpoint", What: err.Error()}
	}
	switch {
	case kept.Origin != cp.Origin:
		return Checkpoint{}, &VerifyError{Place: "kept checkpoint", What: fmt.Sprintf("origin %q, not this chain's %q", kept.Origin, cp.Origin)}
	case kept.Size > cp.Size:
		return Checkpoint{}, &VerifyError{Place: "kept checkpoint", What: fmt.Sprintf("it has %d entries, the chain's checkpoint only %d: the log was rolled back or truncated", kept.Size, cp.Size)}
	case kept.Size == cp.Size:
		if kept.Root != cp.Root {
			return Checkpoint{}, &VerifyError{Place: "kept checkpoint", What: "same size, another root: the history was replaced (a fork)"}
		}
		return kept, nil
	}
	p := ev.Consistency
	switch {
	case p == nil:
		return Checkpoint{}, &VerifyError{Place: "consistency proof", What: "missing"}
	case p.Old != kept.Size || p.Size != cp.Size || p.Root != cp.Root:
		return Checkpoint{}, &VerifyError{Place: "consistency proof", What: fmt.Sprintf("for sizes %d→%d, want %d→%d with the checkpoint's root", p.Old, p.Size, kept.Size, cp.Size)}
	}
	if err := tlog.CheckTree(tlog.TreeProof(p.Proof), int64(cp.Size), cp.Root, int64(kept.Size), kept.Root); err != nil {
		return Checkpoint{}, &VerifyError{Place: "consistency proof", What: "the checkpoint's tree does not extend the kept one (a fork): " + err.Error()}
	}
	return kept, nil
}
