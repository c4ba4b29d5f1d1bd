// Package collections holds the schemas of a tenant's collections: the
// fields a record of the collection has, their types, which are required,
// how sensitive each is (pii, sensitive, internal), which carry a blind
// index for equality search over encrypted values, the retention (how
// many days after its last change a record is erased; 0: the tenant's
// default over the records of subjects — appliance/privacy/retention
// enforces it), whether records must belong to a subject, and the
// processing purposes a record's subject must allow (checked against the
// tenant's purposes through the Purposes interface at definition; records
// enforces them, appliance/privacy/consent keeps them).
//
// Schemas are versioned. PUT defines version 1, then every change makes a
// new version; unchanged PUTs change nothing. Records written under an
// older version must stay readable under the new one, so a change may add
// optional fields, drop fields, change a field's classification, its
// required flag from true to false, or its enum values by adding; it may
// not change a field's type, turn an index on for an existing field (its
// records have no index entries), add a required field, or drop enum
// values. Every version is kept.
//
// # Layout
//
// Below the tenant's bucket, reached only through its tenancy.Scope:
//
//	"collections"          <name> -> current Schema (JSON)
//	"collections_history"  <name> 0x00 <version be8> -> Schema
package collections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Field types.
const (
	TypeString = "string"
	TypeNumber = "number"
	TypeBool   = "bool"
	TypeTime   = "time"
	TypeJSON   = "json"
	TypeEnum   = "enum"
	// TypeRef holds the id of a record of another (or the same)
	// collection, named by Field.Collection; the records service keeps a
	// reverse index of refs so that erasure finds a record's referrers,
	// and Field.OnErase says what the erasure of the referenced record
	// does to the referrer.
	TypeRef = "ref"
)

// What erasing a referenced record does to a record that refers to it
// (Field.OnErase of a ref field).
const (
	// OnEraseDetach rewrites the referrer without the field (a new
	// version): the default, since a referrer is often another person's
	// record (a booking's co-guest) that outlives the link.
	OnEraseDetach = "detach"
	// OnEraseErase erases the referrer too, and follows its own
	// referrers in turn: for records that exist only as part of the
	// referenced one (a guest's preferences, call notes).
	OnEraseErase = "erase"
)

// Classifications.
const (
	ClassPII       = "pii"
	ClassSensitive = "sensitive"
	ClassInternal  = "internal"
)

// Limits.
const (
	MaxFields           = 64
	MaxCollections      = 200
	maxEnumValues       = 100
	maxEnumValue        = 64
	maxRetentionDays    = 36500
	maxCollectionsBytes = 64 << 10
)

// Field is one field of a schema.
type Field struct {
	Name           string   `json:"name"`
	Type           string   `json:"type"`
	Required       bool     `json:"required"`
	Classification string   `json:"classification"`
	Index          bool     `json:"index"`            // blind index: equality search
	Values         []string `json:"values,omitempty"` // enum values
	// Collection is the collection a ref field's records belong to.
	Collection string `json:"collection,omitempty"`
	// OnErase is what erasing the referenced record does to this record
	// (ref fields: OnEraseDetach, the default, or OnEraseErase).
	OnErase string `json:"on_erase,omitempty"`
}

