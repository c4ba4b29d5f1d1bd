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
// Paths are relative to the tenant's bucket: the service holds only
// tenants.Stores, and every read and write goes through the tenant's
// scoped store (tenants.Scoped), which adds the tenant's bucket, accepts
// audit appends only to the tenant's own chain and conditions every write
// on the tenant existing. Nothing here can name another tenant's data.
//
//	records/<collection>        <id> -> envelope (JSON: subject, attributes,
//	                            versions, times, sealed fields)
//	index/<collection>/<field>  <hmac 32> <id> -> ""
//	subjects/<subject>          <collection> 0x00 <id> -> ""
//
// Writes are audited in the tenant's chain in the same transaction; reads
// of pii or sensitive fields are audited too: one entry per read, written
// through the node's audit.Batcher, which commits the entries of concurrent
// reads together in one transaction (the batcher is infrastructure over
// the raw store, since one of its transactions may carry several tenants'
// entries; the service hands it entries for the tenant being read only,
// for that tenant's chain). A read is answered only once its entry is
// committed; if the entry cannot be written, the read fails.
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
package records

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Limits.
const (
	maxValueBytes = 64 << 10
	maxAttributes = 16
	maxAttrLen    = 128
	maxIDLen      = 64
	MaxListLimit  = 500
)

// Errors.
var (
	ErrNotFound = errors.New("records: no such record")
	ErrExists   = errors.New("records: a record with this id exists")
	// ErrIntegrity: a stored value does not open under its place: altered
	// or moved. It is never served.
	ErrIntegrity = errors.New("records: a stored value failed its integrity check")
	// ErrVersion: If-Match named another version.
	ErrVersion = errors.New("records: the record is at another version")
)

// FieldError is an invalid part of a record; Field is its JSON path.
type FieldError struct{ Field, Reason string }

func (e *FieldError) Error() string { return "records: " + e.Field + " " + e.Reason }

// Record is a record as the API reads and writes it.
type Record struct {
	ID            string                     `json:"id"`
	Collection    string                     `json:"collection"`
	Subject       string                     `json:"subject,omitempty"`
	Attributes    map[string]string          `json:"attributes,omitempty"`
	Fields        map[string]json.RawMessage `json:"fields"`
	Version       uint64                     `json:"version"`
	SchemaVersion uint64                     `json:"schema_version"`
	CreatedAt     time.Time                  `json:"created_at"`
	UpdatedAt     time.Time                  `json:"updated_at"`
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
}

// Keys is the part of the keyring records use; *keyring.Hierarchy
// implements it.
type Keys interface {
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	IndexKey(ctx context.Context, tenant string) ([]byte, error)
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
	stores  *tenants.Stores // the only storage: one tenant's at a time
	keys    Keys
	schemas Schemas
	now     func() time.Time
	reads   *audit.Batcher // writes the entries of audited reads; nil: the tenant's store does, one transaction each
	cache   schemaCache
}

// Option varies a Service.
type Option func(*Service)

// WithReadAudit has the service write the audit entries of reads through
// b, a batcher over the replicated store that its owner closes (the node
// shares one per node): concurrent reads, of any tenant, share its
// transactions. Without it each read's entry is a transaction of its own
// through the tenant's scoped store.
func WithReadAudit(b *audit.Batcher) Option { return func(s *Service) { s.reads = b } }

// New makes the service over stores, the tenant-scoped storage (now nil:
// time.Now).
func New(stores *tenants.Stores, keys Keys, schemas Schemas, now func() time.Time, opts ...Option) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{stores: stores, keys: keys, schemas: schemas, now: now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Paths, relative to the tenant's bucket (tenants.Scoped adds it).

func recordsPath(collection string) [][]byte { return raftstore.Path("records", collection) }

func indexPath(collection, field string) [][]byte {
	return raftstore.Path("index", collection, field)
}

func subjectPath(subject string) [][]byte { return raftstore.Path("subjects", subject) }

// subjectKey is the key of a record in its subject's bucket.
func subjectKey(collection, id string) []byte { return []byte(collection + "\x00" + id) }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "r" + strings.ToLower(b32.EncodeToString(b[:])), nil
}

