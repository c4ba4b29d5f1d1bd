package api

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/raftstore"
)

// Collections are the tenants' collection schemas; *collections.Service
// implements it.
type Collections interface {
	Put(ctx context.Context, caller audit.Caller, tenant, name string, d collections.Definition, ifMatch uint64) (collections.Schema, bool, error)
	Get(ctx context.Context, c raftstore.Consistency, tenant, name string, v uint64) (collections.Schema, error)
	List(ctx context.Context, c raftstore.Consistency, tenant string) ([]collections.Schema, error)
}

var _ Collections = (*collections.Service)(nil)

type putCollectionRequest struct {
	Fields          []collections.Field `json:"fields"`
	RetentionDays   int                 `json:"retention_days"`
	SubjectRequired bool                `json:"subject_required"`
}

type listCollectionsResponse struct {
	Collections []collections.Schema `json:"collections"`
}

func collectionName(c *fiber.Ctx) (string, error) {
	name := c.Params("name")
	if !collections.ValidName(name) {
		return "", &requestError{kind: kindNotFound, detail: "No collection has this name."}
	}
	return name, nil
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

// ifMatch reads If-Match: a version in quotes, as ETag gives it.
func ifMatch(c *fiber.Ctx) (uint64, error) {
	h := c.Get(fiber.HeaderIfMatch)
	if h == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.Trim(h, `"`), 10, 64)
	if err != nil || v == 0 {
		return 0, &requestError{kind: kindBadRequest, detail: "If-Match must be a version as the ETag header gives it, such as \"3\".",
			fields: []FieldProblem{{Field: fiber.HeaderIfMatch, Reason: "must be a version as the ETag header gives it, such as \"3\""}}}
	}
	return v, nil
}

// putCollection defines a collection (201) or changes it (200, a new
// version; unchanged: 200, the same version).
func (s *server) putCollection(c *fiber.Ctx) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	name, err := collectionName(c)
	if err != nil {
		return err
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	var req putCollectionRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	sc, changed, err := s.deps.Collections.Put(ctx, s.caller(c), tenant, name,
		collections.Definition{Fields: req.Fields, RetentionDays: req.RetentionDays, SubjectRequired: req.SubjectRequired}, want)
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

func (s *server) getCollection(c *fiber.Ctx) error {
	name, err := collectionName(c)
	if err != nil {
		return err
	}
	q, err := parseAuditQuery(c, "version", "stale")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	sc, err := s.deps.Collections.Get(ctx, q.consistency, tenant, name, q.size)
	if err != nil {
		return fmt.Errorf("api: collection %q of %q: %w", name, tenant, err)
	}
	c.Set(fiber.HeaderETag, etag(sc.Version))
	return c.JSON(sc)
}

func (s *server) listCollections(c *fiber.Ctx) error {
	q, err := parseQuery(c, "stale")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	list, err := s.deps.Collections.List(ctx, q.consistency, tenant)
	if err != nil {
		return fmt.Errorf("api: collections of %q: %w", tenant, err)
	}
	return c.JSON(listCollectionsResponse{Collections: list})
}
