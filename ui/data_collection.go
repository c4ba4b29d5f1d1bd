package ui

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// recordPage is how many records a collection's page lists: each is one
// masked read, which the API audits when the record holds pii or
// sensitive fields.
const recordPageSize = 10

// collectionData is a collection's page.
type collectionData struct {
	C     client.Collection
	Rules []string
	// Schema is the edit form's text (the current definition, or what
	// the person sent when it was refused).
	Schema string
	// Version is the version the form edits (If-Match).
	Version uint64
	Error   *client.Problem
	// Refused: the API refused the change (the rules are shown with the
	// problem).
	Refused bool
	// Records are a page of records, masked; RecordsError why there are
	// none (the role may not list them, say).
	Records      []recordRow
	RecordsShown bool
	Next, First  string
}

// recordRow is one masked record of the list.
type recordRow struct {
	ID, Subject string
	Values      []fieldValue
	Problem     *client.Problem
}

// fieldValue is a field as the page shows it.
type fieldValue struct {
	Name, Class, Value string
	Masked, Withheld   bool
}

// definitionOf is the part of a schema a PUT takes, as indented JSON.
func definitionOf(c client.Collection) string {
	purposes := c.Purposes
	if purposes == nil {
		purposes = []string{}
	}
	b, _ := json.MarshalIndent(struct {
		Fields          []client.CollectionField `json:"fields"`
		RetentionDays   int                      `json:"retention_days"`
		SubjectRequired bool                     `json:"subject_required"`
		Purposes        []string                 `json:"purposes"`
	}{c.Fields, c.RetentionDays, c.SubjectRequired, purposes}, "", "  ")
	return string(b)
}

func (u *UI) collectionPage(r *req) error {
	d, err := u.collectionView(r, r.c.Params("name"))
	if err != nil {
		return err
	}
	return r.render(fiber.StatusOK, "data_collection", "Collection "+d.C.Name, d)
}

// collectionView reads a collection and a page of its records (masked).
func (u *UI) collectionView(r *req, name string) (*collectionData, error) {
	t := r.tenant()
	c, err := r.api.Collection(r.ctx, t, name)
	if err != nil {
		return nil, err
	}
	d := &collectionData{C: c, Rules: compatibilityRules, Schema: definitionOf(c), Version: c.Version}
	if !u.may(r.v, "GET", "/tenants/:id/collections/:name/records") {
		return d, nil
	}
	after := clip(r.c.Query("after"), 128)
	page, err := r.api.RecordPage(r.ctx, t, name, recordPageSize, after)
	if err != nil {
		return nil, err
	}
	d.RecordsShown = true
	base := "/ui/t/" + urlPathEscape(t) + "/data/" + urlPathEscape(name)
	if page.Next != "" {
		d.Next = base + qs("after", page.Next)
	}
	if after != "" {
		d.First = base
	}
	if !u.may(r.v, "GET", "/tenants/:id/collections/:name/records/:rid") {
		for _, id := range page.IDs {
			d.Records = append(d.Records, recordRow{ID: id})
		}
		return d, nil
	}
	d.Records = make([]recordRow, len(page.IDs))
	var wg sync.WaitGroup
	for i, id := range page.IDs {
		wg.Go(func() {
			rec, err := r.api.ReadRecord(r.ctx, t, name, id, client.RecordRead{Mask: true})
			if err != nil {
				d.Records[i] = recordRow{ID: id, Problem: problemFrom(err, r.id)}
				return
			}
			d.Records[i] = recordRow{ID: id, Subject: rec.Subject, Values: valuesOf(c, rec)}
		})
	}
	wg.Wait()
	return d, nil
}

// valuesOf are a record's fields in the schema's order, as read.
func valuesOf(c client.Collection, rec client.Record) []fieldValue {
	masked, withheld := map[string]bool{}, map[string]bool{}
	for _, f := range rec.Masked {
		masked[f] = true
	}
	for _, f := range rec.Withheld {
		withheld[f] = true
	}
	var out []fieldValue
	for _, f := range c.Fields {
		v := fieldValue{Name: f.Name, Class: f.Classification, Masked: masked[f.Name], Withheld: withheld[f.Name]}
		raw, ok := rec.Fields[f.Name]
		switch {
		case v.Withheld:
			v.Value = "withheld from your role"
		case !ok:
			v.Value = "—"
		default:
			v.Value = displayJSON(raw)
		}
		out = append(out, v)
	}
	return out
}

// displayJSON is a field's value as text: a string as it is, anything
// else as compact JSON.
func displayJSON(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return clip(string(raw), 2000)
}

// changeCollection PUTs the edited schema (If-Match: the version the form
// showed). A refusal re-renders the page with the API's problem, the
// person's text and the compatibility rules.
func (u *UI) changeCollection(r *req) error {
	t, name := r.tenant(), r.c.Params("name")
	version, _ := strconv.ParseUint(r.c.FormValue("version"), 10, 64)
	schema, text, err := schemaForm(r)
	if err == nil {
		var c client.Collection
		c, err = r.api.PutCollectionIf(r.ctx, t, name, schema, version)
		if err == nil {
			note := "Collection " + c.Name + " is at version " + strconv.FormatUint(c.Version, 10) + "."
			if c.Version == version {
				note = "Nothing changed: " + note
			}
			return r.done("/ui/t/"+urlPathEscape(t)+"/data/"+urlPathEscape(name), note)
		}
	}
	d, verr := u.collectionView(r, name)
	if verr != nil {
		return verr
	}
	d.Schema, d.Version, d.Error, d.Refused = text, version, userProblem(err, r.id), true
	return r.render(statusOf(err), "data_collection", "Collection "+d.C.Name, d)
}