// validID: record ids and subjects are 1 to 64 of a-z A-Z 0-9 . _ - : (no
// separators the layout uses).
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether s can be a record id.
func ValidID(s string) bool { return validID(s) }

// Input is a record to write.
type Input struct {
	ID         string
	Subject    string
	Attributes map[string]string
	Fields     map[string]json.RawMessage
}

// checked is a validated field value: its canonical JSON and, for indexed
// fields, its normalized form.
type checked struct {
	json    []byte
	indexed []byte
}

// validate checks fields against the schema and returns them canonical.
func validate(sc *collections.Schema, in *Input) (map[string]checked, error) {
	if sc.SubjectRequired && in.Subject == "" {
		return nil, &FieldError{"subject", "is required in this collection"}
	}
	if in.Subject != "" && !validID(in.Subject) {
		return nil, &FieldError{"subject", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'"}
	}
	if len(in.Attributes) > maxAttributes {
		return nil, &FieldError{"attributes", fmt.Sprintf("must have at most %d entries", maxAttributes)}
	}
	for k, v := range in.Attributes {
		if !collections.ValidName(k) || len(v) > maxAttrLen || !utf8.ValidString(v) {
			return nil, &FieldError{"attributes." + k, "must be a name of a-z, 0-9 and _ with a value of at most 128 bytes"}
		}
	}
	defs := map[string]collections.Field{}
	for _, f := range sc.Fields {
		defs[f.Name] = f
	}
	for name := range in.Fields {
		if _, ok := defs[name]; !ok {
			return nil, &FieldError{"fields." + name, "is not a field of the collection"}
		}
	}
	out := map[string]checked{}
	for _, f := range sc.Fields {
		raw, ok := in.Fields[f.Name]
		if !ok || string(raw) == "null" {
			if f.Required {
				return nil, &FieldError{"fields." + f.Name, "is required"}
			}
			continue
		}
		at := "fields." + f.Name
		if len(raw) > maxValueBytes {
			return nil, &FieldError{at, "is larger than 64 KiB"}
		}
		c, err := checkValue(f, raw)
		if err != nil {
			return nil, &FieldError{at, err.Error()}
		}
		out[f.Name] = c
	}
	return out, nil
}

func checkValue(f collections.Field, raw json.RawMessage) (checked, error) {
	var c checked
	switch f.Type {
	case collections.TypeString, collections.TypeEnum:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return c, errors.New("must be a string")
		}
		if !utf8.ValidString(s) {
			return c, errors.New("must be valid UTF-8")
		}
		if f.Type == collections.TypeEnum && !contains(f.Values, s) {
			return c, fmt.Errorf("must be one of %s", strings.Join(f.Values, ", "))
		}
		c.json, _ = json.Marshal(s)
		c.indexed = []byte(strings.ToLower(strings.TrimSpace(s)))
	case collections.TypeNumber:
		var n float64
		if json.Unmarshal(raw, &n) != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return c, errors.New("must be a number")
		}
		c.json, _ = json.Marshal(n)
		c.indexed = c.json
	case collections.TypeBool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return c, errors.New("must be true or false")
		}
		c.json, _ = json.Marshal(b)
		c.indexed = c.json
	case collections.TypeTime:
		var s string
		t, err := time.Time{}, error(nil)
		if json.Unmarshal(raw, &s) == nil {
			t, err = time.Parse(time.RFC3339Nano, s)
		} else {
			err = errors.New("not a string")
		}
		if err != nil {
			return c, errors.New("must be an RFC 3339 time")
		}
		c.json, _ = json.Marshal(t.UTC().Format(time.RFC3339Nano))
		c.indexed = c.json
	case collections.TypeJSON:
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&v); err != nil {
			return c, errors.New("must be JSON")
		}
		if depth(raw) > maxJSONDepth {
			return c, fmt.Errorf("must nest at most %d levels", maxJSONDepth)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return c, errors.New("must be JSON")
		}
		c.json = buf.Bytes()
	}
	return c, nil
}

// maxJSONDepth bounds the nesting of json fields.
const maxJSONDepth = 32

