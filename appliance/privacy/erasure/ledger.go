package erasure

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/receipt"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Entry is one erasure of the tenant's erasure ledger.
type Entry struct {
	Request string `json:"request"`
	// Subject is the subject's audit pseudonym; Token locates the subject
	// again (subjectToken), for Reapply.
	Subject     string            `json:"subject"`
	Token       string            `json:"token"`
	Erased      time.Time         `json:"erased"`
	KeyShredded bool              `json:"key_shredded"`
	Counts      map[string]uint64 `json:"counts"`
	// AuditSeq and AuditHash are the subject.erase entry's sequence
	// number in the tenant's chain and its leaf hash.
	AuditSeq  uint64   `json:"audit_seq,omitempty"`
	AuditHash [32]byte `json:"audit_hash"`
	// Receipt is the signed receipt (its text and signature).
	Receipt string `json:"receipt,omitempty"`
	// Phase is where the erasure stands: PhaseShredded once the first
	// transaction shredded the key (the removal under way),
	// PhaseCompleted once the last one applied.
	Phase string `json:"phase"`
}

// Phases of an erasure.
const (
	PhaseShredded  = "shredded"
	PhaseCompleted = "completed"
)

var ledgerPath = raftstore.Path("erasures")

// subjectToken locates a subject without naming it: HMAC-SHA256 under
// the tenant's index key of "erasure-subject" 0 id.
func subjectToken(ikey []byte, subject string) string {
	m := hmac.New(sha256.New, ikey)
	m.Write([]byte("erasure-subject"))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// leafHash is an audit entry's Merkle leaf hash, SHA-256(0x00 ‖ entry).
func leafHash(entry []byte) [32]byte {
	return sha256.Sum256(append([]byte{0}, entry...))
}

func validRequestID(id string) bool { return validation.ID(id) }

func ledgerPut(e Entry) (raftstore.Op, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return raftstore.Op{}, err
	}
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: ledgerPath, Key: []byte(e.Request), Value: v}, nil
}

// put writes e to the ledger (its audit position or its receipt, once
// known: an entry is written in the erasure's last transaction first).
func (s *Service) put(ctx context.Context, tenant string, e Entry) error {
	op, err := ledgerPut(e)
	if err != nil {
		return err
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: ledgerPath, Key: []byte(e.Request)}},
		Ops:   []raftstore.Op{op},
	})
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		return ErrNoTenant
	case err != nil:
		return fmt.Errorf("erasure: ledger: %w", err)
	case !res.Applied:
		return fmt.Errorf("%w: ledger entry %s gone", ErrConflict, e.Request)
	}
	return nil
}

// Get returns the ledger's entry of request id (found false: none).
func (s *Service) Get(ctx context.Context, tenant, id string) (Entry, bool, error) {
	var e Entry
	found := false
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		raw, _, ok := r.Get(ledgerPath, []byte(id))
		if !ok {
			return nil
		}
		found = true
		return json.Unmarshal(raw, &e)
	})
	return e, found, err
}

// Ledger lists the tenant's erasures, by request id.
func (s *Service) Ledger(ctx context.Context, tenant string) ([]Entry, error) {
	out := []Entry{}
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		var derr error
		r.Scan(ledgerPath, nil, 0, func(_, v []byte, _ uint64) bool {
			var e Entry
			if derr = json.Unmarshal(v, &e); derr != nil {
				return false
			}
			out = append(out, e)
			return true
		})
		return derr
	})
	return out, err
}

// Receipt is the signed receipt of request id: ErrNotFound when the
// ledger holds no erasure of it.
func (s *Service) Receipt(ctx context.Context, tenant, id string) (string, error) {
	if !validRequestID(id) {
		return "", ErrNotFound
	}
	e, found, err := s.Get(ctx, tenant, id)
	switch {
	case err != nil:
		return "", err
	case !found || e.Phase != PhaseCompleted:
		return "", ErrNotFound
	case e.Receipt == "":
		if e, err = s.sign(ctx, tenant, e); err != nil {
			return "", err
		}
	}
	return e.Receipt, nil
}

