package records

import (
	"context"
	"errors"
	"fmt"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/visibility"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Get reads a record, as caller reads records: each field as the
// principal's sight (appliance/identity/visibility) reads its
// classification — the value, its masked form (listed in Masked) or
// nothing (the schema's fields of that classification listed in
// Withheld). With masked, pii and sensitive values are masked further
// (j***@e******.c**); masked never unmasks. Reading pii or sensitive
// fields is audited — the entry records the request's masked and how the
// reader read each classification (sight), so who saw a value in clear
// can be told later, whatever roles become — and the record is returned
// only once its entry is committed.
func (s *Service) Get(ctx context.Context, caller audit.Principal, tenant, collection, id string, masked bool) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	v, err := s.sight(ctx, caller, tenant, masked)
	if err != nil {
		return Record{}, err
	}
	return attempt(func(c raftstore.Consistency) (Record, error) {
		return s.get(ctx, c, caller, tenant, collection, id, masked, v)
	})
}

// get is one attempt of Get, reading at consistency c; the record is
// shown as v reads it.
func (s *Service) get(ctx context.Context, c raftstore.Consistency, caller audit.Principal, tenant, collection, id string, masked bool, v visibility.Sight) (Record, error) {
	st, err := s.read(ctx, c, caller, tenant, collection, id)
	if err != nil {
		return Record{}, staleIf(c, err)
	}
	if !st.found {
		return Record{}, staleIf(c, ErrNotFound)
	}
	if st.broken {
		return Record{}, s.failed(ctx, c, caller, &st, st.brokenErr())
	}
	if err := s.requireConsent(ctx, tenant, st.env.Subject, st.sc, true); err != nil {
		return Record{}, err
	}
	sensitive := false
	for _, f := range st.sc.Fields {
		if f.Classification != collections.ClassInternal {
			if _, ok := st.env.Sealed[f.Name]; ok {
				sensitive = true
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
	rec, err := s.open(tenant, collection, id, st.env, key)
	if err != nil {
		return Record{}, s.failed(ctx, c, caller, &st, err)
	}
	rec = shown(rec, st.sc, v)
	if sensitive {
		// Answered only once on record: the entry's transaction is
		// committed (shared with concurrent reads through the batcher).
		// From local state, the entry is written only if the schema and
		// record are still as read (state.go).
		e := caller.Entry(s.now().UTC(), "record.read", "record:"+collection+"/"+id, audit.OutcomeSuccess, map[string]string{"masked": fmt.Sprint(masked), "sight": v.String()})
		var conds []raftstore.Cond
		if c == raftstore.Stale {
			conds = []raftstore.Cond{st.schemaCond(), st.recordCond()}
		}
		if err := s.auditRead(ctx, st.store, e, conds); err != nil {
			return Record{}, err
		}
	}
	return rec, nil
}

// auditRead writes the entry e of a read of store's tenant's data to the
// tenant's chain, on conditions (paths relative to the tenant) that what
// the read saw is still current, and returns once it is committed;
// errStale when a condition does not hold. Through audit.AppendRead: the
// service's read-audit batcher when it has one, otherwise one transaction
// of its own.
func (s *Service) auditRead(ctx context.Context, store tenancy.Scope, e audit.Entry, conds []raftstore.Cond) error {
	err := audit.AppendRead(ctx, s.reads, store, e, conds...)
	switch {
	case errors.Is(err, audit.ErrCondition):
		return errStale // the schema or record changed since it was read
	case err != nil:
		return fmt.Errorf("records: audit read: %w", err)
	}
	return nil
}