// depth is the deepest nesting of objects and arrays in valid JSON.
func depth(raw []byte) int {
	d, maxd, inString, escaped := 0, 0, false, false
	for _, b := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '{' || b == '[':
			d++
			maxd = max(maxd, d)
		case b == '}' || b == ']':
			d--
		}
	}
	return maxd
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// token is the blind-index token of a normalized value.
func token(key []byte, collection, field string, normalized []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(collection))
	m.Write([]byte{0})
	m.Write([]byte(field))
	m.Write([]byte{0})
	m.Write(normalized)
	return m.Sum(nil)
}

func place(tenant, collection, id, field string, version uint64) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: collection, RecordID: id, Field: field, Version: version}
}

// sealAll seals values for the record at version and returns the envelope
// fields and the index-entry puts.
func (s *Service) sealAll(ctx context.Context, tenant, collection, id string, version uint64, sc *collections.Schema, values map[string]checked, key *keyring.Key) (map[string][]byte, []raftstore.Op, error) {
	sealed := map[string][]byte{}
	var ops []raftstore.Op
	var ikey []byte
	for _, f := range sc.Fields {
		v, ok := values[f.Name]
		if !ok {
			continue
		}
		ct, err := keyring.Seal(key, place(tenant, collection, id, f.Name, version), v.json)
		if err != nil {
			return nil, nil, err
		}
		sealed[f.Name] = ct
		if f.Index && v.indexed != nil {
			if ikey == nil {
				if ikey, err = s.keys.IndexKey(ctx, tenant); err != nil {
					return nil, nil, err
				}
			}
			k := append(token(ikey, collection, f.Name, v.indexed), []byte(id)...)
			ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: indexPath(collection, f.Name), Key: k, Value: []byte{}})
		}
	}
	return sealed, ops, nil
}

// indexDeletes are the deletes of a stored record's index entries.
func (s *Service) indexDeletes(ctx context.Context, tenant, collection, id string, sc *collections.Schema, rec Record) ([]raftstore.Op, error) {
	var ops []raftstore.Op
	var ikey []byte
	for _, f := range sc.Fields {
		raw, ok := rec.Fields[f.Name]
		if !f.Index || !ok {
			continue
		}
		c, err := checkValue(f, raw)
		if err != nil || c.indexed == nil {
			continue
		}
		if ikey == nil {
			if ikey, err = s.keys.IndexKey(ctx, tenant); err != nil {
				return nil, err
			}
		}
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: indexPath(collection, f.Name), Key: append(token(ikey, collection, f.Name, c.indexed), []byte(id)...)})
	}
	return ops, nil
}

// openStored opens the record st read.
func (s *Service) openStored(ctx context.Context, st *state) (Record, error) {
	key, err := s.keys.DataKey(ctx, st.tenant, st.env.Subject)
	if err != nil {
		return Record{}, err
	}
	return s.open(st.tenant, st.col, st.id, st.env, key, nil)
}

// Replace writes a new version of a record (all its fields, subject and
// attributes). ifMatch, when non-zero, must be its current version
// (ErrVersion otherwise); a concurrent change between read and write is
// ErrVersion too.
func (s *Service) Replace(ctx context.Context, caller audit.Caller, tenant, collection, id string, in Input, ifMatch uint64) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	return attempt(func(c raftstore.Consistency) (Record, error) {
		st, old, err := s.readStored(ctx, c, caller, tenant, collection, id)
		if err != nil {
			return Record{}, err
		}
		return s.write(ctx, c, caller, &st, in, old, ifMatch)
	})
}