// Schema is a collection's definition at one version.
type Schema struct {
	Tenant          string  `json:"tenant"`
	Name            string  `json:"name"`
	Version         uint64  `json:"version"`
	Fields          []Field `json:"fields"`
	RetentionDays   int     `json:"retention_days,omitempty"` // 0: the tenant's default over subjects' records (appliance/privacy/retention)
	SubjectRequired bool    `json:"subject_required"`
	// Purposes are the tenant's processing purposes a record's subject
	// must allow (appliance/privacy/consent): a write of a record with a
	// subject is refused without every one, a read once the subject
	// refused one. Records without a subject are not checked.
	Purposes  []string  `json:"purposes,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Definition is what a caller PUTs.
type Definition struct {
	Fields          []Field
	RetentionDays   int
	SubjectRequired bool
	Purposes        []string
}

// MaxPurposes bounds the purposes a collection requires.
const MaxPurposes = 8

// Purposes checks that names are processing purposes of the tenant (a
// *validation.FieldError naming the first that is not, as purposes[i]);
// *consent.Service implements it.
type Purposes interface {
	CheckPurposes(ctx context.Context, tenant string, names []string) error
}

// Option varies a Service.
type Option func(*Service)

// WithPurposes has Put check a definition's purposes against the
// tenant's through p. Without it a definition may name none.
func WithPurposes(p Purposes) Option { return func(s *Service) { s.purposes = p } }

// ValidName reports whether s can name a collection or a field: 1 to 63
// of a-z, 0-9 and '_', starting with a letter.
func ValidName(s string) bool { return validation.Name(s) }

// validate checks a definition on its own.
func validate(d *Definition) error {
	if len(d.Fields) == 0 || len(d.Fields) > MaxFields {
		return validation.Field("fields", fmt.Sprintf("must have 1 to %d fields", MaxFields))
	}
	if d.RetentionDays < 0 || d.RetentionDays > maxRetentionDays {
		return validation.Field("retention_days", "must be between 0 (the tenant's default) and 36500 days")
	}
	seen := map[string]bool{}
	for i := range d.Fields {
		f := &d.Fields[i]
		at := fmt.Sprintf("fields[%d]", i)
		if !ValidName(f.Name) {
			return validation.Field(at+".name", "must be 1 to 63 of a-z, 0-9 and _, starting with a letter")
		}
		if seen[f.Name] {
			return validation.Field(at+".name", "is defined twice")
		}
		seen[f.Name] = true
		if f.Type != TypeRef && (f.Collection != "" || f.OnErase != "") {
			return validation.Field(at+".collection", "collection and on_erase are only for ref fields")
		}
		switch f.Type {
		case TypeString, TypeNumber, TypeBool, TypeTime, TypeJSON:
			if len(f.Values) > 0 {
				return validation.Field(at+".values", "is only for enum fields")
			}
		case TypeRef:
			if err := validRef(f, at); err != nil {
				return err
			}
		case TypeEnum:
			if len(f.Values) == 0 || len(f.Values) > maxEnumValues {
				return validation.Field(at+".values", fmt.Sprintf("must list 1 to %d values", maxEnumValues))
			}
			vs := map[string]bool{}
			for _, v := range f.Values {
				if v == "" || len(v) > maxEnumValue || vs[v] {
					return validation.Field(at+".values", "must be distinct, non-empty values of at most 64 bytes")
				}
				vs[v] = true
			}
		default:
			return validation.Field(at+".type", "must be string, number, bool, time, json, enum or ref")
		}
		switch f.Classification {
		case ClassPII, ClassSensitive, ClassInternal:
		default:
			return validation.Field(at+".classification", "must be pii, sensitive or internal")
		}
		if f.Index && f.Type == TypeJSON {
			return validation.Field(at+".index", "is not possible on a json field (equality search needs a scalar)")
		}
	}
	return nil
}

// validRef checks a ref field and sets its default on_erase (detach).
// A required ref cannot be detached: the referrer would lose a required
// field.
func validRef(f *Field, at string) error {
	if len(f.Values) > 0 {
		return validation.Field(at+".values", "is only for enum fields")
	}
	if !ValidName(f.Collection) {
		return validation.Field(at+".collection", "must name a collection: 1 to 63 of a-z, 0-9 and _, starting with a letter")
	}
	if f.OnErase == "" {
		f.OnErase = OnEraseDetach
	}
	switch f.OnErase {
	case OnEraseDetach:
		if f.Required {
			return validation.Field(at+".on_erase", "must be erase for a required ref (detaching would remove a required field)")
		}
	case OnEraseErase:
	default:
		return validation.Field(at+".on_erase", "must be erase or detach")
	}
	return nil
}

// compatible checks that next can follow prev: records of prev stay valid.
func compatible(prev *Schema, next *Definition) error {
	old := map[string]Field{}
	for _, f := range prev.Fields {
		old[f.Name] = f
	}
	for i, f := range next.Fields {
		at := fmt.Sprintf("fields[%d]", i)
		o, ok := old[f.Name]
		if !ok {
			if f.Required {
				return validation.Field(at+".required", "a field added to an existing collection must be optional (its records lack it)")
			}
			continue
		}
		if f.Type != o.Type {
			return validation.Field(at+".type", fmt.Sprintf("cannot change from %s (records hold %s values)", o.Type, o.Type))
		}
		if f.Collection != o.Collection {
			return validation.Field(at+".collection", fmt.Sprintf("cannot change from %s (records refer to its records)", o.Collection))
		}
		if f.Required && !o.Required {
			return validation.Field(at+".required", "cannot become required (existing records may lack it)")
		}
		if f.Index && !o.Index {
			return validation.Field(at+".index", "cannot be turned on for an existing field (its records have no index entries)")
		}
		for _, v := range o.Values {
			if !slices.Contains(f.Values, v) {
				return validation.Field(at+".values", fmt.Sprintf("cannot drop %q (records may hold it)", v))
			}
		}
	}
	return nil
}

// Service manages schemas.
type Service struct {
	tenancy  *tenancy.Boundary // the only storage: one tenant's scope at a time
	now      func() time.Time
	purposes Purposes
}

// New makes the service (now nil: time.Now).
func New(b *tenancy.Boundary, now func() time.Time, opts ...Option) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{tenancy: b, now: now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// checkPurposes checks d's purposes: distinct, at most MaxPurposes, and
// the tenant's (when the service has a Purposes).
func (s *Service) checkPurposes(ctx context.Context, tenant string, d *Definition) error {
	if len(d.Purposes) == 0 {
		d.Purposes = nil
		return nil
	}
	if len(d.Purposes) > MaxPurposes {
		return validation.Field("purposes", fmt.Sprintf("must name at most %d purposes", MaxPurposes))
	}
	for i, p := range d.Purposes {
		if slices.Index(d.Purposes, p) != i {
			return validation.Field(fmt.Sprintf("purposes[%d]", i), "is named twice")
		}
	}
	if s.purposes == nil {
		// Fail closed: a purpose nobody checked would be enforced as
		// undefined (every write refused).
		return validation.Field("purposes", "cannot be checked here: the service has no processing purposes")
	}
	return s.purposes.CheckPurposes(ctx, tenant, d.Purposes)
}

// Paths, relative to the tenant's bucket: tenant data is reached only
// through the tenant's scoped store, which adds it.
var (
	currentPath = raftstore.Path("collections")
	historyPath = raftstore.Path("collections_history")
)

// pathNames is a relative path's names, for building a fresh copy of it.
func pathNames(p [][]byte) []string {
	out := make([]string, len(p))
	for i, b := range p {
		out[i] = string(b)
	}
	return out
}

func historyKey(name string, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(name), 0), v)
}

// Put defines or changes the collection. ifMatch, when non-zero, must be
// the current version (optimistic concurrency). It returns the schema now
// current and whether it changed.
func (s *Service) Put(ctx context.Context, caller audit.Principal, tenant, name string, d Definition, ifMatch uint64) (Schema, bool, error) {
	if !ValidName(name) {
		return Schema{}, false, validation.Field("name", "must be 1 to 63 of a-z, 0-9 and _, starting with a letter")
	}
	if err := validate(&d); err != nil {
		return Schema{}, false, err
	}
	if err := s.checkPurposes(ctx, tenant, &d); err != nil {
		return Schema{}, false, err
	}
	var (
		cur     *Schema
		ver     uint64
		count   int
		present bool
	)
	st := s.tenancy.Scope(tenant)
	err := st.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		present = r.Exists()
		count = r.Count(currentPath)
		v, version, ok := r.Get(currentPath, []byte(name))
		if ok {
			cur = &Schema{}
			ver = version
			return json.Unmarshal(v, cur)
		}
		return nil
	})
	if err != nil {
		return Schema{}, false, fmt.Errorf("collections: read %s: %w", name, err)
	}
	if !present {
		return Schema{}, false, fmt.Errorf("collections: %w", tenants.ErrNotFound)
	}
	if ifMatch != 0 && (cur == nil || cur.Version != ifMatch) {
		return Schema{}, false, ErrConflict
	}
	next := Schema{Tenant: tenant, Name: name, Version: 1, Fields: d.Fields, RetentionDays: d.RetentionDays, SubjectRequired: d.SubjectRequired, Purposes: d.Purposes, UpdatedAt: s.now().UTC()}
	action := "collection.define"
	if cur != nil {
		if reflect.DeepEqual(cur.Fields, d.Fields) && cur.RetentionDays == d.RetentionDays && cur.SubjectRequired == d.SubjectRequired && slices.Equal(cur.Purposes, d.Purposes) {
			return *cur, false, nil
		}
		if err := compatible(cur, &d); err != nil {
			return Schema{}, false, err
		}
		next.Version, action = cur.Version+1, "collection.update"
	} else if count >= MaxCollections {
		return Schema{}, false, ErrTooMany
	}
	val, err := json.Marshal(next)
	if err != nil {
		return Schema{}, false, err
	}
	if len(val) > maxCollectionsBytes {
		return Schema{}, false, validation.Field("fields", "the schema is too large")
	}
	e := caller.Entry(next.UpdatedAt, action, "collection:"+name, audit.OutcomeSuccess, map[string]string{"version": fmt.Sprint(next.Version)})
	entry, err := e.Encode()
	if err != nil {
		return Schema{}, false, err
	}
	txn := &tenancy.Txn{
		Conds: []raftstore.Cond{
			{Kind: raftstore.CondVersion, Bucket: currentPath, Key: []byte(name), Version: ver},
		},
		Ops: []raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: currentPath, Key: []byte(name), Value: val},
			{Kind: raftstore.OpPut, Bucket: historyPath, Key: historyKey(name, next.Version), Value: val},
		},
		Audit: [][]byte{entry},
	}
	res, err := st.Apply(ctx, txn)
	if err != nil {
		return Schema{}, false, fmt.Errorf("collections: put %s: %w", name, err)
	}
	switch {
	case res.Err != nil:
		return Schema{}, false, fmt.Errorf("collections: put %s: %w", name, res.Err)
	case !res.Applied:
		return Schema{}, false, ErrConflict
	}
	return next, true, nil
}

// Get returns the collection's schema: the current one, or version v.
func (s *Service) Get(ctx context.Context, c raftstore.Consistency, tenant, name string, v uint64) (Schema, error) {
	var out Schema
	found := false
	err := s.tenancy.Scope(tenant).View(ctx, c, func(r tenancy.Read) error {
		var b []byte
		if v == 0 {
			b, _, found = r.Get(currentPath, []byte(name))
		} else {
			b, _, found = r.Get(historyPath, historyKey(name, v))
		}
		if !found {
			return nil
		}
		return json.Unmarshal(b, &out)
	})
	if err != nil {
		return Schema{}, fmt.Errorf("collections: get %s: %w", name, err)
	}
	if !found {
		return Schema{}, ErrNotFound
	}
	return out, nil
}

// List returns the tenant's current schemas, by name.
func (s *Service) List(ctx context.Context, c raftstore.Consistency, tenant string) ([]Schema, error) {
	out := []Schema{}
	var decodeErr error
	err := s.tenancy.Scope(tenant).View(ctx, c, func(r tenancy.Read) error {
		r.Scan(currentPath, nil, 0, func(_, v []byte, _ uint64) bool {
			var sc Schema
			if decodeErr = json.Unmarshal(v, &sc); decodeErr != nil {
				return false
			}
			out = append(out, sc)
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collections: list: %w", err)
	}
	return out, decodeErr
}
