package collections

import (
	"encoding/json"

	"github.com/custos/custos/appliance/tenants"
)

// CurrentKey is where the current schema of collection name is stored:
// for readers that read it inside their own read transaction with the
// data it governs, and condition their writes on its version (the store
// revision that wrote it, which every change of the schema — and a
// delete and re-create of the tenant — changes). Records does.
func (s *Service) CurrentKey(tenant, name string) (bucket [][]byte, key []byte) {
	return tenants.ScopeOf(tenant).Path(pathNames(currentPath)...), []byte(name)
}

// Decode parses a schema in its stored form (as read at CurrentKey).
func (s *Service) Decode(raw []byte) (Schema, error) {
	var sc Schema
	err := json.Unmarshal(raw, &sc)
	return sc, err
}
