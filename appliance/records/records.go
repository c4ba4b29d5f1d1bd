// Package records stores a tenant's records: the values of a collection's
// fields, each encrypted under the tenant's keys, with blind indexes for
// equality search, an optional subject and attributes.
//
// # Encryption
//
// Every field value (its JSON encoding) is sealed with keyring.Seal under
// the record subject's data key, or the tenant's data key when the record
// has no subject, bound to its place: tenant, collection, record id, field
// and record version. A ciphertext moved to another record, field, version
// or tenant does not open; such a record is reported as an integrity error
// (ErrIntegrity), never served.
//
// # Blind indexes
//
// For a field marked index, the record writes an entry keyed by
// HMAC-SHA256(tenant index key, collection 0 field 0 normalized value) and
// the record id: equality search without the value. Strings are normalized
// by Unicode-aware lower-casing and trimming; other types by their
// canonical JSON.
//
// # Layout
//
// Paths are relative to the tenant's bucket: the service holds only the
// tenancy boundary, and every read and write goes through the tenant's
// tenancy.Scope, which adds the tenant's bucket, appends audit entries only
// to the tenant's own chain and conditions every write on the tenant
// existing. Nothing here can name another tenant's data.
//
//	records/<collection>        <id> -> envelope (JSON: subject, attributes,
//	                            versions, times, sealed fields, and the
//	                            record's blind-index entries and refs,
//	                            which removals delete by: erase.go)
//	index/<collection>/<field>  <hmac 32> <id> -> ""
//	subjects/<subject>          <collection> 0x00 <id> -> ""
//	refs/<collection>/<id>      <collection> 0x00 <id> 0x00 <field> -> ""
//	                            (the records that refer to collection/id:
//	                            refs.go)
//
// # Attribute scopes
//
// A record's attributes are in the clear in its envelope: they are for
// access decisions. A principal with attribute scopes reaches records only
// through a handle restricted to them (scope.go): a record outside its
// scope — and an index or subject entry pointing at one — reads as
// absent, so every operation answers for it exactly as for a missing
// record (ErrNotFound; not counted, listed or found), and a write that
// would create a record outside the scope or move one out of it is
// refused (tenancy.ErrRestricted). A record that lacks a scoped attribute
// is outside the scope. Audit entries of scoped reads count only what
// was answered.
//
// Writes are audited in the tenant's chain in the same transaction; reads
// of pii or sensitive fields are audited too, and so are blind-index
// searches (record.search: the field, the searched value's pseudonym and
// the number of ids answered) and subject lookups (subject.read: the
// subject's pseudonym and the number of records), which reveal whether a
// person is known to the tenant even when they return nothing — pseudonyms
// keyed under the tenant's audit key (audit.Pseudonym). One entry per read
// or lookup, written
// through the node's audit.Batcher, which commits the entries of concurrent
// reads together in one transaction (one of its transactions may carry
// several tenants' entries: it appends through the tenancy boundary's
// batched path, and the service hands it the scope of the tenant being
// read, which names the chain and places the read's conditions). A read,
// search or lookup is answered only once its entry is committed; if the
// entry cannot be written, it fails.
//
// # Visibility
//
// Every record answered (read, created, replaced, patched) is shown as
// the caller reads it: appliance/identity/visibility says, from the
// principal's role, whether each field classification reads in clear,
// masked (Record.Masked names those fields) or not at all (left out;
// Record.Withheld names every field of the schema of that
// classification). A find by a blind-indexed field is answered only to
// a caller that reads the field's classification in clear
// (ErrFindWithheld): a match confirms the value. Listings and subject
// lookups answer ids, which are not classified.
//
// # Integrity failures
//
// A read (Get, and the read step of Replace and Patch) that finds a
// stored value that does not open fails with ErrIntegrity and, best
// effort, leaves a record.integrity_failure entry in the tenant's chain
// naming the fields that failed (names only). Delete still works on such
// a record: it removes the envelope, the subject entry (the envelope's
// subject is stored in the clear) and the index entries — found, since
// the values that would name them do not open, by scanning the
// collection's index buckets for keys ending in the record id, a cost
// paid only on that path — and its audit entry notes the failure.
//
// # Consistency
//
// Every answer and every write is linearizable. Operations that end in a
// replicated transaction (writes, audited reads) read this node's local
// state and condition that transaction on the versions they read, so they
// need no read-index round; anything else reads linearizably. See
// state.go.
//
// # Consent
//
// A collection's schema may list processing purposes (collections
// checks them against the tenant's). A create, replace or patch of a
// record with a subject asks the subject's consent for every one through
// the Consent interface (appliance/privacy/consent implements it,
// WithConsent wires it) and is refused with its *consent.RequiredError
// (403 consent-required) before anything is written; a Get is refused the
// same way once the subject refused one (withdrew, restricted, opted
// out), but not merely because it never decided. Records without a
// subject are not checked, and neither is a delete (erasing is always
// allowed). The check reads the ledger just before the write's
// transaction: a withdrawal committed in between applies from the next
// write on (consent.go).
//
// # Files
//
// records.go is the service and its writes (create, replace, patch,
// delete); refs.go is ref fields and their reverse index; erase.go
// builds bulk removals and detachments for erasure and retention;
// validate.go checks input against the schema; seal.go seals and
// opens field values; index.go is the blind index and search;
// visibility.go shows a record as the reader's role reads it (see
// appliance/identity/visibility) and mask.go is the masked form of a
// value; read.go is reads and their audit; list.go
// lists a collection and a subject's holdings; state.go reads stored state
// for a write; integrity.go handles values that do not open; scope.go is
// the caller's handle on the tenant's store, restricted to its attribute
// scope.
package records

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/visibility"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Limits.
const (
	maxValueBytes = 64 << 10
)

