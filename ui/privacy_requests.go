package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// The data-subject request pages: the queue (overdue first, with live
// countdowns), one request (its timeline and the actions its state
// allows), and the downloads of its export and erasure receipt.

var (
	dsrKinds    = []string{"access", "export", "portability", "rectification", "erasure", "restriction", "opt-out"}
	dsrStatuses = []string{"received", "verified", "in_progress", "extended", "completed", "rejected"}
	dsrMethods  = []string{"account", "email", "phone", "document", "in-person", "knowledge", "other"}
	// dsrFilters are the queue's status filter: the open ones (the
	// default), by deadline, every status, or all.
	dsrFilters = append([]string{"open", "overdue", "due-soon"}, append(dsrStatuses, "all")...)
	// manualKinds are completed by a person (a letter, a flag); the
	// others by the operation that does the work.
	manualKinds = []string{"access", "restriction", "opt-out"}
	exportKinds = []string{"access", "export", "portability"}
)

// queuePage is the queue's page.
const queuePage = 25

// dueSoon is the window in which an open request counts as due soon (the
// requests service's default).
const dueSoon = 7 * 24 * time.Hour

// countdown is an open request's deadline as the page shows it: the text
// is right when the page is rendered; app.js keeps it right afterwards.
type countdown struct {
	Due   time.Time
	Text  string
	Class string // "overdue", "soon" or ""
	Open  bool
}

func deadlineOf(d client.DSR, now time.Time) countdown {
	c := countdown{Due: d.Due, Open: d.Status != "completed" && d.Status != "rejected"}
	if !c.Open {
		c.Text = d.Status
		return c
	}
	left := d.Due.Sub(now)
	switch {
	case left < 0:
		c.Text, c.Class = "overdue by "+span(-left), "overdue"
	case left < dueSoon:
		c.Text, c.Class = "due in "+span(left), "soon"
	default:
		c.Text = "due in " + span(left)
	}
	return c
}

// span is a duration as app.js writes it: "3d 4h 5m".
func span(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	days, h, m := s/86400, s%86400/3600, s%3600/60
	if days > 0 {
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	}
	return fmt.Sprintf("%dh %dm", h, m)
}

// queueRow is one request of the queue.
type queueRow struct {
	client.DSR
	Deadline countdown
}

// requestsData is the queue's page.
type requestsData struct {
	Rows     []queueRow
	Summary  *client.DSRSummary
	Status   string
	Kind     string
	Filters  []string
	Kinds    []string
	Next     string
	First    string
	Form     formValues
	Error    *client.Problem
	Received string // the create form's default "received" (today)
}

func (u *UI) requestsPage(r *req) error {
	return u.showRequests(r, fiber.StatusOK, formValues{"kind": "access"}, nil)
}

func (u *UI) showRequests(r *req, status int, form formValues, problem *client.Problem) error {
	t := r.tenant()
	now := u.now()
	d := requestsData{Status: r.c.Query("status", "open"), Kind: r.c.Query("kind"), Filters: dsrFilters, Kinds: dsrKinds, Form: form, Error: problem}
	if !slices.Contains(dsrFilters, d.Status) {
		return badForm("Unknown status filter " + clip(d.Status, 40) + ".")
	}
	if d.Kind != "" && !slices.Contains(dsrKinds, d.Kind) {
		return badForm("Unknown kind " + clip(d.Kind, 40) + ".")
	}
	filter := d.Status
	if filter == "all" {
		filter = ""
	}
	after := r.c.Query("after")
	base := "/ui/t/" + urlPathEscape(t) + "/privacy/requests"
	var rows []client.DSR
	seen := map[string]bool{}
	// Overdue first: the first page of an open view starts with the
	// overdue requests, then the rest in order of arrival.
	if after == "" && (filter == "open" || filter == "") {
		od, err := r.api.DSRs(r.ctx, t, client.DSRFilter{Status: "overdue", Kind: d.Kind, Limit: queuePage})
		if err != nil {
			return err
		}
		for _, x := range od.Requests {
			seen[x.ID] = true
		}
		rows = append(rows, od.Requests...)
	}
	pg, err := r.api.DSRs(r.ctx, t, client.DSRFilter{Status: filter, Kind: d.Kind, After: after, Limit: queuePage})
	if err != nil {
		return err
	}
	for _, x := range pg.Requests {
		if !seen[x.ID] {
			rows = append(rows, x)
		}
	}
	slices.SortStableFunc(rows, func(a, b client.DSR) int { return queueOrder(a, b, now) })
	for _, x := range rows {
		d.Rows = append(d.Rows, queueRow{DSR: x, Deadline: deadlineOf(x, now)})
	}
	if pg.Next != "" {
		d.Next = base + qs("status", d.Status, "kind", d.Kind, "after", pg.Next)
	}
	if after != "" {
		d.First = base + qs("status", d.Status, "kind", d.Kind)
	}
	if u.may(r.v, "GET", "/tenants/:id/requests-summary") {
		s, err := r.api.DSRSummary(r.ctx, t)
		if err != nil {
			return err
		}
		d.Summary = &s
	}
	d.Received = now.UTC().Format("2006-01-02")
	return r.render(status, "privacy_requests", "Data-subject requests", d)
}