// readStored reads and opens a stored record at consistency c (see
// state.go). An integrity failure found by a linearizable read is
// audited (failed).
func (s *Service) readStored(ctx context.Context, c raftstore.Consistency, caller audit.Caller, tenant, collection, id string) (state, Record, error) {
	st, err := s.read(ctx, c, tenant, collection, id)
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
func (s *Service) write(ctx context.Context, c raftstore.Consistency, caller audit.Caller, st *state, in Input, old Record, ifMatch uint64) (Record, error) {
	tenant, collection, id, sc, env := st.tenant, st.col, st.id, st.sc, st.env
	in.ID = id
	values, err := validate(sc, &in)
	if err != nil {
		return Record{}, staleIf(c, err)
	}
	if ifMatch != 0 && ifMatch != env.Version {
		return Record{}, staleIf(c, ErrVersion)
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
	store := s.stores.Of(tenant)
	entry, err := audit.Record(store.Chain(), caller.Entry(next.UpdatedAt, "record.update", "record:"+collection+"/"+id, audit.OutcomeSuccess,
		map[string]string{"version": fmt.Sprint(next.Version)}))
	if err != nil {
		return Record{}, err
	}
	txn := &raftstore.Txn{
		Conds:   []raftstore.Cond{st.recordCond(), st.schemaCond()},
		Ops:     ops,
		Appends: []raftstore.Append{entry},
	}
	res, err := store.Apply(ctx, txn)
	if err != nil {
		return Record{}, fmt.Errorf("records: replace: %w", err)
	}
	switch {
	case res.Err != nil:
		return Record{}, fmt.Errorf("records: replace: %w", res.Err)
	case tenants.TenantGone(txn, res):
		return Record{}, fmt.Errorf("records: %w", tenants.ErrNotFound)
	case res.FailedCond == 1:
		return Record{}, errStale // the schema changed (or was not current here)
	case !res.Applied:
		return Record{}, staleIf(c, ErrVersion) // the record changed since it was read
	}
	return written(collection, id, next, values), nil
}

// Create stores a new record (version 1).
func (s *Service) Create(ctx context.Context, caller audit.Caller, tenant, collection string, in Input) (Record, error) {
	if in.ID == "" {
		var err error
		if in.ID, err = newID(); err != nil {
			return Record{}, err
		}
	} else if !validID(in.ID) {
		return Record{}, &FieldError{"id", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'"}
	}
	return attempt(func(c raftstore.Consistency) (Record, error) { return s.create(ctx, c, caller, tenant, collection, in) })
}

// create is one attempt of Create, reading the schema at consistency c.
func (s *Service) create(ctx context.Context, c raftstore.Consistency, caller audit.Caller, tenant, collection string, in Input) (Record, error) {
	st, err := s.read(ctx, c, tenant, collection, "")
	if err != nil {
		return Record{}, staleIf(c, err)
	}
	sc := st.sc
	values, err := validate(sc, &in)
	if err != nil {
		return Record{}, staleIf(c, err)
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
	val, err := json.Marshal(env)
	if err != nil {
		return Record{}, err
	}
	ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: recordsPath(collection), Key: []byte(in.ID), Value: val})
	if in.Subject != "" {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: subjectPath(in.Subject), Key: subjectKey(collection, in.ID), Value: []byte{}})
	}
	store := s.stores.Of(tenant)
	entry, err := audit.Record(store.Chain(), caller.Entry(now, "record.create", "record:"+collection+"/"+in.ID, audit.OutcomeSuccess, nil))
	if err != nil {
		return Record{}, err
	}
	// The scoped store adds the condition that the tenant exists.
	txn := &raftstore.Txn{
		Conds: []raftstore.Cond{
			{Kind: raftstore.CondAbsent, Bucket: recordsPath(collection), Key: []byte(in.ID)},
			st.schemaCond(),
		},
		Ops:     ops,
		Appends: []raftstore.Append{entry},
	}
	res, err := store.Apply(ctx, txn)
	if err != nil {
		return Record{}, fmt.Errorf("records: create: %w", err)
	}
	switch {
	case res.Err != nil:
		return Record{}, fmt.Errorf("records: create: %w", res.Err)
	case tenants.TenantGone(txn, res):
		return Record{}, fmt.Errorf("records: %w", tenants.ErrNotFound)
	case res.FailedCond == 1:
		return Record{}, errStale // the schema changed (or was not current here)
	case !res.Applied:
		return Record{}, ErrExists
	}
	return written(collection, in.ID, env, values), nil
}

// written is the record just stored as env with values: what open would
// return, without decrypting what was just encrypted.
func written(collection, id string, env envelope, values map[string]checked) Record {
	r := Record{ID: id, Collection: collection, Subject: env.Subject, Attributes: env.Attributes, Version: env.Version,
		SchemaVersion: env.SchemaVersion, CreatedAt: env.CreatedAt, UpdatedAt: env.UpdatedAt, Fields: make(map[string]json.RawMessage, len(values))}
	for name, v := range values {
		r.Fields[name] = v.json
	}
	return r
}