// Record is a record as the API reads and writes it.
type Record struct {
	ID         string                     `json:"id"`
	Collection string                     `json:"collection"`
	Subject    string                     `json:"subject,omitempty"`
	Attributes map[string]string          `json:"attributes,omitempty"`
	Fields     map[string]json.RawMessage `json:"fields"`
	// Masked names the fields whose values are masked forms (see
	// appliance/identity/visibility), Withheld the schema's fields the
	// reader does not read at all (left out of Fields whether or not the
	// record holds them); both sorted, empty for a reader who reads all.
	Masked        []string  `json:"masked,omitempty"`
	Withheld      []string  `json:"withheld,omitempty"`
	Version       uint64    `json:"version"`
	SchemaVersion uint64    `json:"schema_version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// envelope is the stored form.
type envelope struct {
	Subject       string            `json:"subject,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	Version       uint64            `json:"version"`
	SchemaVersion uint64            `json:"schema_version"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	Sealed        map[string][]byte `json:"sealed"`
	// Refs are the record's ref values in the clear (refs.go): what its
	// reverse-index entries are deleted by without opening a value.
	Refs []storedRef `json:"refs,omitempty"`
	// Index are the record's blind-index entries (field and token: what
	// the index's keys hold in the clear anyway), so that a removal
	// deletes them without opening a value — fast, and possible once the
	// subject's key is shredded (erase.go). Records written before they
	// were kept have none: a removal opens their values.
	Index []indexEntry `json:"ix,omitempty"`
}

// Keys is the part of the keyring records use; *keyring.Hierarchy
// implements it.
type Keys interface {
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	IndexKey(ctx context.Context, tenant string) ([]byte, error)
	// AuditKey keys the pseudonyms of searched values and looked-up
	// subjects in audit entries.
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
}

// Schemas locates and decodes collection schemas, which records reads in
// its own read transactions (state.go); *collections.Service implements
// it. CurrentKey's bucket is relative to the tenant's bucket.
type Schemas interface {
	CurrentKey(name string) (bucket [][]byte, key []byte)
	Decode(raw []byte) (collections.Schema, error)
}

// Service stores records.
type Service struct {
	tenancy *tenancy.Boundary // the only storage: one tenant's scope at a time
	keys    Keys
	schemas Schemas
	now     func() time.Time
	reads   *audit.Batcher // writes the entries of audited reads; nil: the tenant's store does, one transaction each
	vis     *visibility.Resolver
	consent Consent // nil: no purposes enforced (consent.go)
	cache   schemaCache
	layout  tenancy.Layout // the buckets it reads, for handles restricted to an attribute scope (scope.go)
}

// Option varies a Service.
type Option func(*Service)

// WithReadAudit has the service write the audit entries of reads through
// b, a batcher over the replicated store that its owner closes (the node
// shares one per node): concurrent reads, of any tenant, share its
// transactions. Without it each read's entry is a transaction of its own
// through the tenant's scoped store.
func WithReadAudit(b *audit.Batcher) Option { return func(s *Service) { s.reads = b } }

// WithVisibility has the service show records to each principal as r
// decides (without it, a resolver with no custom roles and no
// break-glass: visibility.New()).
func WithVisibility(r *visibility.Resolver) Option { return func(s *Service) { s.vis = r } }

// New makes the service over the tenancy boundary (now nil: time.Now).
func New(b *tenancy.Boundary, keys Keys, schemas Schemas, now func() time.Time, opts ...Option) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{tenancy: b, keys: keys, schemas: schemas, now: now, vis: visibility.New()}
	s.layout = newLayout(schemas)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Paths, relative to the tenant's bucket (its tenancy.Scope adds it).

func recordsPath(collection string) [][]byte { return raftstore.Path("records", collection) }

func indexPath(collection, field string) [][]byte {
	return raftstore.Path("index", collection, field)
}

func subjectPath(subject string) [][]byte { return raftstore.Path("subjects", subject) }

// subjectKey is the key of a record in its subject's bucket.
func subjectKey(collection, id string) []byte { return []byte(collection + "\x00" + id) }

// Replace writes a new version of a record (all its fields, subject and
// attributes), and answers it as caller reads records (as Create and
// Patch do: see Get). Fields the caller does not read in clear keep
// their stored values when the body leaves them out or sends back the
// masked form it read (keepUnread). ifMatch, when non-zero, must be its current version
// (ErrVersion otherwise); a concurrent change between read and write is
// ErrVersion too.
func (s *Service) Replace(ctx context.Context, caller audit.Principal, tenant, collection, id string, in Input, ifMatch uint64) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	v, err := s.sight(ctx, caller, tenant, false)
	if err != nil {
		return Record{}, err
	}
	return attempt(func(c raftstore.Consistency) (Record, error) {
		st, old, err := s.readStored(ctx, c, caller, tenant, collection, id)
		if err != nil {
			return Record{}, err
		}
		rec, err := s.write(ctx, c, caller, &st, keepUnread(in, old, st.sc, v, true), old, ifMatch)
		if err != nil {
			return Record{}, err
		}
		return shown(rec, st.sc, v), nil
	})
}

// readStored reads and opens a stored record at consistency c (see
// state.go). An integrity failure found by a linearizable read is
// audited (failed).
func (s *Service) readStored(ctx context.Context, c raftstore.Consistency, caller audit.Principal, tenant, collection, id string) (state, Record, error) {
	st, err := s.read(ctx, c, caller, tenant, collection, id)
	if err != nil {
		return state{}, Record{}, staleIf(c, err)
	}
	if !st.found {
		return state{}, Record{}, staleIf(c, ErrNotFound)
	}
	if st.broken {
		return state{}, Record{}, s.failed(ctx, c, caller, &st, st.brokenErr())
	}
	rec, err := s.openStored(ctx, &st)
	if err != nil {
		return state{}, Record{}, s.failed(ctx, c, caller, &st, err)
	}
	return st, rec, nil
}

// write stores in as the next version of the record read as st (old, its
// fields), on condition that the record and its schema are still as read.
func (s *Service) write(ctx context.Context, c raftstore.Consistency, caller audit.Principal, st *state, in Input, old Record, ifMatch uint64) (Record, error) {
	tenant, collection, id, sc, env := st.tenant, st.col, st.id, st.sc, st.env
	in.ID = id
	values, err := validate(sc, &in)
	if err != nil {
		return Record{}, staleIf(c, err)
	}
	if ifMatch != 0 && ifMatch != env.Version {
		return Record{}, staleIf(c, ErrVersion)
	}
	if err := s.requireConsent(ctx, tenant, in.Subject, sc, false); err != nil {
		return Record{}, err
	}
	key, err := s.keys.DataKey(ctx, tenant, in.Subject)
	if err != nil {
		return Record{}, err
	}
	ops, err := s.indexDeletes(ctx, tenant, collection, id, sc, old)
	if err != nil {
		return Record{}, err
	}
	next := envelope{Subject: in.Subject, Attributes: in.Attributes, Version: env.Version + 1, SchemaVersion: sc.Version, CreatedAt: env.CreatedAt, UpdatedAt: s.now().UTC()}
	sealed, puts, err := s.sealAll(ctx, tenant, collection, id, next.Version, sc, values, key)
	if err != nil {
		return Record{}, err
	}
	next.Sealed = sealed
	ops = append(ops, puts...)
	next.Index = indexOfPuts(puts)
	next.Refs = refsOf(sc, values)
	ops = append(ops, refDeletes(collection, id, env.Refs)...)
	ops = append(ops, refPuts(collection, id, next.Refs)...)
	val, err := json.Marshal(next)
	if err != nil {
		return Record{}, err
	}
	ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: recordsPath(collection), Key: []byte(id), Value: val})
	if env.Subject != "" && env.Subject != in.Subject {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: subjectPath(env.Subject), Key: subjectKey(collection, id)})
	}
	if in.Subject != "" {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: subjectPath(in.Subject), Key: subjectKey(collection, id), Value: []byte{}})
	}
	store := st.store
	entry, err := caller.Entry(next.UpdatedAt, "record.update", "record:"+collection+"/"+id, audit.OutcomeSuccess,
		map[string]string{"version": fmt.Sprint(next.Version)}).Encode()
	if err != nil {
		return Record{}, err
	}
	txn := &tenancy.Txn{
		Conds: []raftstore.Cond{st.recordCond(), st.schemaCond()},
		Ops:   ops,
		Audit: [][]byte{entry},
	}
	res, err := store.Apply(ctx, txn)
	if err != nil {
		return Record{}, fmt.Errorf("records: replace: %w", err)
	}
	switch {
	case res.Err != nil:
		return Record{}, fmt.Errorf("records: replace: %w", res.Err)
	case res.FailedCond == 1:
		return Record{}, errStale // the schema changed (or was not current here)
	case !res.Applied:
		return Record{}, staleIf(c, ErrVersion) // the record changed since it was read
	}
	return written(collection, id, next, values), nil
}

// Create stores a new record (version 1).
func (s *Service) Create(ctx context.Context, caller audit.Principal, tenant, collection string, in Input) (Record, error) {
	if in.ID == "" {
		var err error
		if in.ID, err = newID(); err != nil {
			return Record{}, err
		}
	} else if !validID(in.ID) {
		return Record{}, validation.Field("id", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'")
	}
	v, err := s.sight(ctx, caller, tenant, false)
	if err != nil {
		return Record{}, err
	}
	return attempt(func(c raftstore.Consistency) (Record, error) {
		return s.create(ctx, c, caller, tenant, collection, in, v)
	})
}

// create is one attempt of Create, reading the schema at consistency c;
// it answers the record as v reads it.
func (s *Service) create(ctx context.Context, c raftstore.Consistency, caller audit.Principal, tenant, collection string, in Input, v visibility.Sight) (Record, error) {
	st, err := s.read(ctx, c, caller, tenant, collection, "")
	if err != nil {
		return Record{}, staleIf(c, err)
	}
	sc := st.sc
	values, err := validate(sc, &in)
	if err != nil {
		return Record{}, staleIf(c, err)
	}
	if err := s.requireConsent(ctx, tenant, in.Subject, sc, false); err != nil {
		return Record{}, err
	}
	key, err := s.keys.DataKey(ctx, tenant, in.Subject)
	if err != nil {
		return Record{}, err
	}
	now := s.now().UTC()
	env := envelope{Subject: in.Subject, Attributes: in.Attributes, Version: 1, SchemaVersion: sc.Version, CreatedAt: now, UpdatedAt: now}
	sealed, ops, err := s.sealAll(ctx, tenant, collection, in.ID, 1, sc, values, key)
	if err != nil {
		return Record{}, err
	}
	env.Sealed = sealed
	env.Index = indexOfPuts(ops)
	env.Refs = refsOf(sc, values)
	ops = append(ops, refPuts(collection, in.ID, env.Refs)...)
	val, err := json.Marshal(env)
	if err != nil {
		return Record{}, err
	}
	ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: recordsPath(collection), Key: []byte(in.ID), Value: val})
	if in.Subject != "" {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: subjectPath(in.Subject), Key: subjectKey(collection, in.ID), Value: []byte{}})
	}
	store := st.store
	entry, err := caller.Entry(now, "record.create", "record:"+collection+"/"+in.ID, audit.OutcomeSuccess, nil).Encode()
	if err != nil {
		return Record{}, err
	}
	// The scoped store adds the condition that the tenant exists.
	txn := &tenancy.Txn{
		Conds: []raftstore.Cond{
			{Kind: raftstore.CondAbsent, Bucket: recordsPath(collection), Key: []byte(in.ID)},
			st.schemaCond(),
		},
		Ops:   ops,
		Audit: [][]byte{entry},
	}
	res, err := store.Apply(ctx, txn)
	if err != nil {
		return Record{}, fmt.Errorf("records: create: %w", err)
	}
	switch {
	case res.Err != nil:
		return Record{}, fmt.Errorf("records: create: %w", res.Err)
	case res.FailedCond == 1:
		return Record{}, errStale // the schema changed (or was not current here)
	case !res.Applied:
		return Record{}, ErrExists
	}
	return shown(written(collection, in.ID, env, values), sc, v), nil
}

// Delete removes a record with its subject and index entries — also a
// record whose stored values do not open (an integrity failure), whose
// index entries are then found by a scan (deleteIndex).
func (s *Service) Delete(ctx context.Context, caller audit.Principal, tenant, collection, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	_, err := attempt(func(c raftstore.Consistency) (struct{}, error) {
		return struct{}{}, s.delete(ctx, c, caller, tenant, collection, id)
	})
	return err
}

// delete is one attempt of Delete, reading at consistency c.
func (s *Service) delete(ctx context.Context, c raftstore.Consistency, caller audit.Principal, tenant, collection, id string) error {
	st, err := s.read(ctx, c, caller, tenant, collection, id)
	if err != nil {
		return staleIf(c, err)
	}
	if !st.found {
		return staleIf(c, ErrNotFound)
	}
	ops, details, err := s.deleteIndex(ctx, c, &st)
	if err != nil {
		return err
	}
	ops = append(ops, refDeletes(collection, id, st.env.Refs)...)
	ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: recordsPath(collection), Key: []byte(id)})
	if sub := st.env.Subject; sub != "" && validID(sub) {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: subjectPath(sub), Key: subjectKey(collection, id)})
	}
	store := st.store
	entry, err := caller.Entry(s.now().UTC(), "record.delete", "record:"+collection+"/"+id, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return err
	}
	txn := &tenancy.Txn{
		Conds: []raftstore.Cond{st.recordCond(), st.schemaCond()},
		Ops:   ops,
		Audit: [][]byte{entry},
	}
	res, err := store.Apply(ctx, txn)
	if err != nil {
		return fmt.Errorf("records: delete: %w", err)
	}
	switch {
	case res.Err != nil:
		return fmt.Errorf("records: delete: %w", res.Err)
	case res.FailedCond == 1:
		return errStale // the schema changed (or was not current here)
	case !res.Applied:
		return staleIf(c, ErrVersion) // the record changed since it was read
	}
	return nil
}

// Patch changes some fields of a record (JSON merge patch: a field given
// replaces, a null removes; subject and attributes replace when given),
// as a new version. ifMatch as in Replace; without it, the version read is
// required, so a concurrent change is ErrVersion rather than lost. A
// field the caller reads masked, sent back in the masked form it read,
// keeps its stored value (keepUnread).
func (s *Service) Patch(ctx context.Context, caller audit.Principal, tenant, collection, id string, in Input, subjectSet, attributesSet bool, ifMatch uint64) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	v, err := s.sight(ctx, caller, tenant, false)
	if err != nil {
		return Record{}, err
	}
	return attempt(func(c raftstore.Consistency) (Record, error) {
		st, cur, err := s.readStored(ctx, c, caller, tenant, collection, id)
		if err != nil {
			return Record{}, err
		}
		rec, err := s.write(ctx, c, caller, &st, patched(cur, keepUnread(in, cur, st.sc, v, false), subjectSet, attributesSet), cur, ifMatch)
		if err != nil {
			return Record{}, err
		}
		return shown(rec, st.sc, v), nil
	})
}

// patched is cur with the patch in applied.
func patched(cur Record, in Input, subjectSet, attributesSet bool) Input {
	merged := Input{Subject: cur.Subject, Attributes: cur.Attributes, Fields: map[string]json.RawMessage{}}
	for k, v := range cur.Fields {
		merged.Fields[k] = v
	}
	for k, v := range in.Fields {
		if string(v) == "null" {
			delete(merged.Fields, k)
			continue
		}
		merged.Fields[k] = v
	}
	if subjectSet {
		merged.Subject = in.Subject
	}
	if attributesSet {
		merged.Attributes = in.Attributes
	}
	return merged
}