// queueOrder puts open overdue requests first (the most overdue first),
// then open ones by due date, then the closed ones, newest first.
func queueOrder(a, b client.DSR, now time.Time) int {
	rank := func(x client.DSR) int {
		switch {
		case x.Status == "completed" || x.Status == "rejected":
			return 2
		case x.Due.Before(now):
			return 0
		}
		return 1
	}
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return ra - rb
	}
	if ra == 2 {
		return b.Updated.Compare(a.Updated)
	}
	return a.Due.Compare(b.Due)
}

func (u *UI) createRequest(r *req) error {
	t := r.tenant()
	f := readForm(r, []string{"kind", "subject", "received"})
	in := client.NewDSR{Kind: f.Get("kind"), Subject: strings.TrimSpace(f.Get("subject"))}
	if s := strings.TrimSpace(f.Get("received")); s != "" {
		day, err := time.Parse("2006-01-02", s)
		if err != nil {
			return u.showRequests(r, fiber.StatusBadRequest, f, formProblem(r, "The date received must be a date (YYYY-MM-DD)."))
		}
		// A letter received today is received now; an earlier day at
		// its noon UTC (the API refuses a future time).
		if day.Format("2006-01-02") != u.now().UTC().Format("2006-01-02") {
			at := day.Add(12 * time.Hour)
			in.Received = &at
		}
	}
	d, err := r.api.CreateDSR(r.ctx, t, in)
	if err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showRequests(r, status, f, pr)
		}
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/requests/"+urlPathEscape(d.ID), "Request "+d.ID+" recorded; due "+d.Due.UTC().Format("2006-01-02")+".")
}

// formProblem is the UI's own refusal of a form, shown on its page.
func formProblem(r *req, detail string) *client.Problem {
	return &client.Problem{Title: "Check the form", Detail: detail, Status: fiber.StatusBadRequest, RequestID: r.id}
}

// requestData is one request's page.
type requestData struct {
	Req      client.DSR
	Deadline countdown
	// Steps are the request's history, newest first.
	Steps   []step
	Export  *client.Export
	Erasure *client.Erasure
	// Can are the actions its state allows: verify, start, extend,
	// reject, complete, export, erase, rectify.
	Can     map[string]bool
	Methods []string
	Formats []string
	Form    formValues
	Error   *client.Problem
	// Confirm is what the erasure form asks to type: the subject id (or,
	// for a person who does not see it, the request id).
	Confirm     string
	ConfirmWhat string
}

// step is one line of the timeline.
type step struct {
	At         time.Time
	From, To   string
	Label, Sub string
}

// The request's pages: the request itself, and the pages of its export,
// erasure and rectification.
const (
	reqMain    = "privacy_request"
	reqExport  = "privacy_request_export"
	reqErase   = "privacy_request_erase"
	reqRectify = "privacy_request_rectify"
)

