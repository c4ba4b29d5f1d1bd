package accounts

import (
	"context"

	"github.com/custos/custos/appliance/identity/signing"
	"github.com/custos/custos/appliance/identity/token"
)

// Signer issues and verifies the cluster's access tokens with its shared,
// rotating signing keys (*signing.Keys: sealed in the replicated store,
// reloaded when another node rotates them).
type Signer interface {
	Issue(ctx context.Context, c token.Claims) (string, token.Claims, error)
	Verify(ctx context.Context, tok string) (token.Claims, error)
}

var _ Signer = (*signing.Keys)(nil)
