package records

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

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

// openStored opens the record st read.
func (s *Service) openStored(ctx context.Context, st *state) (Record, error) {
	key, err := s.keys.DataKey(ctx, st.tenant, st.env.Subject)
	if err != nil {
		return Record{}, err
	}
	return s.open(st.tenant, st.col, st.id, st.env, key)
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
func (s *Service) open(tenant, collection, id string, env envelope, key *keyring.Key) (Record, error) {
	r, failed := openFields(tenant, collection, id, env, key)
	if len(failed) > 0 {
		return Record{}, &integrityError{collection: collection, id: id, fields: failed}
	}
	return r, nil
}

// openFields decrypts what of an envelope opens: the record with those
// fields, and the names of the fields whose values do not open, sorted.
func openFields(tenant, collection, id string, env envelope, key *keyring.Key) (Record, []string) {
	r := Record{ID: id, Collection: collection, Subject: env.Subject, Attributes: env.Attributes, Version: env.Version,
		SchemaVersion: env.SchemaVersion, CreatedAt: env.CreatedAt, UpdatedAt: env.UpdatedAt, Fields: map[string]json.RawMessage{}}
	var failed []string
	for name, ct := range env.Sealed {
		pt, err := keyring.Open(key, place(tenant, collection, id, name, env.Version), ct)
		if err != nil {
			failed = append(failed, name)
			continue
		}
		r.Fields[name] = pt
	}
	slices.Sort(failed)
	return r, failed
}
