package erasure

import (
	"context"

	"github.com/custos/custos/appliance/audit"
)

// ShredOnly runs only an erasure's first transaction — the key shredded,
// the ledger's entry begun — leaving things as an erasure that crashed
// right after it does.
func (s *Service) ShredOnly(ctx context.Context, caller audit.Principal, tenant, subject, id string) error {
	_, err := s.shred(ctx, caller, tenant, subject, id, false)
	return err
}
