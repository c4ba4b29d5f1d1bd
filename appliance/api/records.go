package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/records"
)

// Records are the tenants' records; *records.Service implements it.
type Records interface {
	Create(ctx context.Context, caller audit.Caller, tenant, collection string, in records.Input) (records.Record, error)
	Get(ctx context.Context, caller audit.Caller, tenant, collection, id string, masked bool) (records.Record, error)
	Delete(ctx context.Context, caller audit.Caller, tenant, collection, id string) error
	Replace(ctx context.Context, caller audit.Caller, tenant, collection, id string, in records.Input, ifMatch uint64) (records.Record, error)
	Patch(ctx context.Context, caller audit.Caller, tenant, collection, id string, in records.Input, subjectSet, attributesSet bool, ifMatch uint64) (records.Record, error)
	Find(ctx context.Context, tenant, collection, field string, value json.RawMessage, after string, limit int) ([]string, string, error)
	Subject(ctx context.Context, tenant, subject string) ([]records.Held, error)
	List(ctx context.Context, tenant, collection, attr, value, after string, limit int) ([]string, string, error)
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

func recordID(c *fiber.Ctx) (string, error) {
	id := c.Params("rid")
	if !records.ValidID(id) {
		return "", &requestError{kind: kindNotFound, detail: "No record has this id."}
	}
	return id, nil
}

// recordPath validates a record route's path: collection and record id.
func recordPath(c *fiber.Ctx) (name, id string, err error) {
	if name, err = collectionName(c); err != nil {
		return "", "", err
	}
	id, err = recordID(c)
	return name, id, err
}

// recordWrite validates what a replace or patch has before its body: no
// query, the path, If-Match.
func recordWrite(c *fiber.Ctx) (name, id string, want uint64, err error) {
	if _, err = parseQuery(c); err != nil {
		return "", "", 0, err
	}
	if name, id, err = recordPath(c); err != nil {
		return "", "", 0, err
	}
	want, err = ifMatch(c)
	return name, id, want, err
}

// sendRecord answers a record with its version as ETag.
func sendRecord(c *fiber.Ctx, rec records.Record) error {
	c.Set(fiber.HeaderETag, etag(rec.Version))
	return c.JSON(rec)
}

func (s *server) createRecord(c *fiber.Ctx) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	name, err := collectionName(c)
	if err != nil {
		return err
	}
	var req createRecordRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	rec, err := s.deps.Records.Create(ctx, s.caller(c), tenant, name, records.Input{ID: req.ID, Subject: req.Subject, Attributes: req.Attributes, Fields: req.Fields})
	if err != nil {
		return fmt.Errorf("api: create record in %q of %q: %w", name, tenant, err)
	}
	c.Location("/v1/tenants/" + tenant + "/collections/" + name + "/records/" + rec.ID)
	c.Set(fiber.HeaderETag, etag(rec.Version))
	return c.Status(fiber.StatusCreated).JSON(rec)
}

