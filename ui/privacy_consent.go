package ui

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// The consent pages: the tenant's purposes with their consent rates, one
// purpose (edit, versions), one subject's consent (state, history, and
// the forms that record a grant, a withdrawal or a flag).

// Choices the forms offer (the API checks them again).
var (
	purposeBases  = []string{"consent", "legitimate-interest", "contract", "legal-obligation"}
	onWithdraw    = []string{"keep", "erase", "anonymise"}
	consentSource = []string{"web", "app", "ivr", "api", "import"}
	consentFlags  = []string{"do-not-sell", "restrict-processing"}
)

// purposeFields are the purpose form's fields.
var purposeFields = []string{"id", "description", "basis", "required", "default_on", "sale", "on_withdraw", "version"}

// consentData is the consent page's.
type consentData struct {
	Purposes []client.Purpose
	Stats    *consentStats
	Form     formValues
	Error    *client.Problem
	Bases    []string
	Rules    []string
}

func (u *UI) consentPage(r *req) error {
	if sid := strings.TrimSpace(r.c.Query("subject")); sid != "" {
		return r.c.Redirect("/ui/t/"+urlPathEscape(r.tenant())+"/privacy/consent/"+urlPathEscape(sid), fiber.StatusSeeOther)
	}
	return u.showConsent(r, fiber.StatusOK, formValues{"basis": "consent", "on_withdraw": "keep"}, nil)
}

func (u *UI) showConsent(r *req, status int, form formValues, problem *client.Problem) error {
	t := r.tenant()
	ps, err := r.api.Purposes(r.ctx, t)
	if err != nil {
		return err
	}
	d := consentData{Purposes: ps, Form: form, Error: problem, Bases: purposeBases, Rules: onWithdraw}
	if d.Stats, err = u.consentStats(r); err != nil {
		return err
	}
	return r.render(status, "privacy_consent", "Consent", d)
}

// purposeInput is the purpose form as the API's body.
func purposeInput(f formValues) client.NewPurpose {
	return client.NewPurpose{ID: strings.TrimSpace(f.Get("id")), Description: f.Get("description"), Basis: f.Get("basis"),
		Required: f.Get("required") != "", DefaultOn: f.Get("default_on") != "", Sale: f.Get("sale") != "", OnWithdraw: f.Get("on_withdraw")}
}

func (u *UI) createPurpose(r *req) error {
	t := r.tenant()
	f := readForm(r, purposeFields)
	p, err := r.api.CreatePurpose(r.ctx, t, purposeInput(f))
	if err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showConsent(r, status, f, pr)
		}
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/purposes/"+urlPathEscape(p.ID), "Purpose "+p.ID+" created at policy version 1.")
}

// purposeData is one purpose's page.
type purposeData struct {
	Purpose  client.Purpose
	Versions []client.Purpose
	Form     formValues
	Error    *client.Problem
	Bases    []string
	Rules    []string
}

func (u *UI) purposePage(r *req) error {
	return u.showPurpose(r, fiber.StatusOK, nil, nil)
}

// showPurpose renders the purpose page; form nil: the form shows the
// purpose as it is now, at its current version.
func (u *UI) showPurpose(r *req, status int, form formValues, problem *client.Problem) error {
	t, id := r.tenant(), r.param("pid")
	p, err := r.api.Purpose(r.ctx, t, id)
	if err != nil {
		return err
	}
	vs, err := r.api.PurposeVersions(r.ctx, t, id)
	if err != nil {
		return err
	}
	slices.Reverse(vs) // newest first
	if len(vs) > 50 {
		vs = vs[:50]
	}
	if form == nil {
		form = formValues{"description": p.Description, "basis": p.Basis, "on_withdraw": p.OnWithdraw, "version": strconv.Itoa(p.PolicyVersion)}
		if form["on_withdraw"] == "" {
			form["on_withdraw"] = "keep"
		}
		for k, on := range map[string]bool{"required": p.Required, "default_on": p.DefaultOn, "sale": p.Sale} {
			if on {
				form[k] = "on"
			}
		}
	}
	return r.render(status, "privacy_purpose", "Purpose "+p.ID, purposeData{Purpose: p, Versions: vs, Form: form, Error: problem, Bases: purposeBases, Rules: onWithdraw})
}

// updatePurpose replaces a purpose's terms, conditioned on the version
// the form was shown at (If-Match): a change made meanwhile by someone
// else is refused (412), not overwritten.
func (u *UI) updatePurpose(r *req) error {
	t, id := r.tenant(), r.param("pid")
	f := readForm(r, purposeFields)
	version, err := strconv.Atoi(f.Get("version"))
	if err != nil || version < 1 {
		return badForm("The form lost the policy version it was shown at; open the purpose again.")
	}
	p, err := r.api.UpdatePurpose(r.ctx, t, id, purposeInput(f), version)
	if err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showPurpose(r, status, f, pr)
		}
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/purposes/"+urlPathEscape(id), "Purpose "+id+" is now at policy version "+strconv.Itoa(p.PolicyVersion)+".")
}

