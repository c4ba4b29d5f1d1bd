package collections

import (
	"encoding/json"

	"github.com/custos/custos/raftstore"
)

// CurrentKey is where the current schema of collection name is stored,
// relative to the tenant's bucket (as a tenancy.Scope takes paths): for
// readers that read it inside their own read transaction of the tenant's
// store with the data it governs, and condition their writes on its
// version (the store revision that wrote it, which every change of the
// schema — and a delete and re-create of the tenant — changes). Records
// does.
func (s *Service) CurrentKey(name string) (bucket [][]byte, key []byte) {
	return raftstore.Path(pathNames(currentPath)...), []byte(name) // a fresh copy: currentPath is shared

}

// Decode parses a schema in its stored form (as read at CurrentKey).
func (s *Service) Decode(raw []byte) (Schema, error) {
	var sc Schema
	err := json.Unmarshal(raw, &sc)
	return sc, err
}
