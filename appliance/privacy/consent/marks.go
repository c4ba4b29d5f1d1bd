package consent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Mark is a withdrawal mark: a subject withdrew a purpose whose rule is
// erase or anonymise, and the data the purpose covers (the records of
// collections that require it, the blobs of kinds that require it) is
// due for that rule. The retention sweeper consumes marks (see the
// package doc).
type Mark struct {
	// Key identifies the mark in its tenant (MarkDoneOps takes it).
	Key []byte `json:"-"`
	// Subject is the subject's id, opened (stored sealed).
	Subject string `json:"subject"`
	// Token is the subject's blind index, as its ledger is keyed.
	Token   string    `json:"token"`
	Purpose string    `json:"purpose"`
	Rule    string    `json:"rule"` // OnWithdrawErase or OnWithdrawAnonymise
	At      time.Time `json:"at"`   // the withdrawal's time
	Seq     uint64    `json:"seq"`  // the withdrawal's ledger sequence
}

// storedMark is a mark as kept: the subject's id sealed.
type storedMark struct {
	Mark
	Sealed []byte `json:"subject_sealed"`
}

var marksPath = raftstore.Path("consent_marks")

// markKey orders marks by time: at (unix nanoseconds, 8 bytes), token, 0,
// purpose.
func markKey(at time.Time, tok, purpose string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	k = append(k, tok...)
	k = append(k, 0)
	return append(k, purpose...)
}

// markPlace binds a mark's sealed subject id to the mark.
func markPlace(tenant, tok, purpose string, seq uint64) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "consent-mark", RecordID: tok, Field: purpose, Version: seq}
}

// marks are the puts of the withdrawal marks ev leaves: one per purpose
// it withdraws whose rule is not keep (a withdrawal of all: every such
// purpose on the consent or legitimate-interest basis; the others do not
// rest on the subject's agreement).
func (s *Service) marks(ctx context.Context, tenant, tok, subject string, ev Event, known map[string]Purpose) ([]raftstore.Op, error) {
	if ev.Kind != KindWithdraw {
		return nil, nil
	}
	var ids []string
	if ev.All {
		for id, p := range known {
			if p.Basis == BasisConsent || p.Basis == BasisLegitimateInterest {
				ids = append(ids, id)
			}
		}
	} else {
		ids = ev.Purposes
	}
	var ops []raftstore.Op
	var key *keyring.Key
	for _, id := range ids {
		rule := onWithdraw(known[id].OnWithdraw)
		if rule == OnWithdrawKeep {
			continue
		}
		if key == nil {
			var err error
			if key, err = s.keys.DataKey(ctx, tenant, ""); err != nil {
				return nil, err
			}
		}
		m := storedMark{Mark: Mark{Token: tok, Purpose: id, Rule: rule, At: ev.At, Seq: ev.Seq}}
		sealed, err := keyring.Seal(key, markPlace(tenant, tok, id, ev.Seq), []byte(subject))
		if err != nil {
			return nil, err
		}
		m.Sealed = sealed
		val, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: marksPath, Key: markKey(ev.At, tok, id), Value: val})
	}
	return ops, nil
}

// WithdrawalMarks lists up to limit (at most 1000) of the tenant's
// withdrawal marks, oldest first, with the subjects' ids opened. They
// stay until the consumer deletes them with MarkDoneOps in the
// transaction that carries out their rule, so a sweep that fails finds
// them again.
func (s *Service) WithdrawalMarks(ctx context.Context, tenant string, limit int) ([]Mark, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var stored []storedMark
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		var bad error
		r.Scan(marksPath, nil, limit, func(k, v []byte, _ uint64) bool {
			var m storedMark
			if err := json.Unmarshal(v, &m); err != nil {
				bad = fmt.Errorf("consent: withdrawal mark %x: %w", k, err)
				return false
			}
			m.Key = append([]byte(nil), k...)
			stored = append(stored, m)
			return true
		})
		return bad
	})
	if err != nil || len(stored) == 0 {
		return nil, err
	}
	key, err := s.keys.DataKey(ctx, tenant, "")
	if err != nil {
		return nil, err
	}
	out := make([]Mark, 0, len(stored))
	for _, m := range stored {
		subject, err := keyring.Open(key, markPlace(tenant, m.Token, m.Purpose, m.Seq), m.Sealed)
		if err != nil {
			return nil, fmt.Errorf("consent: withdrawal mark %x: %w", m.Key, err)
		}
		m.Mark.Subject = string(subject)
		out = append(out, m.Mark)
	}
	return out, nil
}

// MarkDoneOps are the operations (relative to the tenant's bucket, for
// a tenancy.Txn of the tenant's scope) that delete marks once their rule
// is carried out: the consumer puts them in that same transaction.
func (s *Service) MarkDoneOps(marks ...Mark) []raftstore.Op {
	ops := make([]raftstore.Op, 0, len(marks))
	for _, m := range marks {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: marksPath, Key: m.Key})
	}
	return ops
}

// markDeletes are the deletes of the subject's (token tok) withdrawal
// marks: an erasure leaves none, since a mark holds the subject's id
// (sealed under the tenant's key, which the erasure does not shred).
func markDeletes(r tenancy.Read, tok string) []raftstore.Op {
	var ops []raftstore.Op
	r.Scan(marksPath, nil, 0, func(k, _ []byte, _ uint64) bool {
		if len(k) > 8 && bytes.HasPrefix(k[8:], append([]byte(tok), 0)) {
			ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: marksPath, Key: append([]byte(nil), k...)})
		}
		return true
	})
	return ops
}
