package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// breakGlassData is a tenant's break-glass page: every grant (who asked,
// why, for how long, who approved, when it ended), the tenant's policy,
// and for an operator the request form.
type breakGlassData struct {
	Grants []client.BreakGlassGrant
	// More: the list was cut at maxGrantsShown.
	More   bool
	Policy *client.BreakGlassPolicy
	// PolicyHours is the policy's longest grant in hours (the form's
	// unit).
	PolicyHours string
	Reason      string
	Minutes     string
	Error       *client.Problem
}

// maxGrantsShown bounds the table (the API keeps at most 1,000 grants,
// newest first).
const maxGrantsShown = 200

func (u *UI) breakGlassPage(r *req) error {
	return u.renderBreakGlass(r, fiber.StatusOK, "", "60", nil)
}

func (u *UI) renderBreakGlass(r *req, status int, reason, minutes string, problem *client.Problem) error {
	list, err := r.api.BreakGlassGrants(r.ctx, r.tenant())
	if err != nil {
		return err
	}
	d := breakGlassData{Grants: list.Grants, Reason: reason, Minutes: minutes, Error: problem}
	if len(d.Grants) > maxGrantsShown {
		d.Grants, d.More = d.Grants[:maxGrantsShown], true
	}
	if u.may(r.v, "GET", "/tenants/:id/breakglass-policy") {
		p, err := r.api.BreakGlassPolicy(r.ctx, r.tenant())
		if err != nil {
			return err
		}
		d.Policy = &p
		d.PolicyHours = strconv.FormatFloat(time.Duration(p.MaxDurationSeconds*int64(time.Second)).Hours(), 'f', -1, 64)
	}
	return r.render(status, "people_breakglass", "Break-glass", d)
}

// requestBreakGlass is an operator's request to read the tenant's data
// for a while, with a reason the tenant's Owner reads before approving.
func (u *UI) requestBreakGlass(r *req) error {
	reason, minutes := strings.TrimSpace(r.c.FormValue("reason")), strings.TrimSpace(r.c.FormValue("minutes"))
	again := func(p *client.Problem, status int) error { return u.renderBreakGlass(r, status, reason, minutes, p) }
	m, err := strconv.Atoi(minutes)
	if err != nil || m < 1 || m > 24*60 {
		p := problemOf(fiber.StatusBadRequest, "Check the form", "Minutes must be a whole number from 1 to 1440.", r.id)
		return again(&p, fiber.StatusBadRequest)
	}
	g, err := r.api.RequestBreakGlass(r.ctx, r.tenant(), reason, time.Duration(m)*time.Minute)
	if err != nil {
		return u.refused(r, err, again)
	}
	what := "requested: the tenant's Owner approves it or not"
	if g.State == "active" {
		what = "approved by the tenant's policy: it is active now"
	}
	return r.done("/ui/t/"+urlPathEscape(r.tenant())+"/breakglass", "Break-glass grant "+g.ID+" "+what+".")
}

func (u *UI) breakGlassAction(r *req) error {
	gid, action := r.c.Params("gid"), r.c.Params("action")
	var (
		g   client.BreakGlassGrant
		err error
	)
	switch action {
	case "approve":
		g, err = r.api.ApproveBreakGlass(r.ctx, r.tenant(), gid)
	case "revoke":
		g, err = r.api.RevokeBreakGlass(r.ctx, r.tenant(), gid)
	default:
		return u.notFound(r.c)
	}
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderBreakGlass(r, status, "", "60", p) })
	}
	return r.done("/ui/t/"+urlPathEscape(r.tenant())+"/breakglass", "Break-glass grant "+g.ID+" is "+g.State+" now.")
}

func (u *UI) setBreakGlassPolicy(r *req) error {
	hours, err := strconv.ParseFloat(strings.TrimSpace(r.c.FormValue("max_hours")), 64)
	if err != nil || hours <= 0 || hours > 24 {
		p := problemOf(fiber.StatusBadRequest, "Check the form", "The longest grant is a number of hours from 1/60 to 24.", r.id)
		return u.renderBreakGlass(r, fiber.StatusBadRequest, "", "60", &p)
	}
	pol := client.BreakGlassPolicy{AutoApprove: r.c.FormValue("auto_approve") == "on", MaxDurationSeconds: int64(hours * 3600)}
	if _, err := r.api.SetBreakGlassPolicy(r.ctx, r.tenant(), pol); err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderBreakGlass(r, status, "", "60", p) })
	}
	return r.done("/ui/t/"+urlPathEscape(r.tenant())+"/breakglass", "Break-glass policy saved.")
}
