package records

import (
	"context"
	"fmt"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Exists reports whether the record exists (a linearizable read of its
// envelope's presence; nothing is opened or audited). Blobs use it to link
// an upload to a record.
func (s *Service) Exists(ctx context.Context, tenant, collection, id string) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	var ok bool
	if err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		_, _, ok = r.Get(recordsPath(collection), []byte(id))
		return nil
	}); err != nil {
		return false, fmt.Errorf("records: exists: %w", err)
	}
	return ok, nil
}
