package audit

import (
	"context"

	"golang.org/x/mod/sumdb/note"
)

// Signer is the cluster's audit key as a note signer: the key, and key
// name, that sign the checkpoints. The privacy artifacts a data subject
// receives (appliance/privacy/receipt: an export's manifest, an erasure's
// receipt) are signed with it, so that `custos audit key` verifies them
// too. ErrCannotSign on a sealed node.
func (s *Service) Signer(ctx context.Context) (note.Signer, error) {
	_, signer, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, ErrCannotSign
	}
	return signer, nil
}
