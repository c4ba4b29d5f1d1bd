package api

import (
	"context"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/raftstore"
)

// Collections are the tenants' collection schemas; *collections.Service
// implements it.
type Collections interface {
	Put(ctx context.Context, caller audit.Principal, tenant, name string, d collections.Definition, ifMatch uint64) (collections.Schema, bool, error)
	Get(ctx context.Context, c raftstore.Consistency, tenant, name string, v uint64) (collections.Schema, error)
	List(ctx context.Context, c raftstore.Consistency, tenant string) ([]collections.Schema, error)
}

var _ Collections = (*collections.Service)(nil)

type putCollectionRequest struct {
	Fields          []collections.Field `json:"fields"`
	RetentionDays   int                 `json:"retention_days"`
	SubjectRequired bool                `json:"subject_required"`
	Purposes        []string            `json:"purposes"`
}

type listCollectionsResponse struct {
	Collections []collections.Schema `json:"collections"`
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

// putCollection defines a collection (201) or changes it (200, a new
// version; unchanged: 200, the same version).
func (s *server) putCollection(c *fiber.Ctx, in *input) error {
	tenant, name, req := in.tenant, in.str("name"), bodyOf[putCollectionRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	sc, changed, err := s.deps.Collections.Put(ctx, in.who, tenant, name,
		collections.Definition{Fields: req.Fields, RetentionDays: req.RetentionDays, SubjectRequired: req.SubjectRequired, Purposes: req.Purposes}, in.uint(fiber.HeaderIfMatch))
	if err != nil {
		return fmt.Errorf("api: put collection %q of %q: %w", name, tenant, err)
	}
	c.Set(fiber.HeaderETag, etag(sc.Version))
	if changed && sc.Version == 1 {
		c.Location("/v1/tenants/" + tenant + "/collections/" + name)
		return c.Status(fiber.StatusCreated).JSON(sc)
	}
	return c.JSON(sc)
}

func (s *server) getCollection(c *fiber.Ctx, in *input) error {
	tenant, name := in.tenant, in.str("name")
	ctx, cancel := s.callContext(c)
	defer cancel()
	sc, err := s.deps.Collections.Get(ctx, consistency(in), tenant, name, in.uint("version"))
	if err != nil {
		return fmt.Errorf("api: collection %q of %q: %w", name, tenant, err)
	}
	c.Set(fiber.HeaderETag, etag(sc.Version))
	return c.JSON(sc)
}

func (s *server) listCollections(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	list, err := s.deps.Collections.List(ctx, consistency(in), in.tenant)
	if err != nil {
		return fmt.Errorf("api: collections of %q: %w", in.tenant, err)
	}
	return c.JSON(listCollectionsResponse{Collections: list})
}
