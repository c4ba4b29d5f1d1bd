package blobs

import (
	"context"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/visibility"
)

// sight is how caller reads tenant's blobs (appliance/identity/visibility).
func (s *Service) sight(ctx context.Context, caller audit.Principal, tenant string) (visibility.Sight, error) {
	return s.vis.Sight(ctx, caller, tenant)
}

// shown is b's metadata as a principal of sight v reads it: without the
// content's SHA-256 when v does not read blob content, since the digest
// of a document confirms a guessed copy of it — which is reading it (the
// audit log keys the digest for the same reason).
func shown(v visibility.Sight, b Blob) Blob {
	if !v.BlobContent() {
		b.SHA256 = ""
	}
	return b
}
