package api

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/privacy/export"
)

// Exports are data-subject and tenant exports; *export.Service implements
// it.
type Exports interface {
	ForRequest(ctx context.Context, caller audit.Principal, tenant, id string, opt export.Options) (export.Export, error)
	Tenant(ctx context.Context, caller audit.Principal, tenant, ref string, opt export.Options) (export.Export, error)
	List(ctx context.Context, caller audit.Principal, tenant string) ([]export.Export, error)
	Download(ctx context.Context, caller audit.Principal, tenant, id string) (export.Export, io.ReadCloser, error)
}

var _ Exports = (*export.Service)(nil)

// buildTimeout bounds the building of one export: it reads a subject's
// (or a tenant's) whole holdings before it answers.
const buildTimeout = 10 * time.Minute

// Parameter types of the export routes.
var (
	exportIDType = idType(export.ValidID, "must be an export id", "No export has this id (or it expired).")
)

// exportRoutes: a data subject's export answers their request and is
// subjects:export (Owner, Compliance), as is downloading and listing
// exports. The tenant-wide export (data return at the end of a contract)
// takes every collection's records at once, which is the Owner's alone:
// it needs collections:delete, the permission over every record of a
// collection at once that the roles table gives the Owner only (not the
// Operator, who reads no data).
func (s *server) exportRoutes() []route {
	get, post := fiber.MethodGet, fiber.MethodPost
	subjects := needs(roles.P(roles.Subjects, roles.Export))
	return []route{
		{method: post, path: "/tenants/:id/requests/:rid/export", access: subjects, params: params(tenantPath, pathParam("rid", requestIDType)),
			body: jsonBody[client.ExportOptions](false), existing: true, handle: s.exportRequest},
		{method: post, path: "/tenants/:id/export", access: needs(roles.P(roles.Collections, roles.Delete)), params: params(tenantPath),
			body: jsonBody[client.ExportOptions](false), existing: true, handle: s.exportTenant},
		{method: get, path: "/tenants/:id/exports", access: subjects, params: params(tenantPath), body: noBody, existing: true, handle: s.listExports},
		{method: get, path: "/tenants/:id/exports/:eid", access: subjects, params: params(tenantPath, pathParam("eid", exportIDType)),
			body: noBody, existing: true, handle: s.downloadExport},
	}
}

// exportOptions are the body's choices.
func exportOptions(in *input) export.Options {
	b := bodyOf[client.ExportOptions](in)
	o := export.Options{Format: export.Format(b.Format), Packaging: export.Packaging(b.Compression)}
	if b.From != nil {
		o.From = *b.From
	}
	if b.To != nil {
		o.To = *b.To
	}
	return o
}

// buildContext bounds an export's building: longer than a call, and not
// ended by the client going away (the export is stored either way).
func buildContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.UserContext()), buildTimeout)
}

func (s *server) exportRequest(c *fiber.Ctx, in *input) error {
	ctx, cancel := buildContext(c)
	defer cancel()
	x, err := s.deps.Exports.ForRequest(ctx, in.who, in.tenant, in.str("rid"), exportOptions(in))
	if err != nil {
		return fmt.Errorf("api: export request %q of %q: %w", in.str("rid"), in.tenant, err)
	}
	return c.Status(fiber.StatusCreated).JSON(x)
}

func (s *server) exportTenant(c *fiber.Ctx, in *input) error {
	ctx, cancel := buildContext(c)
	defer cancel()
	x, err := s.deps.Exports.Tenant(ctx, in.who, in.tenant, "", exportOptions(in))
	if err != nil {
		return fmt.Errorf("api: export tenant %q: %w", in.tenant, err)
	}
	return c.Status(fiber.StatusCreated).JSON(x)
}

func (s *server) listExports(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	l, err := s.deps.Exports.List(ctx, in.who, in.tenant)
	if err != nil {
		return fmt.Errorf("api: exports of %q: %w", in.tenant, err)
	}
	return c.JSON(struct {
		Exports []export.Export `json:"exports"`
	}{l})
}

// downloadExport streams an export's archive, audited (export.download)
// before the first byte.
func (s *server) downloadExport(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	x, r, err := s.deps.Exports.Download(ctx, in.who, in.tenant, in.str("eid"))
	if err != nil {
		return fmt.Errorf("api: export %q of %q: %w", in.str("eid"), in.tenant, err)
	}
	ct := "application/zip"
	if x.Compression == export.PackageGzip {
		ct = "application/gzip"
	}
	c.Set(fiber.HeaderContentType, ct)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+x.FileName+`"`)
	c.Set(headerContentSHA256, x.SHA256)
	c.Context().SetBodyStream(r, int(x.Size))
	return nil
}
