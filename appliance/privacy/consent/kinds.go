package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// MaxKinds bounds a tenant's blob kinds.
const MaxKinds = 64

// Kind is a tenant's blob kind and the purposes a blob of it requires of
// its subject (none: the kind only classifies).
type Kind struct {
	Kind      string    `json:"kind"`
	Purposes  []string  `json:"purposes"`
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

var kindsPath = raftstore.Path("consent_blob_kinds")

// ValidKind reports whether s can name a blob kind: as a purpose id, 1
// to 48 of a-z, 0-9 and -, starting with a letter.
func ValidKind(s string) bool { return validPurposeID(s) }

// PutKind defines or changes a blob kind: the purposes its blobs require,
// each a purpose of the tenant (a purpose cannot be removed, so the
// policy never names a missing one).
func (s *Service) PutKind(ctx context.Context, caller audit.Principal, tenant, kind string, purposes []string) (Kind, error) {
	if !ValidKind(kind) {
		return Kind{}, validation.Field("kind", fmt.Sprintf("must be 1 to %d of a-z, 0-9 and -, starting with a letter", MaxPurposeID))
	}
	if len(purposes) > MaxEventPurposes {
		return Kind{}, validation.Field("purposes", fmt.Sprintf("must name at most %d purposes", MaxEventPurposes))
	}
	if err := callerIn(caller, tenant); err != nil {
		return Kind{}, err
	}
	var (
		cur     Kind
		version uint64
		count   int
		known   []Purpose
		pvers   map[string]uint64
	)
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		count = r.Count(kindsPath)
		var err error
		if known, pvers, err = readPurposes(r); err != nil {
			return err
		}
		v, ver, ok := r.Get(kindsPath, []byte(kind))
		if !ok {
			return nil
		}
		version = ver
		return json.Unmarshal(v, &cur)
	})
	if err != nil {
		return Kind{}, err
	}
	if version == 0 && count >= MaxKinds {
		return Kind{}, fmt.Errorf("%w: blob kinds (at most %d)", ErrTooMany, MaxKinds)
	}
	if err := namesKnown(purposes, known); err != nil {
		return Kind{}, err
	}
	k := Kind{Kind: kind, Purposes: slices.Clone(purposes), Version: cur.Version + 1, UpdatedAt: s.now().UTC()}
	if k.Purposes == nil {
		k.Purposes = []string{}
	}
	val, err := json.Marshal(k)
	if err != nil {
		return Kind{}, err
	}
	entry, err := caller.Entry(k.UpdatedAt, "consent.kind.put", "blob-kind:"+kind, audit.OutcomeSuccess, map[string]string{
		"purposes": strings.Join(k.Purposes, ","), "version": fmt.Sprint(k.Version),
	}).Encode()
	if err != nil {
		return Kind{}, err
	}
	conds := []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: kindsPath, Key: []byte(kind), Version: version}}
	for _, p := range k.Purposes {
		conds = append(conds, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: purposesPath, Key: []byte(p), Version: pvers[p]})
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: conds,
		Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: kindsPath, Key: []byte(kind), Value: val}},
		Audit: [][]byte{entry},
	})
	if err := applied(res, err); err != nil {
		return Kind{}, fmt.Errorf("consent: put blob kind %s of %s: %w", kind, tenant, err)
	}
	return k, nil
}

// namesKnown checks that names are distinct purposes of known, naming
// the first that is not (purposes[i]).
func namesKnown(names []string, known []Purpose) error {
	for i, n := range names {
		field := fmt.Sprintf("purposes[%d]", i)
		switch {
		case !slices.ContainsFunc(known, func(p Purpose) bool { return p.ID == n }) && validPurposeID(n):
			return validation.Field(field, fmt.Sprintf("%s is not a purpose of the tenant", n))
		case !slices.ContainsFunc(known, func(p Purpose) bool { return p.ID == n }):
			return validation.Field(field, "is not a purpose of the tenant")
		case slices.Index(names, n) != i:
			return validation.Field(field, "is named twice")
		}
	}
	return nil
}

// CheckPurposes reports whether every name is a purpose of the tenant
// (a *validation.FieldError naming the first that is not, as
// purposes[i]); collections check a schema's purposes with it.
func (s *Service) CheckPurposes(ctx context.Context, tenant string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var known []Purpose
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		var err error
		known, _, err = readPurposes(r)
		return err
	})
	if err != nil {
		return err
	}
	return namesKnown(names, known)
}

// Kinds lists the tenant's blob kinds by name.
func (s *Service) Kinds(ctx context.Context, caller audit.Principal, tenant string) ([]Kind, error) {
	if err := callerIn(caller, tenant); err != nil {
		return nil, err
	}
	out := []Kind{}
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		var bad error
		r.Scan(kindsPath, nil, 0, func(k, v []byte, _ uint64) bool {
			var kd Kind
			if bad = json.Unmarshal(v, &kd); bad != nil {
				bad = fmt.Errorf("consent: blob kind %s: %w", k, bad)
				return false
			}
			out = append(out, kd)
			return true
		})
		return bad
	})
	return out, err
}

// kind reads one blob kind; ErrNoKind when the tenant has none of it.
func (s *Service) kind(ctx context.Context, tenant, kind string) (Kind, error) {
	var k Kind
	found := false
	if ValidKind(kind) {
		err := s.view(ctx, tenant, func(r tenancy.Read) error {
			v, _, ok := r.Get(kindsPath, []byte(kind))
			if !ok {
				return nil
			}
			found = true
			return json.Unmarshal(v, &k)
		})
		if err != nil {
			return Kind{}, err
		}
	}
	if !found {
		return Kind{}, fmt.Errorf("%w: %s", ErrNoKind, kind)
	}
	return k, nil
}

// Kind returns one blob kind of the tenant.
func (s *Service) Kind(ctx context.Context, caller audit.Principal, tenant, kind string) (Kind, error) {
	if err := callerIn(caller, tenant); err != nil {
		return Kind{}, err
	}
	return s.kind(ctx, tenant, kind)
}

// RequireKind is Require (write) or RequireRead (read) for the purposes
// a blob of kind requires of subject. A kind the tenant does not define
// is a *validation.FieldError on kind at a write (an upload names a
// defined kind: a typo must not skip enforcement) and ErrNoKind at a
// read (the kind was defined when the blob was stored, and kinds are not
// removed). A blob without subject requires nothing.
func (s *Service) RequireKind(ctx context.Context, tenant, subject, kind string, read bool) error {
	k, err := s.kind(ctx, tenant, kind)
	switch {
	case err != nil && !read && errors.Is(err, ErrNoKind):
		return validation.Field("kind", "is not a blob kind of the tenant")
	case err != nil:
		return err
	case subject == "" || len(k.Purposes) == 0:
		return nil
	case read:
		return s.RequireRead(ctx, tenant, subject, k.Purposes...)
	}
	return s.Require(ctx, tenant, subject, k.Purposes...)
}