var requestDefaults = formValues{"method": "email", "format": "json", "compression": "zip"}

func (u *UI) requestPage(r *req) error {
	return u.showRequest(r, reqMain, fiber.StatusOK, requestDefaults, nil)
}
func (u *UI) exportPage(r *req) error {
	return u.showRequest(r, reqExport, fiber.StatusOK, requestDefaults, nil)
}
func (u *UI) erasePage(r *req) error {
	return u.showRequest(r, reqErase, fiber.StatusOK, requestDefaults, nil)
}
func (u *UI) rectifyPage(r *req) error {
	return u.showRequest(r, reqRectify, fiber.StatusOK, requestDefaults, nil)
}

// showRequest renders one of the request's pages (tmpl).
func (u *UI) showRequest(r *req, tmpl string, status int, form formValues, problem *client.Problem) error {
	t, id := r.tenant(), r.param("rid")
	x, err := r.api.DSR(r.ctx, t, id)
	if err != nil {
		return err
	}
	d := requestData{Req: x, Deadline: deadlineOf(x, u.now()), Methods: dsrMethods, Formats: []string{"json", "csv", "parquet"}, Form: form, Error: problem, Can: actionsOf(x)}
	d.Confirm, d.ConfirmWhat = confirmOf(x)
	d.Steps = timeline(x)
	if res := x.Result; res != nil && res.Export != "" && u.may(r.v, "GET", "/tenants/:id/exports") {
		xs, err := r.api.Exports(r.ctx, t)
		if err != nil {
			return err
		}
		for i := range xs {
			if xs[i].ID == res.Export {
				d.Export = &xs[i]
			}
		}
	}
	if x.Kind == "erasure" && x.Status == "completed" && u.may(r.v, "GET", "/tenants/:id/requests/:rid/receipt") {
		e, err := r.api.ErasureReceipt(r.ctx, t, id)
		if err != nil {
			return err
		}
		d.Erasure = &e
	}
	title := map[string]string{reqMain: "Request ", reqExport: "Export for ", reqErase: "Erasure for ", reqRectify: "Rectification for "}[tmpl]
	return r.render(status, tmpl, title+x.ID, d)
}

// actionsOf are the steps the request's state allows (the API decides
// again; the template also asks whether the person may).
func actionsOf(x client.DSR) map[string]bool {
	open := x.Status != "completed" && x.Status != "rejected"
	verified := x.Verification != nil
	working := verified && slices.Contains([]string{"verified", "in_progress", "extended"}, x.Status)
	return map[string]bool{
		"verify":   open && !verified && (x.Status == "received" || x.Status == "extended"),
		"start":    verified && (x.Status == "verified" || x.Status == "extended"),
		"extend":   open && x.Extension == nil,
		"reject":   open,
		"complete": verified && (x.Status == "in_progress" || x.Status == "extended") && slices.Contains(manualKinds, x.Kind),
		"export":   working && slices.Contains(exportKinds, x.Kind),
		"erase":    working && x.Kind == "erasure",
		"rectify":  working && x.Kind == "rectification",
	}
}

// confirmOf is what an erasure must be confirmed with: the subject id
// when the person sees it, else the request id.
func confirmOf(x client.DSR) (value, what string) {
	if x.Subject != "" {
		return x.Subject, "the subject id"
	}
	return x.ID, "the request id"
}

var stepLabels = map[string]string{
	"received": "Received", "verified": "Identity verified", "in_progress": "Work started",
	"extended": "Deadline extended", "completed": "Completed", "rejected": "Rejected",
}

