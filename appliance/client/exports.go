package client

import (
	"context"
	"io"
	"net/url"
	"time"
)

// ExportOptions is the body of an export: the records' format (json, csv
// or parquet; default json), the packaging (zip or gzip, a .tar.gz;
// default zip) and an optional date range (RFC 3339, both ends
// inclusive).
type ExportOptions struct {
	Format      string     `json:"format,omitempty"`
	Compression string     `json:"compression,omitempty"`
	From        *time.Time `json:"from,omitempty"`
	To          *time.Time `json:"to,omitempty"`
}

// Export is a stored export: its archive is downloaded by id until
// ExpiresAt, then shredded. Manifest is the signed manifest the archive
// holds (MANIFEST.txt), which `custos dsr verify-export` checks.
type Export struct {
	ID          string            `json:"id"`
	Kind        string            `json:"kind"`
	Request     string            `json:"request"`
	Subject     string            `json:"subject"`
	Format      string            `json:"format"`
	Compression string            `json:"compression"`
	From        *time.Time        `json:"from,omitempty"`
	To          *time.Time        `json:"to,omitempty"`
	Size        int64             `json:"size"`
	SHA256      string            `json:"sha256"`
	FileName    string            `json:"file_name"`
	Counts      map[string]uint64 `json:"counts"`
	CreatedAt   time.Time         `json:"created_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	Manifest    string            `json:"manifest"`
}

// ExportList is the tenant's exports that have not expired.
type ExportList struct {
	Exports []Export `json:"exports"`
}

// ExportRequest exports the subject of data-subject request id (access,
// export or portability; verified) and completes the request. It can
// take long (the whole export is built before it answers): ctx, not the
// client's timeout, bounds it.
func (c *Client) ExportRequest(ctx context.Context, tenant, id string, o ExportOptions) (Export, error) {
	var x Export
	err := c.long().Do(ctx, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/requests/"+url.PathEscape(id)+"/export", o, &x)
	return x, err
}

// ExportTenant exports everything the tenant holds (data return at the
// end of a contract).
func (c *Client) ExportTenant(ctx context.Context, tenant string, o ExportOptions) (Export, error) {
	var x Export
	err := c.long().Do(ctx, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/export", o, &x)
	return x, err
}

// Exports lists the tenant's exports.
func (c *Client) Exports(ctx context.Context, tenant string) ([]Export, error) {
	var l ExportList
	err := c.Do(ctx, "GET", "/v1/tenants/"+url.PathEscape(tenant)+"/exports", nil, &l)
	return l.Exports, err
}

// DownloadExport writes export id's archive to w.
func (c *Client) DownloadExport(ctx context.Context, tenant, id string, w io.Writer) error {
	return c.Download(ctx, "/v1/tenants/"+url.PathEscape(tenant)+"/exports/"+url.PathEscape(id), w)
}

// long is c without its per-call timeout.
func (c *Client) long() *Client {
	cp := *c
	cp.timeout = 0
	return &cp
}
