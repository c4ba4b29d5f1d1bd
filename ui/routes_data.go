package ui

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/collections"
)

// The data area: a tenant's collections and their schemas, its records
// (masked unless the person reveals one, giving a reason the audit entry
// records), everything held about one subject, and its blobs (recordings
// and files), which play in the browser through a proxy of the API's
// range reads.
//
// Routes and the API routes they need:
//
//	/t/:tenant/data                        GET collections; PUT to create
//	/t/:tenant/data/:name                  GET the schema and a page of records; PUT to change it
//	/t/:tenant/data/:name/:rid             GET the record masked
//	/t/:tenant/data/:name/:rid/reveal      POST: GET the record in clear with a reason
//	/t/:tenant/subjects[/:sid]             GET subject, records, blobs, consent, requests
//	/t/:tenant/blobs[/:bid[/content]]      blobs: list, upload, metadata, content, delete

// dataRoutes are the pages of the data area.
func (u *UI) dataRoutes() []route {
	const (
		putColl   = "PUT /tenants/:id/collections/:name"
		getRecord = "GET /tenants/:id/collections/:name/records/:rid"
	)
	return []route{
		{path: "/t/:tenant/data", need: "GET /tenants/:id/collections", actions: []string{putColl}, handle: u.collectionsPage},
		{path: "/t/:tenant/data", post: true, handle: u.createCollection},
		{path: "/t/:tenant/data/:name", need: "GET /tenants/:id/collections/:name", actions: []string{putColl}, handle: u.collectionPage},
		{path: "/t/:tenant/data/:name", post: true, handle: u.changeCollection},
		{path: "/t/:tenant/data/:name/:rid", need: getRecord, actions: []string{getRecord}, handle: u.recordPage},
		{path: "/t/:tenant/data/:name/:rid/reveal", post: true, handle: u.revealRecord},

		{path: "/t/:tenant/subjects", need: "GET /tenants/:id/subjects/:sid", handle: u.subjectsPage},
		{path: "/t/:tenant/subjects/:sid", need: "GET /tenants/:id/subjects/:sid", handle: u.subjectPage},

		{path: "/t/:tenant/blobs", need: "GET /tenants/:id/blobs", actions: []string{"POST /tenants/:id/blobs"}, handle: u.blobsPage},
		{path: "/t/:tenant/blobs", post: true, multipart: true, handle: u.uploadBlob},
		{path: "/t/:tenant/blobs/:bid", need: "GET /tenants/:id/blobs/:bid/metadata", actions: []string{"DELETE /tenants/:id/blobs/:bid"}, handle: u.blobPage},
		{path: "/t/:tenant/blobs/:bid/content", file: true, need: "GET /tenants/:id/blobs/:bid", handle: u.blobContent},
		{path: "/t/:tenant/blobs/:bid/delete", post: true, handle: u.deleteBlob},
	}
}

// compatibilityRules are the rules a change of a collection's schema
// follows (appliance/collections: records written under an older version
// stay readable), shown beside the edit form and with a refusal.
var compatibilityRules = []string{
	"A change may add optional fields, drop fields, change a field's classification, make a required field optional, and add values to an enum field.",
	"A change may not change a field's type, point a ref field at another collection, make an existing field required, add a required field, turn the blind index on for an existing field (its records have no index entries), or drop an enum value (records may hold it).",
	"Retention (days after a record's last change before it is erased; 0 = the tenant's default for subjects' records), subject_required and purposes may change; purposes must be processing purposes the tenant defined.",
	"Every change makes a new version; records keep the version they were written under, and an unchanged schema keeps its version.",
}

// schemaExample is the create form's starting text.
const schemaExample = `{
  "fields": [
    {"name": "email", "type": "string", "classification": "pii", "required": true, "index": true},
    {"name": "notes", "type": "string", "classification": "sensitive"}
  ],
  "retention_days": 0,
  "subject_required": true,
  "purposes": []
}`

// maxSchemaText bounds the schema a form may send.
const maxSchemaText = 64 << 10

// collectionsData is the collections page's.
type collectionsData struct {
	Collections []client.Collection
	Rules       []string
	// The create form: its values, and the API's refusal.
	Name, Schema string
	Error        *client.Problem
}

func (u *UI) collectionsPage(r *req) error {
	list, err := r.api.Collections(r.ctx, r.tenant())
	if err != nil {
		return err
	}
	return r.render(fiber.StatusOK, "data_collections", "Collections", collectionsData{Collections: list.Collections, Rules: compatibilityRules, Schema: schemaExample})
}

// schemaForm reads the form's schema: a JSON object.
func schemaForm(r *req) (json.RawMessage, string, error) {
	text := r.c.FormValue("schema")
	if len(text) > maxSchemaText {
		return nil, text, badForm("The schema is longer than 64 KiB.")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &obj); err != nil {
		return nil, text, badForm("The schema is not a JSON object: " + err.Error())
	}
	return json.RawMessage(text), text, nil
}

// createCollection defines a new collection; one of that name already
// existing is refused (the form creates, the collection's page changes).
func (u *UI) createCollection(r *req) error {
	t, name := r.tenant(), strings.TrimSpace(r.c.FormValue("name"))
	fail := func(status int, p *client.Problem, text string) error {
		list, err := r.api.Collections(r.ctx, t)
		if err != nil {
			return err
		}
		return r.render(status, "data_collections", "Collections", collectionsData{Collections: list.Collections, Rules: compatibilityRules, Name: name, Schema: text, Error: p})
	}
	schema, text, err := schemaForm(r)
	if err == nil && !collections.ValidName(name) {
		err = badForm("The name must be 1 to 63 of a-z, 0-9 and _, starting with a letter.")
	}
	if err != nil {
		return fail(fiber.StatusBadRequest, userProblem(err, r.id), text)
	}
	if _, err := r.api.Collection(r.ctx, t, name); err == nil {
		return fail(fiber.StatusConflict, &client.Problem{Title: "Collection exists", Status: fiber.StatusConflict, RequestID: r.id,
			Detail: "A collection named " + name + " exists: change it on its page."}, text)
	} else if !isStatus(err, fiber.StatusNotFound) {
		return err
	}
	c, err := r.api.PutCollectionIf(r.ctx, t, name, schema, 0)
	if err != nil {
		return fail(statusOf(err), problemFrom(err, r.id), text)
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/data/"+urlPathEscape(c.Name), "Collection "+c.Name+" created.")
}

// userProblem is a form refusal (a *userError or an API error) as a
// problem to show.
func userProblem(err error, requestID string) *client.Problem {
	var ue *userError
	if errors.As(err, &ue) {
		return &client.Problem{Title: ue.title, Detail: ue.detail, Status: ue.status, RequestID: requestID}
	}
	return problemFrom(err, requestID)
}

// isStatus: err is an API answer of status.
func isStatus(err error, status int) bool {
	var ae *client.Error
	return errors.As(err, &ae) && ae.Status == status
}

// statusOf is the status of an API or form refusal (500 for anything
// else).
func statusOf(err error) int {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status >= 400 {
		return ae.Status
	}
	var ue *userError
	if errors.As(err, &ue) {
		return ue.status
	}
	return fiber.StatusInternalServerError
}