// open decrypts an envelope: every value must open (an *integrityError
// naming those that do not otherwise).
func (s *Service) open(tenant, collection, id string, env envelope, key *keyring.Key, mask map[string]bool) (Record, error) {
	r, failed := openFields(tenant, collection, id, env, key, mask)
	if len(failed) > 0 {
		return Record{}, &integrityError{collection: collection, id: id, fields: failed}
	}
	return r, nil
}

// openFields decrypts what of an envelope opens: the record with those
// fields, and the names of the fields whose values do not open, sorted.
func openFields(tenant, collection, id string, env envelope, key *keyring.Key, mask map[string]bool) (Record, []string) {
	r := Record{ID: id, Collection: collection, Subject: env.Subject, Attributes: env.Attributes, Version: env.Version,
		SchemaVersion: env.SchemaVersion, CreatedAt: env.CreatedAt, UpdatedAt: env.UpdatedAt, Fields: map[string]json.RawMessage{}}
	var failed []string
	for name, ct := range env.Sealed {
		pt, err := keyring.Open(key, place(tenant, collection, id, name, env.Version), ct)
		if err != nil {
			failed = append(failed, name)
			continue
		}
		if mask[name] {
			pt = maskJSON(pt)
		}
		r.Fields[name] = pt
	}
	slices.Sort(failed)
	return r, failed
}

// Get reads a record. With masked, pii and sensitive string fields come
// back masked (j***@e***.com). Reading pii or sensitive fields is audited,
// and the record is returned only once its entry is committed.
func (s *Service) Get(ctx context.Context, caller audit.Caller, tenant, collection, id string, masked bool) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	return attempt(func(c raftstore.Consistency) (Record, error) {
		return s.get(ctx, c, caller, tenant, collection, id, masked)
	})
}

// get is one attempt of Get, reading at consistency c.
func (s *Service) get(ctx context.Context, c raftstore.Consistency, caller audit.Caller, tenant, collection, id string, masked bool) (Record, error) {
	st, err := s.read(ctx, c, tenant, collection, id)
	if err != nil {
		return Record{}, staleIf(c, err)
	}
	if !st.found {
		return Record{}, staleIf(c, ErrNotFound)
	}
	if st.broken {
		return Record{}, s.failed(ctx, c, caller, &st, st.brokenErr())
	}
	mask := map[string]bool{}
	sensitive := false
	for _, f := range st.sc.Fields {
		if f.Classification != collections.ClassInternal {
			if _, ok := st.env.Sealed[f.Name]; ok {
				sensitive = true
				mask[f.Name] = masked
			}
		}
	}
	if !sensitive && c == raftstore.Stale {
		// Nothing to audit: no transaction proves this node's state
		// current (nor that the schema still says nothing is sensitive).
		return Record{}, errStale
	}
	key, err := s.keys.DataKey(ctx, tenant, st.env.Subject)
	if err != nil {
		return Record{}, err
	}
	rec, err := s.open(tenant, collection, id, st.env, key, mask)
	if err != nil {
		return Record{}, s.failed(ctx, c, caller, &st, err)
	}
	if sensitive {
		// Answered only once on record: the entry's transaction is
		// committed (shared with concurrent reads through the batcher).
		// From local state, the entry is written only if the schema and
		// record are still as read (state.go).
		e := caller.Entry(s.now().UTC(), "record.read", "record:"+collection+"/"+id, audit.OutcomeSuccess, map[string]string{"masked": fmt.Sprint(masked)})
		var conds []raftstore.Cond
		if c == raftstore.Stale {
			conds = []raftstore.Cond{st.schemaCond(), st.recordCond()}
		}
		if err := s.auditRead(ctx, tenant, e, conds); err != nil {
			return Record{}, err
		}
	}
	return rec, nil
}

