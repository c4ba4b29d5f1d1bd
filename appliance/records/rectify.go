package records

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// Rectify patches fields of the record id of collection as a
// data-subject rectification: the record must be subject's (ErrNotFound
// otherwise, as for a record the caller cannot see), and the patch is
// Patch's (a JSON merge patch of the fields, conditioned on the version
// read, audited as any record update). It returns the new version. The
// requests service calls it (requests.Rectifier); records keep no earlier
// versions, so the old values are gone once it commits.
func (s *Service) Rectify(ctx context.Context, caller audit.Principal, tenant, subject, collection, id string, fields map[string]json.RawMessage) (uint64, error) {
	if !validID(id) || subject == "" {
		return 0, ErrNotFound
	}
	_, cur, err := s.readStored(ctx, raftstore.Linearizable, caller, tenant, collection, id)
	if err != nil {
		return 0, err
	}
	if cur.Subject != subject {
		return 0, fmt.Errorf("records: rectify %s/%s: not the subject's: %w", collection, id, ErrNotFound)
	}
	rec, err := s.Patch(ctx, caller, tenant, collection, id, Input{Fields: fields}, false, false, cur.Version)
	if err != nil {
		return 0, err
	}
	return rec.Version, nil
}
