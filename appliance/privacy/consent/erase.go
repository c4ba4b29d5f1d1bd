package consent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// # Erasure of a subject's ledger
//
// The erasure of a data subject (appliance/privacy/erasure) cannot drop
// the consent ledger outright: the tenant must still be able to show that
// past processing had a basis (GDPR art. 7(1), art. 17(3)(e)). So
// EraseOps moves each event to
//
//	consent_erased / <subject token> / <seq, 8 bytes>   the minimal proof (JSON)
//
// keeping only the minimal proof — the subject's pseudonymous token (the
// bucket), the event's sequence, time, kind, purposes (or all), the
// policy versions, the flag and its value, the source and the evidence's
// keyed digest, which the audit chain holds too — and dropping the sealed
// evidence text, the evidence blob's id and the actor. Out of the ledger,
// the events no longer count: the subject's state reads as if it had
// never consented to anything (a subject with the same id later starts
// afresh), and Require refuses what needs consent.

// Proof is an erased event as consent_erased keeps it.
type Proof struct {
	Seq            uint64         `json:"seq"`
	At             time.Time      `json:"at"`
	Kind           string         `json:"kind"`
	Purposes       []string       `json:"purposes,omitempty"`
	All            bool           `json:"all,omitempty"`
	PolicyVersions map[string]int `json:"policy_versions,omitempty"`
	Flag           string         `json:"flag,omitempty"`
	On             bool           `json:"on,omitempty"`
	Source         string         `json:"source"`
	EvidenceDigest string         `json:"evidence_digest,omitempty"`
}

var erasedRoot = "consent_erased"

func erasedPath(token string) [][]byte { return raftstore.Path(erasedRoot, token) }

// EraseOps returns the writes that replace subject's ledger by its
// minimal proof (two per event: the event's delete, the proof's put; paths
// relative to the tenant's bucket) and the number of events; the erasure
// applies them in its own transactions. Nothing to erase: no ops, 0.
// Applying them twice is harmless.
func (s *Service) EraseOps(ctx context.Context, tenant, subject string) ([]raftstore.Op, int, error) {
	if err := checkSubject(subject); err != nil {
		return nil, 0, err
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return nil, 0, err
	}
	tok := token(ikey, subject)
	var ops []raftstore.Op
	n := 0
	err = s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		var derr error
		r.Scan(ledgerPath(tok), nil, 0, func(k, v []byte, _ uint64) bool {
			var e stored
			if derr = json.Unmarshal(v, &e); derr != nil {
				derr = fmt.Errorf("consent: ledger event %x: %w", k, derr)
				return false
			}
			p := Proof{Seq: e.Seq, At: e.At, Kind: e.Kind, Purposes: e.Purposes, All: e.All, PolicyVersions: e.PolicyVersions,
				Flag: e.Flag, On: e.On, Source: e.Source, EvidenceDigest: e.EvidenceDigest}
			val, err := json.Marshal(p)
			if err != nil {
				derr = err
				return false
			}
			key := append([]byte(nil), k...)
			ops = append(ops,
				raftstore.Op{Kind: raftstore.OpDelete, Bucket: ledgerPath(tok), Key: key},
				raftstore.Op{Kind: raftstore.OpPut, Bucket: erasedPath(tok), Key: key, Value: val})
			n++
			return true
		})
		ops = append(ops, markDeletes(r, tok)...) // marks.go: the subject's withdrawal marks go too
		return derr
	})
	if err != nil {
		return nil, 0, fmt.Errorf("consent: erase %s: %w", tenant, err)
	}
	return ops, n, nil
}

// ErasedProofs returns what consent_erased keeps of subject's ledger.
func (s *Service) ErasedProofs(ctx context.Context, tenant, subject string) ([]Proof, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []Proof
	err = s.view(ctx, tenant, func(r tenancy.Read) error {
		var derr error
		r.Scan(erasedPath(token(ikey, subject)), nil, 0, func(_, v []byte, _ uint64) bool {
			var p Proof
			if derr = json.Unmarshal(v, &p); derr != nil {
				return false
			}
			out = append(out, p)
			return true
		})
		return derr
	})
	return out, err
}
