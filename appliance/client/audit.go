package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/custos/custos/appliance/audit"
)

// AuditInclusion proves that the entry at index (0-based: seq − 1) of the
// system chain (tenant "") or a tenant's is in the tree of size entries
// (0: the size of the chain's latest checkpoint).
func (c *Client) AuditInclusion(ctx context.Context, tenant string, index, size uint64) (audit.Proof, error) {
	q := url.Values{"index": {strconv.FormatUint(index, 10)}}
	if size > 0 {
		q.Set("size", strconv.FormatUint(size, 10))
	}
	var p audit.Proof
	err := c.Do(ctx, "GET", auditPath(tenant)+"/proof/inclusion?"+q.Encode(), nil, &p)
	return p, err
}

// AuditConsistency proves that the chain's tree of size entries (0: its
// latest checkpoint's) extends its tree of old entries.
func (c *Client) AuditConsistency(ctx context.Context, tenant string, old, size uint64) (audit.Proof, error) {
	q := url.Values{"old": {strconv.FormatUint(old, 10)}}
	if size > 0 {
		q.Set("new", strconv.FormatUint(size, 10))
	}
	var p audit.Proof
	err := c.Do(ctx, "GET", auditPath(tenant)+"/proof/consistency?"+q.Encode(), nil, &p)
	return p, err
}

// AuditStats is a chain's entries per day (UTC) and action.
type AuditStats struct {
	From   string           `json:"from"` // the first day, YYYY-MM-DD
	To     string           `json:"to"`   // the last day: today
	Counts []audit.DayCount `json:"counts"`
}

// AuditStats counts the entries of the system chain (tenant "") or a
// tenant's per day and action over the last days days, today included.
func (c *Client) AuditStats(ctx context.Context, tenant string, days int) (AuditStats, error) {
	var out AuditStats
	err := c.Do(ctx, "GET", auditPath(tenant)+"/stats?days="+strconv.Itoa(days), nil, &out)
	return out, err
}
