package ui

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// maxRevealReason bounds the reason a reveal asks for, in characters
// (the API's limit on a read's reason).
const maxRevealReason = 200

// recordData is a record's page.
type recordData struct {
	Collection string
	R          client.Record
	Values     []fieldValue
	// Revealed: the record is shown in clear (the person gave Reason).
	Revealed bool
	Reason   string
	// MaxReason is the reason's limit in characters.
	MaxReason int
	Error     *client.Problem
}

// recordPage shows a record masked (mask=true): the clear values need a
// reveal with a reason.
func (u *UI) recordPage(r *req) error {
	d, err := u.recordView(r, client.RecordRead{Mask: true})
	if err != nil {
		return err
	}
	return r.render(fiber.StatusOK, "data_record", "Record "+d.R.ID, d)
}

func (u *UI) recordView(r *req, how client.RecordRead) (*recordData, error) {
	t, name, id := r.tenant(), r.c.Params("name"), r.c.Params("rid")
	c, err := r.api.Collection(r.ctx, t, name)
	if err != nil {
		return nil, err
	}
	rec, err := r.api.ReadRecord(r.ctx, t, name, id, how)
	if err != nil {
		return nil, err
	}
	return &recordData{Collection: name, R: rec, Values: valuesOf(c, rec), Revealed: !how.Mask, Reason: how.Reason, MaxReason: maxRevealReason}, nil
}

// revealRecord reads the record in clear with the person's reason, which
// the read's audit entry records. The clear record is this response
// only (no redirect: it is in no URL, and never cached).
func (u *UI) revealRecord(r *req) error {
	reason := strings.TrimSpace(r.c.FormValue("reason"))
	if problem := checkReason(reason); problem != "" {
		d, err := u.recordView(r, client.RecordRead{Mask: true})
		if err != nil {
			return err
		}
		d.Reason, d.Error = clip(reason, 4*maxRevealReason), userProblem(badForm(problem), r.id)
		return r.render(fiber.StatusBadRequest, "data_record", "Record "+d.R.ID, d)
	}
	d, err := u.recordView(r, client.RecordRead{Reason: reason})
	if err != nil {
		return err
	}
	return r.render(fiber.StatusOK, "data_record", "Record "+d.R.ID, d)
}

// checkReason is what is wrong with a reveal's reason ("" = nothing).
func checkReason(reason string) string {
	switch {
	case reason == "":
		return "Say why you need to see this record in clear: the reason is recorded in the audit log with your reveal."
	case !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxRevealReason:
		return "The reason must be at most 200 characters."
	case strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return "The reason must be one line of text."
	}
	return ""
}
