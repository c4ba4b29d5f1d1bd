package ui

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// The retention page: the tenant's privacy settings (regulation mode,
// time zone, DPDP response period, default retention of records — PATCH
// of the tenant) and each collection's own retention.

var regulations = []string{"gdpr", "ccpa", "pipeda", "dpdp"}

// retentionData is the retention page's.
type retentionData struct {
	// Tenant is nil when the person may not read the tenant's settings.
	Tenant      *client.Tenant
	Collections []retentionRow
	Regulations []string
	Form        formValues
	Error       *client.Problem
}

// retentionRow is one collection: its own retention, or the tenant's.
type retentionRow struct {
	Name      string
	Days      int
	Inherited bool
	Purposes  []string
}

func (u *UI) retentionPage(r *req) error {
	return u.showRetention(r, fiber.StatusOK, nil, nil)
}

func (u *UI) showRetention(r *req, status int, form formValues, problem *client.Problem) error {
	t := r.tenant()
	d := retentionData{Regulations: regulations, Form: form, Error: problem}
	def := 0
	if u.may(r.v, "GET", "/tenants/:id") {
		tn, err := r.api.Tenant(r.ctx, t)
		if err != nil {
			return err
		}
		d.Tenant, def = &tn, tn.RetentionDays
		if d.Form == nil {
			d.Form = formValues{"regulation": tn.Regulation, "time_zone": tn.TimeZone,
				"retention_days": strconv.Itoa(tn.RetentionDays), "dpdp_response_days": ""}
			if tn.Regulation == "" {
				d.Form["regulation"] = "gdpr"
			}
			if tn.DPDPResponseDays > 0 {
				d.Form["dpdp_response_days"] = strconv.Itoa(tn.DPDPResponseDays)
			}
		}
	}
	cs, err := r.api.Collections(r.ctx, t)
	if err != nil {
		return err
	}
	for _, c := range cs.Collections {
		row := retentionRow{Name: c.Name, Days: c.RetentionDays, Purposes: c.Purposes}
		if row.Days == 0 {
			row.Days, row.Inherited = def, true
		}
		d.Collections = append(d.Collections, row)
	}
	return r.render(status, "privacy_retention", "Retention", d)
}

// updateRetention changes the tenant's privacy settings: only the fields
// that differ from the tenant's are sent.
func (u *UI) updateRetention(r *req) error {
	t := r.tenant()
	f := readForm(r, []string{"regulation", "time_zone", "retention_days", "dpdp_response_days"})
	var p client.TenantPatch
	if v := strings.TrimSpace(f.Get("regulation")); v != "" {
		p.Regulation = &v
	}
	if v := strings.TrimSpace(f.Get("time_zone")); v != "" {
		p.TimeZone = &v
	}
	for _, fld := range []struct {
		name string
		dst  **int
	}{{"retention_days", &p.RetentionDays}, {"dpdp_response_days", &p.DPDPResponseDays}} {
		v := strings.TrimSpace(f.Get(fld.name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return u.showRetention(r, fiber.StatusBadRequest, f, formProblem(r, fld.name+" must be a whole number of days."))
		}
		*fld.dst = &n
	}
	if _, err := r.api.UpdateTenant(r.ctx, t, p); err != nil {
		if pr, status, ok := refusal(err, r.id); ok {
			return u.showRetention(r, status, f, pr)
		}
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/privacy/retention", "Privacy settings saved.")
}
