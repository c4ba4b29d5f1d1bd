package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/records"
)

// Records are the tenants' records; *records.Service implements it.
type Records interface {
	Create(ctx context.Context, caller audit.Principal, tenant, collection string, in records.Input) (records.Record, error)
	Get(ctx context.Context, caller audit.Principal, tenant, collection, id string, masked bool) (records.Record, error)
	Delete(ctx context.Context, caller audit.Principal, tenant, collection, id string) error
	Replace(ctx context.Context, caller audit.Principal, tenant, collection, id string, in records.Input, ifMatch uint64) (records.Record, error)
	Patch(ctx context.Context, caller audit.Principal, tenant, collection, id string, in records.Input, subjectSet, attributesSet bool, ifMatch uint64) (records.Record, error)
	Find(ctx context.Context, caller audit.Principal, tenant, collection, field string, value json.RawMessage, after string, limit int) ([]string, string, error)
	Subject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]records.Held, error)
	List(ctx context.Context, caller audit.Principal, tenant, collection, attr, value, after string, limit int) ([]string, string, error)
}

var _ Records = (*records.Service)(nil)

type createRecordRequest struct {
	ID         string                     `json:"id"`
	Subject    string                     `json:"subject"`
	Attributes map[string]string          `json:"attributes"`
	Fields     map[string]json.RawMessage `json:"fields"`
}

type findRecordsResponse struct {
	IDs  []string `json:"ids"`
	Next string   `json:"next,omitempty"`
}

// sendRecord answers a record with its version as ETag.
func sendRecord(c *fiber.Ctx, rec records.Record) error {
	c.Set(fiber.HeaderETag, etag(rec.Version))
	return c.JSON(rec)
}

func (s *server) createRecord(c *fiber.Ctx, in *input) error {
	tenant, name, req := in.tenant, in.str("name"), bodyOf[createRecordRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	rec, err := s.deps.Records.Create(ctx, in.who, tenant, name, records.Input{ID: req.ID, Subject: req.Subject, Attributes: req.Attributes, Fields: req.Fields})
	if err != nil {
		return fmt.Errorf("api: create record in %q of %q: %w", name, tenant, err)
	}
	c.Location("/v1/tenants/" + tenant + "/collections/" + name + "/records/" + rec.ID)
	c.Set(fiber.HeaderETag, etag(rec.Version))
	return c.Status(fiber.StatusCreated).JSON(rec)
}

func (s *server) getRecord(c *fiber.Ctx, in *input) error {
	tenant, name, id := in.tenant, in.str("name"), in.str("rid")
	in.who.Reason = in.str("reason") // the read's entry records it
	ctx, cancel := s.callContext(c)
	defer cancel()
	rec, err := s.deps.Records.Get(ctx, in.who, tenant, name, id, in.flag("mask"))
	if err != nil {
		return fmt.Errorf("api: record %q in %q of %q: %w", id, name, tenant, err)
	}
	return sendRecord(c, rec)
}

func (s *server) deleteRecord(c *fiber.Ctx, in *input) error {
	tenant, name, id := in.tenant, in.str("name"), in.str("rid")
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Records.Delete(ctx, in.who, tenant, name, id); err != nil {
		return fmt.Errorf("api: delete record %q in %q of %q: %w", id, name, tenant, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// findRecords lists the ids of records whose blind-indexed field equals a
// value: ?field=email&value="jane@example.com" (value is JSON); or, with
// ?attribute=name:value, the ids of records with that attribute; or all.
func (s *server) findRecords(c *fiber.Ctx, in *input) error {
	tenant, name, after, limit := in.tenant, in.str("name"), in.str("after"), in.int("limit")
	ctx, cancel := s.callContext(c)
	defer cancel()
	var ids []string
	var next string
	var err error
	if in.has("field") {
		ids, next, err = s.deps.Records.Find(ctx, in.who, tenant, name, in.str("field"), json.RawMessage(in.str("value")), after, limit)
	} else {
		attr, value, _ := strings.Cut(in.str("attribute"), ":")
		ids, next, err = s.deps.Records.List(ctx, in.who, tenant, name, attr, value, after, limit)
	}
	if err != nil {
		return fmt.Errorf("api: find records in %q of %q: %w", name, tenant, err)
	}
	return c.JSON(findRecordsResponse{IDs: ids, Next: next})
}

type subjectResponse struct {
	Subject string         `json:"subject"`
	Records []records.Held `json:"records"`
	Blobs   []blobs.Blob   `json:"blobs"`
}

// getSubject lists what the tenant holds about a subject; a subject with
// nothing is 404.
func (s *server) getSubject(c *fiber.Ctx, in *input) error {
	tenant, subject := in.tenant, in.str("sid")
	in.who.Reason = in.str("reason") // the lookup's entries record it
	ctx, cancel := s.callContext(c)
	defer cancel()
	held, err := s.deps.Records.Subject(ctx, in.who, tenant, subject)
	if errors.Is(err, records.ErrNotFound) {
		held, err = []records.Held{}, nil
	}
	if err != nil {
		return fmt.Errorf("api: subject of %q: %w", tenant, err)
	}
	bl, err := s.deps.Blobs.Subject(ctx, in.who, tenant, subject)
	if err != nil {
		return fmt.Errorf("api: blobs of subject of %q: %w", tenant, err)
	}
	if len(held) == 0 && len(bl) == 0 {
		return fmt.Errorf("api: subject of %q: %w", tenant, records.ErrNotFound)
	}
	return c.JSON(subjectResponse{Subject: subject, Records: held, Blobs: bl})
}

// replaceRecord writes a new version of a record; If-Match makes it
// conditional (412 when the record moved on).
func (s *server) replaceRecord(c *fiber.Ctx, in *input) error {
	tenant, name, id, req := in.tenant, in.str("name"), in.str("rid"), bodyOf[createRecordRequest](in)
	if req.ID != "" && req.ID != id {
		return &requestError{kind: kindValidation, detail: "id must match the path (or be left out).", fields: []FieldProblem{{Field: "id", Reason: "must match the path"}}}
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	rec, err := s.deps.Records.Replace(ctx, in.who, tenant, name, id, records.Input{Subject: req.Subject, Attributes: req.Attributes, Fields: req.Fields}, in.uint(fiber.HeaderIfMatch))
	if err != nil {
		return fmt.Errorf("api: replace record %q in %q of %q: %w", id, name, tenant, err)
	}
	return sendRecord(c, rec)
}

type patchRecordRequest struct {
	Subject    *string                    `json:"subject"`
	Attributes *map[string]string         `json:"attributes"`
	Fields     map[string]json.RawMessage `json:"fields"`
}

// patchRecord merges a change into a record (a null field removes it) as
// a new version; If-Match as in replace.
func (s *server) patchRecord(c *fiber.Ctx, in *input) error {
	tenant, name, id, req := in.tenant, in.str("name"), in.str("rid"), bodyOf[patchRecordRequest](in)
	patch := records.Input{Fields: req.Fields}
	if req.Subject != nil {
		patch.Subject = *req.Subject
	}
	if req.Attributes != nil {
		patch.Attributes = *req.Attributes
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	rec, err := s.deps.Records.Patch(ctx, in.who, tenant, name, id, patch, req.Subject != nil, req.Attributes != nil, in.uint(fiber.HeaderIfMatch))
	if err != nil {
		return fmt.Errorf("api: patch record %q in %q of %q: %w", id, name, tenant, err)
	}
	return sendRecord(c, rec)
}
