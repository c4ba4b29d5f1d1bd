package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// exportPage is how many records one read transaction of SubjectRecords
// and CollectionRecords covers: an export streams them, so memory is
// bounded by a page, not by the data's size.
const exportPage = 256

// maxExportKeys bounds the subjects' keys one export keeps at hand.
const maxExportKeys = 1024

// ErrScoped means a principal with attribute scopes asked for something that
// must be whole (a data-subject or tenant export): it would see only
// part of it.
var ErrScoped = errors.New("records: a principal with attribute scopes cannot take a complete copy")

// SubjectRecords calls fn with every record of subject, by collection
// (in name order) then id, each with the current schema of its
// collection, decrypted in full: every field in clear, whatever the
// caller's sight, because it serves a data subject's right of access
// (GDPR art. 15, 20), which the API grants only to holders of
// subjects:export. A caller with attribute scopes is refused
// (ErrScoped): a copy that silently left records out would be a false
// answer to the subject.
//
// The records are read in pages of exportPage (the first page
// linearizably, the rest from this node's state, which that read proved
// current), opened outside the read transactions and handed to fn one at
// a time, so the caller can stream them out. It writes no audit entry:
// the caller audits the export as a whole (appliance/privacy/export's
// entry in the tenant's chain). A stored value that does not open fails
// the whole call (ErrIntegrity).
func (s *Service) SubjectRecords(ctx context.Context, caller audit.Principal, tenant, subject string, fn func(sc *collections.Schema, rec Record) error) error {
	if !validID(subject) {
		return nil
	}
	return s.pages(ctx, caller, tenant, subjectPath(subject), func(k []byte) (string, string, bool) {
		c, id, ok := bytes.Cut(k, []byte{0})
		return string(c), string(id), ok
	}, fn)
}

// CollectionRecords calls fn with every record of collection, by id,
// decrypted in full, as SubjectRecords does for a subject: the tenant-wide
// export at the end of a contract (data return), which the API grants
// only to the tenant's Owner. The same rules: attribute scopes refused,
// pages, no audit entry of its own.
func (s *Service) CollectionRecords(ctx context.Context, caller audit.Principal, tenant, collection string, fn func(sc *collections.Schema, rec Record) error) error {
	return s.pages(ctx, caller, tenant, recordsPath(collection), func(k []byte) (string, string, bool) {
		return collection, string(k), true
	}, fn)
}

// pages reads the records that bucket's keys name (locate: a key's
// collection and id) in pages and hands each, opened, to fn.
func (s *Service) pages(ctx context.Context, caller audit.Principal, tenant string, bucket [][]byte, locate func(k []byte) (col, id string, ok bool), fn func(sc *collections.Schema, rec Record) error) error {
	if len(caller.Scopes) > 0 {
		return ErrScoped
	}
	store := s.scope(caller, tenant)
	type item struct {
		col, id string
		env     envelope
		sc      *collections.Schema
	}
	keys := map[string]*keyring.Key{} // by subject; read once a record needs it (a lookup must not create a key)
	var after []byte
	c := raftstore.Linearizable
	for {
		var page []item
		var perr error
		schemas := map[string]*collections.Schema{}
		err := store.View(ctx, c, func(r tenancy.Read) error {
			r.Scan(bucket, after, 0, func(k, v []byte, _ uint64) bool {
				if after != nil && bytes.Equal(k, after) {
					return true
				}
				after = bytes.Clone(k)
				col, id, ok := locate(k)
				if !ok {
					return true
				}
				it := item{col: col, id: id}
				raw, _, found := r.Get(recordsPath(col), []byte(id))
				if !found {
					return true // deleted between the index and the record: not held
				}
				if json.Unmarshal(raw, &it.env) != nil {
					perr = &integrityError{collection: col, id: id, envelope: true}
					return false
				}
				sc, ok := schemas[col]
				if !ok {
					b, sk := s.schemas.CurrentKey(col)
					rawSchema, ver, found := r.Get(b, sk)
					if !found {
						perr = fmt.Errorf("records: collection %s: %w", col, collections.ErrNotFound)
						return false
					}
					if sc, perr = s.schemaOf(tenant, col, rawSchema, ver); perr != nil {
						return false
					}
					schemas[col] = sc
				}
				it.sc = sc
				page = append(page, it)
				return len(page) < exportPage
			})
			return nil
		})
		if err != nil {
			return fmt.Errorf("records: export read: %w", err)
		}
		if perr != nil {
			return perr
		}
		for _, it := range page {
			key, ok := keys[it.env.Subject]
			if !ok {
				if key, err = s.keys.DataKey(ctx, tenant, it.env.Subject); err != nil {
					return err
				}
				if len(keys) >= maxExportKeys {
					clear(keys) // a tenant-wide export meets many subjects: keep memory bounded
				}
				keys[it.env.Subject] = key
			}
			rec, err := s.open(tenant, it.col, it.id, it.env, key)
			if err != nil {
				return err
			}
			if err := fn(it.sc, rec); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return nil
		}
		c = raftstore.Stale
	}
}