// auditRead writes the entry e of a read of tenant's data to the tenant's
// chain, on conditions (paths relative to the tenant) that what the read
// saw is still current, and returns once it is committed; errStale when
// a condition does not hold. Through the read-audit batcher when the
// service has one: it holds the replicated store, so the conditions are
// handed to it below the tenant's bucket (tenants.ScopeOf, this tenant's
// only), with the entry for this tenant's chain; otherwise through the
// tenant's scoped store.
func (s *Service) auditRead(ctx context.Context, tenant string, e audit.Entry, conds []raftstore.Cond) error {
	store := s.stores.Of(tenant)
	if s.reads != nil {
		sc := tenants.ScopeOf(tenant)
		abs := make([]raftstore.Cond, len(conds))
		for i, c := range conds {
			c.Bucket = sc.Path(names(c.Bucket)...)
			abs[i] = c
		}
		err := s.reads.AppendIf(ctx, store.Chain(), e, abs...)
		switch {
		case errors.Is(err, audit.ErrCondition):
			return errStale
		case err != nil:
			return fmt.Errorf("records: audit read: %w", err)
		}
		return nil
	}
	a, err := audit.Record(store.Chain(), e)
	if err != nil {
		return err
	}
	txn := &raftstore.Txn{Conds: conds, Appends: []raftstore.Append{a}}
	res, err := store.Apply(ctx, txn)
	switch {
	case err != nil:
		return fmt.Errorf("records: audit read: %w", err)
	case res.Err != nil:
		return fmt.Errorf("records: audit read: %w", res.Err)
	case tenants.TenantGone(txn, res):
		return fmt.Errorf("records: %w", tenants.ErrNotFound)
	case !res.Applied:
		return errStale // the schema or record changed since it was read
	}
	return nil
}

// names is a path's names.
func names(p [][]byte) []string {
	out := make([]string, len(p))
	for i, b := range p {
		out[i] = string(b)
	}
	return out
}

// Delete removes a record with its subject and index entries — also a
// record whose stored values do not open (an integrity failure), whose
// index entries are then found by a scan (deleteIndex).
func (s *Service) Delete(ctx context.Context, caller audit.Caller, tenant, collection, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	_, err := attempt(func(c raftstore.Consistency) (struct{}, error) {
		return struct{}{}, s.delete(ctx, c, caller, tenant, collection, id)
	})
	return err
}

// delete is one attempt of Delete, reading at consistency c.
func (s *Service) delete(ctx context.Context, c raftstore.Consistency, caller audit.Caller, tenant, collection, id string) error {
	st, err := s.read(ctx, c, tenant, collection, id)
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
	ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: recordsPath(collection), Key: []byte(id)})
	if sub := st.env.Subject; sub != "" && validID(sub) {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: subjectPath(sub), Key: subjectKey(collection, id)})
	}
	store := s.stores.Of(tenant)
	entry, err := audit.Record(store.Chain(), caller.Entry(s.now().UTC(), "record.delete", "record:"+collection+"/"+id, audit.OutcomeSuccess, details))
	if err != nil {
		return err
	}
	txn := &raftstore.Txn{
		Conds:   []raftstore.Cond{st.recordCond(), st.schemaCond()},
		Ops:     ops,
		Appends: []raftstore.Append{entry},
	}
	res, err := store.Apply(ctx, txn)
	if err != nil {
		return fmt.Errorf("records: delete: %w", err)
	}
	switch {
	case res.Err != nil:
		return fmt.Errorf("records: delete: %w", res.Err)
	case tenants.TenantGone(txn, res):
		return fmt.Errorf("records: %w", tenants.ErrNotFound)
	case res.FailedCond == 1:
		return errStale // the schema changed (or was not current here)
	case !res.Applied:
		return staleIf(c, ErrVersion) // the record changed since it was read
	}
	return nil
}