// timeline is the request's history, newest first, with what each step
// recorded.
func timeline(x client.DSR) []step {
	var out []step
	for _, h := range x.History {
		s := step{At: h.At, From: h.From, To: h.To, Label: stepLabels[h.To]}
		switch h.To {
		case "verified":
			if v := x.Verification; v != nil {
				s.Sub = "by " + v.Method
			}
		case "extended":
			if e := x.Extension; e != nil {
				s.Sub = "by " + e.By + "; was due " + e.OriginalDue.UTC().Format("2006-01-02")
				if e.Reason != "" {
					s.Sub += ": " + e.Reason
				}
			}
		case "rejected":
			s.Sub = x.Rejection
		case "completed":
			if res := x.Result; res != nil && res.Note != "" {
				s.Sub = res.Note
			}
		}
		if s.Label == "" {
			s.Label = h.To
		}
		out = append(out, s)
	}
	slices.Reverse(out)
	return out
}

// requestFields are the request page's forms' fields.
var requestFields = []string{"to", "method", "evidence", "reason", "extension", "note", "format", "compression", "confirm"}

// transitionRequest is every manual step: verify (with the evidence),
// start, extend (a reason), reject (a reason), complete (a note).
func (u *UI) transitionRequest(r *req) error {
	t, id := r.tenant(), r.param("rid")
	f := readForm(r, requestFields)
	tr := client.DSRTransition{To: f.Get("to")}
	switch tr.To {
	case "verified":
		tr.Evidence = &client.DSREvidence{Method: f.Get("method"), Text: strings.TrimSpace(f.Get("evidence"))}
	case "extended":
		tr.Reason, tr.Extension = strings.TrimSpace(f.Get("reason")), strings.TrimSpace(f.Get("extension"))
	case "rejected":
		tr.Reason = strings.TrimSpace(f.Get("reason"))
	case "completed":
		tr.Note = strings.TrimSpace(f.Get("note"))
	case "in_progress":
	default:
		return u.showRequest(r, reqMain, fiber.StatusBadRequest, f, formProblem(r, "Choose a step."))
	}
	x, err := r.api.TransitionDSR(r.ctx, t, id, tr)
	if err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showRequest(r, reqMain, status, f, pr)
		}
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/requests/"+urlPathEscape(id), "Request "+id+": "+strings.ToLower(stepLabels[x.Status])+".")
}

// exportRequest builds the subject's export (the request completes with
// it) and comes back to the request, whose page links the download.
func (u *UI) exportRequest(r *req) error {
	t, id := r.tenant(), r.param("rid")
	f := readForm(r, requestFields)
	x, err := r.api.ExportRequest(r.ctx, t, id, client.ExportOptions{Format: f.Get("format"), Compression: f.Get("compression")})
	if err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showRequest(r, reqExport, status, f, pr)
		}
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/requests/"+urlPathEscape(id), fmt.Sprintf("Export %s ready: %s, %s.", x.ID, x.FileName, humanBytes(x.Size)))
}

// eraseRequest carries out an erasure once the person typed the subject
// id (or the request id, when they do not see the subject's): the UI
// refuses before calling the API otherwise.
func (u *UI) eraseRequest(r *req) error {
	t, id := r.tenant(), r.param("rid")
	f := readForm(r, requestFields)
	x, err := r.api.DSR(r.ctx, t, id)
	if err != nil {
		return err
	}
	want, what := confirmOf(x)
	if strings.TrimSpace(f.Get("confirm")) != want {
		f["confirm"] = ""
		return u.showRequest(r, reqErase, fiber.StatusBadRequest, f, formProblem(r, "Nothing was erased: type "+what+" exactly to confirm the erasure."))
	}
	e, err := r.api.Erase(r.ctx, t, id)
	if err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showRequest(r, reqErase, status, f, pr)
		}
		return err
	}
	var n uint64
	for _, c := range e.Counts {
		n += c
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/requests/"+urlPathEscape(id), fmt.Sprintf("Erased: %d items; the signed receipt is ready to download.", n))
}

func (u *UI) rectifyRequest(r *req) error {
	t, id := r.tenant(), r.param("rid")
	if _, err := r.api.RectifyDSR(r.ctx, t, id); err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showRequest(r, reqRectify, status, formValues{}, pr)
		}
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/requests/"+urlPathEscape(id), "Rectification applied; the request is completed.")
}