// view reads the tenant linearizably; ErrNoTenant when it does not
// exist.
func (s *Service) view(ctx context.Context, tenant string, fn func(tenancy.Read) error) error {
	exists := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if exists = r.Exists(); !exists {
			return nil
		}
		return fn(r)
	})
	if errors.Is(err, tenancy.ErrNoTenant) || (err == nil && !exists) {
		return ErrNoTenant
	}
	if err != nil {
		return fmt.Errorf("erasure: read %s: %w", tenant, err)
	}
	return nil
}

// sign makes e's receipt — against a signed checkpoint of the tenant's
// chain covering its entry, signed now if the latest does not — and
// stores it in the ledger.
func (s *Service) sign(ctx context.Context, tenant string, e Entry) (Entry, error) {
	signer, err := s.audit.Signer(ctx)
	if err != nil {
		return Entry{}, fmt.Errorf("erasure: receipt: %w", err)
	}
	msg, err := s.audit.SignNow(ctx, tenancy.ChainOf(tenant))
	if err != nil {
		return Entry{}, fmt.Errorf("erasure: receipt: checkpoint: %w", err)
	}
	text := string(msg)
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		text = string(msg[:i+1])
	}
	cp, err := audit.ParseCheckpoint(text)
	if err != nil {
		return Entry{}, fmt.Errorf("erasure: receipt: checkpoint: %w", err)
	}
	r := receipt.Receipt{Tenant: tenant, Subject: e.Subject, Request: e.Request, Erased: e.Erased, KeyShredded: e.KeyShredded,
		Entry: e.AuditSeq, EntryHash: e.AuditHash, Checkpoint: receipt.Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Root}}
	for _, k := range slices.Sorted(maps.Keys(e.Counts)) {
		r.Counts = append(r.Counts, receipt.Count{Kind: k, N: e.Counts[k]})
	}
	signed, err := receipt.SignReceipt(r, signer)
	if err != nil {
		return Entry{}, fmt.Errorf("erasure: receipt: %w", err)
	}
	e.Receipt = string(signed)
	if err := s.put(ctx, tenant, e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// Reapply erases again every subject the tenant holds data of whose
// token is among entries' (a restore from a backup older than those
// erasures brought them back), and puts in the ledger the entries it
// lacks. It looks for subject ids where they are named: the records' and
// the blobs' subject indexes. It returns how many subjects it erased.
func (s *Service) Reapply(ctx context.Context, caller audit.Principal, tenant string, entries []Entry) (int, error) {
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, e := range entries {
		want[e.Token] = true
	}
	var found []string
	err = s.view(ctx, tenant, func(r tenancy.Read) error {
		for _, root := range []string{"subjects", "blob_subjects"} {
			r.Buckets(raftstore.Path(root), func(k []byte) bool {
				if want[subjectToken(ikey, string(k))] && !slices.Contains(found, string(k)) {
					found = append(found, string(k))
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, subject := range found {
		if _, err := s.erase(ctx, caller, tenant, subject, "reapply", Entry{}, true); err != nil {
			return 0, fmt.Errorf("erasure: reapply: %w", err)
		}
	}
	have, err := s.Ledger(ctx, tenant)
	if err != nil {
		return len(found), err
	}
	for _, e := range entries {
		if slices.ContainsFunc(have, func(h Entry) bool { return h.Request == e.Request }) || !validRequestID(e.Request) || strings.TrimSpace(e.Token) == "" {
			continue
		}
		op, err := ledgerPut(e)
		if err != nil {
			return len(found), err
		}
		if _, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{op}}); err != nil {
			return len(found), fmt.Errorf("erasure: reapply: ledger: %w", err)
		}
	}
	return len(found), nil
}
