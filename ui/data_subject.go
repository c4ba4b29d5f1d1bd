package ui

import (
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/records"
)

// subjectRecords bounds the records a subject's page reads (masked); the
// others are listed by collection and id.
const subjectRecords = 25

// subjectRequests bounds the open requests of the subject the page
// lists.
const subjectRequests = 50

// subjectData is a subject's page: every section the role may read.
type subjectData struct {
	Subject string
	// Held is false when the tenant holds no record or blob of the
	// subject.
	Held bool
	// Records: read masked (the first subjectRecords), then the rest by
	// name only.
	RecordsShown bool
	Records      []subjectRecord
	BlobsShown   bool
	Blobs        []client.Blob
	// Consent: the subject's state now.
	ConsentShown bool
	Consent      client.ConsentState
	ConsentError *client.Problem
	// Requests: the subject's open requests.
	RequestsShown bool
	Requests      []client.DSR
	RequestsMore  bool
}

// subjectRecord is one record of the subject.
type subjectRecord struct {
	Collection, ID string
	Values         []fieldValue
	Read           bool
	Problem        *client.Problem
}

// subjectsPage is the search form; ?sid= goes to the subject's page.
func (u *UI) subjectsPage(r *req) error {
	if sid := strings.TrimSpace(r.c.Query("sid")); sid != "" {
		if !records.ValidID(sid) {
			return r.render(fiber.StatusBadRequest, "subjects", "Subjects", subjectSearch{SID: clip(sid, 128),
				Error: userProblem(badForm("A subject id is 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'."), r.id)})
		}
		return r.c.Redirect("/ui/t/"+urlPathEscape(r.tenant())+"/subjects/"+urlPathEscape(sid), fiber.StatusSeeOther)
	}
	if !u.may(r.v, "GET", "/tenants/:id/subjects/:sid") {
		// Come here by address with a role that may not look subjects
		// up: the API's refusal of a lookup (refused before any is
		// made or audited), not a form that could only be refused.
		if _, err := r.api.Subject(r.ctx, r.tenant(), "-", ""); err != nil {
			return err
		}
	}
	return r.render(fiber.StatusOK, "subjects", "Subjects", subjectSearch{})
}

// subjectSearch is the search page's.
type subjectSearch struct {
	SID   string
	Error *client.Problem
}

// subjectPage gathers what the tenant holds about one subject, each
// section through its own API route and only when the role may call it.
func (u *UI) subjectPage(r *req) error {
	t, sid := r.tenant(), r.c.Params("sid")
	held, err := r.api.Subject(r.ctx, t, sid, "")
	switch {
	case isStatus(err, fiber.StatusNotFound):
		held = client.SubjectHeld{Subject: sid}
	case err != nil:
		return err
	}
	d := subjectData{Subject: sid, Held: len(held.Records)+len(held.Blobs) > 0}
	var wg sync.WaitGroup
	if u.may(r.v, "GET", "/tenants/:id/collections/:name/records/:rid") {
		d.RecordsShown = true
		d.Records = make([]subjectRecord, len(held.Records))
		schemas := map[string]*client.Collection{}
		var mu sync.Mutex
		schema := func(name string) (*client.Collection, error) {
			mu.Lock()
			defer mu.Unlock()
			if c, ok := schemas[name]; ok {
				return c, nil
			}
			c, err := r.api.Collection(r.ctx, t, name)
			if err != nil {
				return nil, err
			}
			schemas[name] = &c
			return &c, nil
		}
		for i, h := range held.Records {
			d.Records[i] = subjectRecord{Collection: h.Collection, ID: h.ID}
			if i >= subjectRecords {
				continue
			}
			wg.Go(func() {
				c, err := schema(h.Collection)
				if err == nil {
					var rec client.Record
					if rec, err = r.api.ReadRecord(r.ctx, t, h.Collection, h.ID, client.RecordRead{Mask: true}); err == nil {
						d.Records[i].Values, d.Records[i].Read = valuesOf(*c, rec), true
						return
					}
				}
				d.Records[i].Problem = problemFrom(err, r.id)
			})
		}
	}
	if u.may(r.v, "GET", "/tenants/:id/blobs") {
		d.BlobsShown, d.Blobs = true, held.Blobs
	}
	if u.may(r.v, "GET", "/tenants/:id/consent/:sid") {
		d.ConsentShown = true
		wg.Go(func() {
			st, err := r.api.ConsentState(r.ctx, t, sid, time.Time{})
			if err != nil {
				d.ConsentError = problemFrom(err, r.id)
				return
			}
			d.Consent = st
		})
	}
	var reqErr error
	if u.may(r.v, "GET", "/tenants/:id/requests") {
		d.RequestsShown = true
		wg.Go(func() {
			page, err := r.api.DSRs(r.ctx, t, client.DSRFilter{Status: "open", Subject: sid, Limit: subjectRequests})
			if err != nil {
				reqErr = err
				return
			}
			d.Requests, d.RequestsMore = page.Requests, page.Next != ""
		})
	}
	wg.Wait()
	if reqErr != nil {
		return reqErr
	}
	return r.render(fiber.StatusOK, "subject", "Subject "+sid, d)
}
