package ui

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/tenancy"
)

// auditRoutes are the pages of the audit area, the same for the system
// chain (/ui/audit, operators) and a tenant's (/ui/t/:tenant/audit):
// browse and filter, an entry, verify a range, the chart of events per
// day, and the downloads of the signed checkpoint and an export bundle.
func (u *UI) auditRoutes() []route {
	var rs []route
	for _, ch := range []struct{ ui, api string }{{"/audit", "/sys/audit"}, {"/t/:tenant/audit", "/tenants/:id/audit"}} {
		ops := auditOpsOf(ch.api)
		rs = append(rs,
			route{path: ch.ui, need: ops.List, actions: []string{ops.Checkpoint, ops.Export, ops.Inclusion}, handle: u.auditPage},
			route{path: ch.ui + "/entry/:seq", need: ops.List, actions: []string{ops.Inclusion}, handle: u.auditEntryPage},
			route{path: ch.ui + "/verify", need: ops.Inclusion, actions: []string{ops.Inclusion}, handle: u.auditVerifyPage},
			// Downloads are forms (POST, with the CSRF check): an export
			// is itself an audit entry, which another site must not be
			// able to cause with a link.
			route{path: ch.ui + "/checkpoint", post: true, handle: u.auditCheckpointDownload},
			route{path: ch.ui + "/export", post: true, handle: u.auditExportDownload},
		)
	}
	return rs
}

// auditOps are the API routes of one chain ("METHOD /path" as in
// api.Operations), for need, actions and the templates' May.
type auditOps struct {
	List, Checkpoint, Export, Inclusion, Consistency string
}

func auditOpsOf(prefix string) auditOps {
	return auditOps{List: "GET " + prefix, Checkpoint: "GET " + prefix + "/checkpoint", Export: "GET " + prefix + "/export",
		Inclusion: "GET " + prefix + "/proof/inclusion", Consistency: "GET " + prefix + "/proof/consistency"}
}

// auditChain is the chain a page is about: the system chain on /ui/audit
// pages, the tenant's on /ui/t/:tenant/audit ones.
type auditChain struct {
	Tenant string // "" for the system chain
	Chain  string // the chain's name (tenancy.ChainOf, tenancy.SystemChain)
	Base   string // the list page's URL
	Ops    auditOps
}

func (r *req) auditChain() auditChain {
	if t := r.c.Params("tenant"); t != "" {
		return auditChain{Tenant: t, Chain: tenancy.ChainOf(t), Base: "/ui/t/" + urlPathEscape(t) + "/audit", Ops: auditOpsOf("/tenants/:id/audit")}
	}
	return auditChain{Chain: tenancy.SystemChain, Base: "/ui/audit", Ops: auditOpsOf("/sys/audit")}
}

// Title names the chain for headings.
func (a auditChain) Title() string {
	if a.Tenant == "" {
		return "System audit log"
	}
	return "Audit log"
}

// auditPageSize is the list's page: the API examines at most 10,000
// entries a call, so a page renders in bounded time on any chain.
const auditPageSize = 50

// auditFilter is the list's filter as the person typed it (dates as
// YYYY-MM-DD, kept for the form) and as the API takes it.
type auditFilter struct {
	Action, Actor, Target, From, To string
	// Order is "oldest" for oldest first; "" is newest first.
	Order string
}

// api turns the form's filter into the API's: a day's dates cover the
// whole day in UTC.
func (f auditFilter) api() (client.AuditFilter, error) {
	out := client.AuditFilter{Action: f.Action, Actor: f.Actor, Target: f.Target}
	for _, d := range []struct {
		name, val string
		dst       *string
		end       bool
	}{{"from", f.From, &out.From, false}, {"to", f.To, &out.To, true}} {
		if d.val == "" {
			continue
		}
		day, err := time.Parse(time.DateOnly, d.val)
		if err != nil {
			return out, badForm(fmt.Sprintf("The %q date must be a date such as 2026-01-31.", d.name))
		}
		if d.end {
			day = day.Add(24*time.Hour - time.Nanosecond)
		}
		*d.dst = day.Format(time.RFC3339Nano)
	}
	return out, nil
}

// query is the filter as a query string (with more pairs after it).
func (f auditFilter) query(more ...string) string {
	return qs(append([]string{"action", f.Action, "actor", f.Actor, "target", f.Target, "from", f.From, "to", f.To, "order", f.Order}, more...)...)
}

// Active: some filter is set (the order is none).
func (f auditFilter) Active() bool {
	f.Order = ""
	return f != auditFilter{}
}

// Oldest: the list runs oldest first (else newest first, the default).
func (f auditFilter) Oldest() bool { return f.Order == "oldest" }

// auditData is the list page's.
type auditData struct {
	View    auditChain
	Filter  auditFilter
	Entries []audit.Item
	// Next and First are the pager's links ("" when none).
	Next, First string
	// Scanned: the API stopped at its scan bound with a next page: an
	// empty page does not mean no more matches.
	Scanned bool
	// OrderHref is the list in the other order, same filter.
	OrderHref string
	Error     *client.Problem
	// Chart is the events per day by action (nil on later pages).
	Chart *auditChart
}