func (s *server) getRecord(c *fiber.Ctx) error {
	name, id, err := recordPath(c)
	if err != nil {
		return err
	}
	masked := false
	if v := c.Query("mask"); v != "" {
		if masked, err = strconv.ParseBool(v); err != nil {
			return invalidParam("mask", "must be true or false")
		}
	}
	if err := onlyParams(c, "mask"); err != nil {
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
	rec, err := s.deps.Records.Get(ctx, s.caller(c), tenant, name, id, masked)
	if err != nil {
		return fmt.Errorf("api: record %q in %q of %q: %w", id, name, tenant, err)
	}
	return sendRecord(c, rec)
}

func (s *server) deleteRecord(c *fiber.Ctx) error {
	if err := s.noInput(c); err != nil {
		return err
	}
	name, id, err := recordPath(c)
	if err != nil {
		return err
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Records.Delete(ctx, s.caller(c), tenant, name, id); err != nil {
		return fmt.Errorf("api: delete record %q in %q of %q: %w", id, name, tenant, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// findRecords lists the ids of records whose blind-indexed field equals a
// value: ?field=email&value="jane@example.com" (value is JSON).
func (s *server) findRecords(c *fiber.Ctx) error {
	name, err := collectionName(c)
	if err != nil {
		return err
	}
	if err := onlyParams(c, "field", "value", "attribute", "after", "limit"); err != nil {
		return err
	}
	field, value, after, attribute := c.Query("field"), c.Query("value"), c.Query("after"), c.Query("attribute")
	if (field == "") != (value == "") {
		return invalidParam("field", "and value go together (value is JSON, such as \"jane@example.com\")")
	}
	attr, attrValue, hasAttr := strings.Cut(attribute, ":")
	if attribute != "" && (!hasAttr || attr == "" || field != "") {
		return invalidParam("attribute", "must be name:value, and not combined with field")
	}
	limit, err := pageParams(c, "a record id", records.ValidID)
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
	var ids []string
	var next string
	if field != "" {
		ids, next, err = s.deps.Records.Find(ctx, tenant, name, field, json.RawMessage(value), after, limit)
	} else {
		ids, next, err = s.deps.Records.List(ctx, tenant, name, attr, attrValue, after, limit)
	}
	if err != nil {
		return fmt.Errorf("api: find records in %q of %q: %w", name, tenant, err)
	}
	return c.JSON(findRecordsResponse{IDs: ids, Next: next})
}

// onlyParams refuses query parameters outside allowed, and repeated ones;
// the handler validates the values.
// pageParams validates a listing's after (an id valid says is one, named
// what) and limit (1 to 500, default 100).
func pageParams(c *fiber.Ctx, what string, valid func(string) bool) (limit int, err error) {
	if after := c.Query("after"); after != "" && !valid(after) {
		return 0, invalidParam("after", "must be "+what)
	}
	limit = 100
	if l := c.Query("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > records.MaxListLimit {
			return 0, invalidParam("limit", "must be between 1 and 500")
		}
	}
	return limit, nil
}

func onlyParams(c *fiber.Ctx, allowed ...string) error {
	var err error
	seen := map[string]bool{}
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		key := string(k)
		switch {
		case err != nil:
		case !slices.Contains(allowed, key):
			err = invalidParam(key, "is not accepted by this endpoint")
		case seen[key]:
			err = invalidParam(key, "must be given at most once")
		}
		seen[key] = true
	})
	return err
}

type subjectResponse struct {
	Subject string         `json:"subject"`
	Records []records.Held `json:"records"`
	Blobs   []blobs.Blob   `json:"blobs"`
}

// getSubject lists what the tenant holds about a subject; a subject with
// nothing is 404.
func (s *server) getSubject(c *fiber.Ctx) error {
	if err := s.noInput(c); err != nil {
		return err
	}
	subject := c.Params("sid")
	if !records.ValidID(subject) {
		return &requestError{kind: kindNotFound, detail: "The tenant holds nothing about this subject."}
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	held, err := s.deps.Records.Subject(ctx, tenant, subject)
	if errors.Is(err, records.ErrNotFound) {
		held, err = []records.Held{}, nil
	}
	if err != nil {
		return fmt.Errorf("api: subject of %q: %w", tenant, err)
	}
	bl, err := s.deps.Blobs.Subject(ctx, tenant, subject)
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
func (s *server) replaceRecord(c *fiber.Ctx) error {
	name, id, want, err := recordWrite(c)
	if err != nil {
		return err
	}
	var req createRecordRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	if req.ID != "" && req.ID != id {
		return &requestError{kind: kindValidation, detail: "id must match the path (or be left out).", fields: []FieldProblem{{Field: "id", Reason: "must match the path"}}}
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	rec, err := s.deps.Records.Replace(ctx, s.caller(c), tenant, name, id, records.Input{Subject: req.Subject, Attributes: req.Attributes, Fields: req.Fields}, want)
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
func (s *server) patchRecord(c *fiber.Ctx) error {
	name, id, want, err := recordWrite(c)
	if err != nil {
		return err
	}
	var req patchRecordRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	in := records.Input{Fields: req.Fields}
	if req.Subject != nil {
		in.Subject = *req.Subject
	}
	if req.Attributes != nil {
		in.Attributes = *req.Attributes
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	rec, err := s.deps.Records.Patch(ctx, s.caller(c), tenant, name, id, in, req.Subject != nil, req.Attributes != nil, want)
	if err != nil {
		return fmt.Errorf("api: patch record %q in %q of %q: %w", id, name, tenant, err)
	}
	return sendRecord(c, rec)
}
