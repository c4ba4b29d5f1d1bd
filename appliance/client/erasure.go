package client

import (
	"context"
)

// Erase carries out the verified erasure request id of tenant and
// returns the erasure with its signed receipt. Run again after a failure,
// it finishes what is left.
func (c *Client) Erase(ctx context.Context, tenant, id string) (Erasure, error) {
	var out Erasure
	err := c.Do(ctx, "POST", tenantPath(tenant)+"/requests/"+pathEscape(id)+"/erase", nil, &out)
	return out, err
}

// ErasureReceipt reads the erasure of request id again, with its receipt.
func (c *Client) ErasureReceipt(ctx context.Context, tenant, id string) (Erasure, error) {
	var out Erasure
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/requests/"+pathEscape(id)+"/receipt", nil, &out)
	return out, err
}

// Erasures lists the tenant's erasure ledger.
func (c *Client) Erasures(ctx context.Context, tenant string) (ErasureList, error) {
	var out ErasureList
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/erasures", nil, &out)
	return out, err
}