func (u *UI) auditPage(r *req) error {
	view := r.auditChain()
	// Values are kept as typed (bounded) for the API to judge.
	f := auditFilter{Action: clip(r.c.Query("action"), 1024), Actor: clip(r.c.Query("actor"), 1024), Target: clip(r.c.Query("target"), 1024),
		From: clip(r.c.Query("from"), 10), To: clip(r.c.Query("to"), 10)}
	cursor := "before"
	if r.c.Query("order") == "oldest" {
		f.Order, cursor = "oldest", "after"
	}
	d := auditData{View: view, Filter: f}
	other := f
	other.Order = map[string]string{"": "oldest", "oldest": ""}[f.Order]
	d.OrderHref = view.Base + other.query()
	af, err := f.api()
	if err != nil {
		return err
	}
	af.Newest = !f.Oldest()
	var at uint64
	if s := r.c.Query(cursor); s != "" {
		if at, err = strconv.ParseUint(s, 10, 64); err != nil {
			return badForm("The page cursor must be a sequence number.")
		}
		d.First = view.Base + f.query()
	}
	af.After, af.Before = at, at
	if af.Newest {
		af.After = 0
	} else {
		af.Before = 0
	}
	af.Limit = auditPageSize
	page, err := r.api.Audit(r.ctx, view.Tenant, af)
	if err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != fiber.StatusUnauthorized && f.Active() {
			// A filter the API refused: show it with the form kept.
			d.Error = problemFrom(err, r.id)
			return r.render(ae.Status, "audit", view.Title(), d)
		}
		return err
	}
	d.Entries = page.Entries
	if at == 0 {
		if d.Chart, err = r.auditChartOf(view, chartDays(r.c.Query("days"))); err != nil {
			return err
		}
	}
	if page.Next > 0 {
		d.Next = view.Base + f.query(cursor, strconv.FormatUint(page.Next, 10))
		d.Scanned = len(page.Entries) < auditPageSize
	}
	return r.render(fiber.StatusOK, "audit", view.Title(), d)
}

// auditEntryData is the entry page's.
type auditEntryData struct {
	View    auditChain
	Item    audit.Item
	Details [][2]string // sorted by key
	Leaf    string      // base64 of the leaf hash, SHA-256(0x00 ‖ raw)
	LeafHex string
	Index   uint64 // the tree's record index, seq − 1
	// TargetHref is the UI page of the entry's target ("" when none).
	TargetHref string
	// Links are the list filtered by the entry's actor, action, target,
	// and the verification of the entry.
	Links struct{ Actor, Action, Target, Verify string }
}

func (u *UI) auditEntryPage(r *req) error {
	view := r.auditChain()
	seq, err := strconv.ParseUint(r.c.Params("seq"), 10, 64)
	if err != nil || seq == 0 {
		return &userError{status: fiber.StatusNotFound, title: "Not found", detail: "An entry is named by its sequence number, from 1."}
	}
	page, err := r.api.Audit(r.ctx, view.Tenant, client.AuditFilter{After: seq - 1, Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Entries) == 0 || page.Entries[0].Seq != seq {
		return &userError{status: fiber.StatusNotFound, title: "No such entry",
			detail: fmt.Sprintf("The chain has no entry %d: it is beyond the chain's end, or was removed by retention.", seq)}
	}
	it := page.Entries[0]
	leaf := tlog.RecordHash(it.Raw)
	d := auditEntryData{View: view, Item: it, Leaf: base64.StdEncoding.EncodeToString(leaf[:]), LeafHex: fmt.Sprintf("%x", leaf[:]),
		Index: seq - 1, TargetHref: targetHref(view.Tenant, it.Entry.Target)}
	d.Links.Actor = view.Base + qs("actor", it.Entry.Actor.ID)
	d.Links.Action = view.Base + qs("action", it.Entry.Action)
	d.Links.Target = view.Base + qs("target", it.Entry.Target)
	d.Links.Verify = view.Base + "/verify" + qs("from", strconv.FormatUint(seq, 10), "to", strconv.FormatUint(seq, 10))
	for k, v := range it.Entry.Details {
		d.Details = append(d.Details, [2]string{k, v})
	}
	sort.Slice(d.Details, func(i, j int) bool { return d.Details[i][0] < d.Details[j][0] })
	return r.render(fiber.StatusOK, "audit_entry", fmt.Sprintf("Audit entry %d", seq), d)
}

// targetHref is the page of what an entry is about, for the targets that
// have one ("" otherwise: subjects are pseudonyms, and many targets name
// things that no longer exist, which the page then says).
func targetHref(tenant, target string) string {
	kind, id, ok := strings.Cut(target, ":")
	if !ok || id == "" {
		return ""
	}
	switch {
	case kind == "tenant" && tenancy.ValidID(id):
		return "/ui/t/" + urlPathEscape(id) + "/"
	case tenant == "":
		return ""
	case kind == "collection":
		return "/ui/t/" + urlPathEscape(tenant) + "/data/" + urlPathEscape(id)
	case kind == "record":
		if coll, _, ok := strings.Cut(id, "/"); ok && coll != "" {
			return "/ui/t/" + urlPathEscape(tenant) + "/data/" + urlPathEscape(coll)
		}
	}
	return ""
}

// outcomeClass is the badge class of an outcome (the badge also says the
// outcome in words).
func outcomeClass(o string) string {
	switch o {
	case audit.OutcomeSuccess:
		return "ok"
	case audit.OutcomeFailure, audit.OutcomeDenied:
		return "bad"
	default:
		return "warn"
	}
}