// Find lists the ids of records whose indexed field equals value, after
// id after, at most limit; next is the last id when more may follow.
func (s *Service) Find(ctx context.Context, tenant, collection, field string, value json.RawMessage, after string, limit int) ([]string, string, error) {
	st, err := s.read(ctx, raftstore.Linearizable, tenant, collection, "")
	if err != nil {
		return nil, "", err
	}
	sc := st.sc
	var def *collections.Field
	for i := range sc.Fields {
		if sc.Fields[i].Name == field {
			def = &sc.Fields[i]
		}
	}
	if def == nil || !def.Index {
		return nil, "", &FieldError{"field", "must be a field of the collection with a blind index"}
	}
	c, err := checkValue(*def, value)
	if err != nil {
		return nil, "", &FieldError{"value", err.Error()}
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return nil, "", err
	}
	prefix := token(ikey, collection, field, c.indexed)
	start := append(bytes.Clone(prefix), []byte(after)...)
	ids := []string{}
	next := ""
	// The schema read above was linearizable: a local read suffices now.
	err = s.stores.Of(tenant).View(ctx, raftstore.Stale, func(r tenants.Read) error {
		r.Scan(indexPath(collection, field), start, 0, func(k, _ []byte, _ uint64) bool {
			if !bytes.HasPrefix(k, prefix) {
				return false
			}
			if len(ids) == limit {
				next = ids[len(ids)-1]
				return false
			}
			ids = append(ids, string(k[len(prefix):]))
			return true
		})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("records: find: %w", err)
	}
	return ids, next, nil
}

// maskJSON masks a JSON string value: the first character of each part
// between '@' and '.', the rest as '*' (jane@example.com → j***@e******.c**);
// other values become null.
func maskJSON(b []byte) []byte {
	var s string
	if json.Unmarshal(b, &s) != nil {
		return []byte("null")
	}
	var out strings.Builder
	first := true
	for _, r := range s {
		switch {
		case r == '@' || r == '.' || r == ' ':
			out.WriteRune(r)
			first = true
		case first:
			out.WriteRune(r)
			first = false
		default:
			out.WriteByte('*')
		}
	}
	m, _ := json.Marshal(out.String())
	return m
}

// Held is one thing a tenant holds about a subject.
type Held struct {
	Collection string `json:"collection"`
	ID         string `json:"id"`
}

// Subject lists the records of subject (the basis of data-subject
// requests), by collection and id.
func (s *Service) Subject(ctx context.Context, tenant, subject string) ([]Held, error) {
	if !validID(subject) {
		return nil, ErrNotFound
	}
	out := []Held{}
	err := s.stores.Of(tenant).View(ctx, raftstore.Linearizable, func(r tenants.Read) error {
		r.Scan(subjectPath(subject), nil, 0, func(k, _ []byte, _ uint64) bool {
			if c, id, ok := bytes.Cut(k, []byte{0}); ok {
				out = append(out, Held{Collection: string(c), ID: string(id)})
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("records: subject: %w", err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// listScan bounds the records one List call examines.
const listScan = 10000

// List returns the ids of the collection's records after id after, at most
// limit, keeping those whose attribute attr equals value when attr is set
// (attributes are stored in the clear: they are for access decisions, not
// personal data). next is where to continue ("" at the end).
func (s *Service) List(ctx context.Context, tenant, collection, attr, value, after string, limit int) ([]string, string, error) {
	if _, err := s.read(ctx, raftstore.Linearizable, tenant, collection, ""); err != nil {
		return nil, "", err
	}
	ids := []string{}
	next := ""
	var start []byte
	if after != "" {
		start = []byte(after)
	}
	// The schema read above was linearizable: a local read suffices now.
	err := s.stores.Of(tenant).View(ctx, raftstore.Stale, func(r tenants.Read) error {
		scanned := 0
		r.Scan(recordsPath(collection), start, 0, func(k, v []byte, _ uint64) bool {
			scanned++
			if len(ids) == limit || scanned > listScan {
				next = string(k)
				if len(ids) > 0 && len(ids) == limit {
					next = ids[len(ids)-1]
				}
				return false
			}
			if attr != "" {
				var env struct {
					Attributes map[string]string `json:"attributes"`
				}
				if json.Unmarshal(v, &env) != nil || env.Attributes[attr] != value {
					return true
				}
			}
			ids = append(ids, string(k))
			return true
		})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("records: list: %w", err)
	}
	return ids, next, nil
}

// Patch changes some fields of a record (JSON merge patch: a field given
// replaces, a null removes; subject and attributes replace when given),
// as a new version. ifMatch as in Replace; without it, the version read is
// required, so a concurrent change is ErrVersion rather than lost.
func (s *Service) Patch(ctx context.Context, caller audit.Caller, tenant, collection, id string, in Input, subjectSet, attributesSet bool, ifMatch uint64) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	return attempt(func(c raftstore.Consistency) (Record, error) {
		st, cur, err := s.readStored(ctx, c, caller, tenant, collection, id)
		if err != nil {
			return Record{}, err
		}
		return s.write(ctx, c, caller, &st, patched(cur, in, subjectSet, attributesSet), cur, ifMatch)
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