// subjectConsentData is one subject's consent page.
type subjectConsentData struct {
	Subject string
	State   client.ConsentState
	// History is the ledger, newest first (the latest MaxHistory).
	History []client.ConsentEvent
	Total   int
	// Choosable are the purposes a grant or withdrawal may name (those
	// resting on the subject's agreement).
	Choosable []string
	Sources   []string
	Flags     []string
	Form      formValues
	Error     *client.Problem
}

// maxHistory bounds the events a subject's page shows.
const maxHistory = 50

func (u *UI) subjectConsentPage(r *req) error {
	return u.showSubjectConsent(r, fiber.StatusOK, formValues{"source": "web"}, nil)
}

func (u *UI) showSubjectConsent(r *req, status int, form formValues, problem *client.Problem) error {
	t, sid := r.tenant(), r.param("sid")
	st, err := r.api.ConsentState(r.ctx, t, sid, time.Time{})
	if err != nil {
		return err
	}
	d := subjectConsentData{Subject: sid, State: st, Sources: consentSource, Flags: consentFlags, Form: form, Error: problem}
	if r.u.mayAll(r.v, "GET /tenants/:id/consent/:sid/history") {
		h, err := r.api.ConsentHistory(r.ctx, t, sid)
		if err != nil {
			return err
		}
		d.Total = len(h)
		slices.Reverse(h)
		d.History = h[:min(len(h), maxHistory)]
	}
	for _, p := range st.Purposes {
		if p.Basis == "consent" || p.Basis == "legitimate-interest" {
			d.Choosable = append(d.Choosable, p.Purpose)
		}
	}
	return r.render(status, "privacy_subject", "Consent of "+sid, d)
}

// consentFields are the grant, withdrawal and flag forms' fields.
var consentFields = []string{"source", "evidence", "all", "flag", "on"}

// consentChange reads a grant or withdrawal form.
func (u *UI) consentChange(r *req, withdraw bool) error {
	t, sid := r.tenant(), r.param("sid")
	st, err := r.api.ConsentState(r.ctx, t, sid, time.Time{})
	if err != nil {
		return err
	}
	var names []string
	for _, p := range st.Purposes {
		names = append(names, p.Purpose)
	}
	f := readForm(r, consentFields, "purpose")
	ch := client.ConsentChange{Purposes: f.chosen("purpose", names), Source: f.Get("source")}
	if ev := strings.TrimSpace(f.Get("evidence")); ev != "" {
		ch.Evidence = &client.Evidence{Text: ev}
	}
	what, verb := "grant", "granted"
	if withdraw {
		what, verb = "withdrawal", "withdrawn"
		ch.All = f.Get("all") != ""
		if ch.All {
			ch.Purposes = nil
		}
	}
	if len(ch.Purposes) == 0 && !ch.All {
		return u.showSubjectConsent(r, fiber.StatusBadRequest, f, &client.Problem{Title: "Check the form",
			Detail: "Choose at least one purpose for the " + what + ".", Status: fiber.StatusBadRequest, RequestID: r.id})
	}
	if withdraw {
		_, err = r.api.Withdraw(r.ctx, t, sid, ch)
	} else {
		_, err = r.api.Grant(r.ctx, t, sid, ch)
	}
	if err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showSubjectConsent(r, status, f, pr)
		}
		return err
	}
	list := strings.Join(ch.Purposes, ", ")
	if ch.All {
		list = "every purpose"
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/consent/"+urlPathEscape(sid), "Consent "+verb+": "+list+".")
}

func (u *UI) grantConsent(r *req) error    { return u.consentChange(r, false) }
func (u *UI) withdrawConsent(r *req) error { return u.consentChange(r, true) }

func (u *UI) setConsentFlag(r *req) error {
	t, sid := r.tenant(), r.param("sid")
	f := readForm(r, consentFields)
	fl := client.ConsentFlag{Flag: f.Get("flag"), On: f.Get("on") == "on", Source: f.Get("source")}
	if ev := strings.TrimSpace(f.Get("evidence")); ev != "" {
		fl.Evidence = &client.Evidence{Text: ev}
	}
	if _, err := r.api.SetConsentFlag(r.ctx, t, sid, fl); err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showSubjectConsent(r, status, f, pr)
		}
		return err
	}
	state := "cleared"
	if fl.On {
		state = "set"
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/consent/"+urlPathEscape(sid), "Flag "+fl.Flag+" "+state+".")
}
