package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// # Reads without a read-index round
//
// Every operation reads a collection's schema (and, but for creates, the
// record) before it answers or writes. Reading them linearizably costs a
// read-index round (a quorum heartbeat, on a follower an RPC to the leader
// first) per call, and an API request already pays two for its key and its
// tenant. Most operations do not need one: they end in a replicated
// transaction anyway — the write itself, or the audit entry of a read of
// personal data — and that transaction can carry conditions on the
// versions the operation read (CondVersion on the schema and on the
// record). If it applies, the schema and record were exactly as read when
// it applied, a point after the request began, so the operation is
// linearizable there, as if it had read after a read-index round; a
// version is the store revision that wrote the key, unique and increasing,
// so "same version" means "unchanged", never "changed and changed back".
//
// So an operation first reads this node's local state (raftstore.Stale).
// Anything a lagging state can cause — a schema or record not found, a
// validation failure against an older schema, an If-Match mismatch, a
// condition that does not hold — is errStale, and the operation runs again
// from a linearizable read, exactly as before; a read with nothing to
// audit (no pii or sensitive field) has no transaction to prove it current
// and always reads linearizably. No answer is ever served, and no write
// made, from a state not proven current. The conditions also make writes
// validate against the schema current when they apply, not only when they
// read (before, a schema change between the two went unnoticed).
//
// An integrity failure (a stored value that does not open) is errStale on
// a local read too: it is audited (integrity.go), and a Delete scans the
// index for the record's entries, only once a linearizable read found it.
//
// All of it goes through the tenant's tenancy.Scope: paths relative to the
// tenant's bucket, and the condition that the tenant exists added to every
// transaction (a failure of it is tenancy.ErrNoTenant, which is
// tenants.ErrNotFound).

// consistencies are the attempts of an operation: local state first, then
// linearizable reads — a second one for a schema that changed between a
// linearizable read and the write.
var consistencies = [...]raftstore.Consistency{raftstore.Stale, raftstore.Linearizable, raftstore.Linearizable}

// attempt runs fn at each consistency until it returns anything but
// errStale.
func attempt[T any](fn func(c raftstore.Consistency) (T, error)) (T, error) {
	for _, c := range consistencies {
		v, err := fn(c)
		if !errors.Is(err, errStale) {
			return v, err
		}
	}
	var zero T
	return zero, fmt.Errorf("records: the collection's schema changed during the request: %w", collections.ErrConflict)
}

// staleIf is err, or errStale when c is a local read and a lagging state
// could have caused err. Only for errors before anything was written.
func staleIf(c raftstore.Consistency, err error) error {
	if c != raftstore.Stale || err == nil {
		return err
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, collections.ErrNotFound) || errors.Is(err, ErrVersion) ||
		errors.Is(err, ErrIntegrity) || errors.Is(err, validation.ErrInvalid) {
		return errStale
	}
	return err
}

// state is what one read transaction saw of a collection's schema and a
// record, with their versions.
type state struct {
	sc          *collections.Schema // shared (cached): never modified
	scBucket    [][]byte
	scKey       []byte
	scVersion   uint64
	env         envelope
	broken      bool   // the envelope does not decode (env holds what did)
	version     uint64 // the record's storage version
	found       bool   // the record exists
	tenant, col string
	id          string
	store       tenancy.Scope // the caller's handle on the tenant: what it read through, and writes through
}

// read reads the collection's current schema and, when id is set, the
// record, in one read transaction of the caller's handle on the tenant's
// store at consistency c (a record outside the caller's attribute scope is
// not found). A record whose envelope does not decode is found and
// broken: only Delete takes it, the rest fail with an integrity error
// (brokenErr).
func (s *Service) read(ctx context.Context, c raftstore.Consistency, caller audit.Principal, tenant, collection, id string) (state, error) {
	st := state{tenant: tenant, col: collection, id: id, store: s.scope(caller, tenant)}
	st.scBucket, st.scKey = s.schemas.CurrentKey(collection)
	var rawSchema, rawRecord []byte
	var schemaFound bool
	if err := st.store.View(ctx, c, func(r tenancy.Read) error {
		rawSchema, st.scVersion, schemaFound = r.Get(st.scBucket, st.scKey)
		if id != "" {
			rawRecord, st.version, st.found = r.Get(recordsPath(collection), []byte(id))
		}
		return nil
	}); err != nil {
		return state{}, fmt.Errorf("records: read: %w", err)
	}
	if !schemaFound {
		return state{}, fmt.Errorf("records: collection %s: %w", collection, collections.ErrNotFound)
	}
	sc, err := s.schemaOf(tenant, collection, rawSchema, st.scVersion)
	if err != nil {
		return state{}, err
	}
	st.sc = sc
	if st.found && json.Unmarshal(rawRecord, &st.env) != nil {
		// What decoded stays (json fills what it can: a subject stored
		// as a string survives a version that is not a number).
		st.broken = true
	}
	return st, nil
}

// brokenErr is the integrity error of a broken envelope.
func (st *state) brokenErr() *integrityError {
	return &integrityError{collection: st.col, id: st.id, envelope: true}
}

// schemaCond requires the schema at the version read (its path relative
// to the tenant, as CurrentKey gives it).
func (st *state) schemaCond() raftstore.Cond {
	return raftstore.Cond{Kind: raftstore.CondVersion, Bucket: st.scBucket, Key: st.scKey, Version: st.scVersion}
}

// recordCond requires the record at the version read (absent: 0).
func (st *state) recordCond() raftstore.Cond {
	return raftstore.Cond{Kind: raftstore.CondVersion, Bucket: recordsPath(st.col), Key: []byte(st.id), Version: st.version}
}

// schemaCache keeps decoded schemas by their storage version: a version
// is the revision that wrote the key, so (tenant, collection, version)
// names one content for good. Decoding a schema cost more than opening a
// record's five fields.
type schemaCache struct {
	mu sync.Mutex
	m  map[schemaID]*collections.Schema
}

type schemaID struct {
	tenant, collection string
	version            uint64
}

// maxCachedSchemas bounds the cache; when full it starts over.
const maxCachedSchemas = 4096

func (s *Service) schemaOf(tenant, collection string, raw []byte, version uint64) (*collections.Schema, error) {
	id := schemaID{tenant, collection, version}
	s.cache.mu.Lock()
	sc, ok := s.cache.m[id]
	s.cache.mu.Unlock()
	if ok {
		return sc, nil
	}
	dec, err := s.schemas.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("records: schema of %s: %w", collection, err)
	}
	s.cache.mu.Lock()
	if len(s.cache.m) >= maxCachedSchemas || s.cache.m == nil {
		s.cache.m = map[schemaID]*collections.Schema{}
	}
	s.cache.m[id] = &dec
	s.cache.mu.Unlock()
	return &dec, nil
}
