package ui

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// The consent page's chart: the rate of each purpose (of the subjects
// who decided, the share whose grant is in force) at the end of each day,
// from GET /v1/tenants/{id}/consent-stats — one call, whatever the size
// of the ledgers.

// statsWindows are the periods the chart offers, in days.
var statsWindows = []int{7, 14, 30, 90}

// consentStats is the consent page's chart and the table of each
// purpose's figures over the period.
type consentStats struct {
	Chart   Chart
	Days    int
	Windows []int
	Rows    []statsRow
	// Refused is the API's reason when it answered no figures (a
	// principal with attribute scopes).
	Refused *client.Problem
}

// statsRow is one purpose over the period.
type statsRow struct {
	Purpose, Basis      string
	Grants, Withdrawals int64
	// Granted and Decided are at the end of the last day; Rate is "—"
	// while nobody decided.
	Granted, Decided int64
	Rate             string
}

// consentStats reads the tenant's consent rates (nil when the person may
// not read them).
func (u *UI) consentStats(r *req) (*consentStats, error) {
	if !u.may(r.v, "GET", "/tenants/:id/consent-stats") {
		return nil, nil
	}
	days := 30
	if v, err := strconv.Atoi(r.c.Query("days")); err == nil && slices.Contains(statsWindows, v) {
		days = v
	}
	st, err := r.api.ConsentStats(r.ctx, r.tenant(), days)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == fiber.StatusForbidden {
		return &consentStats{Days: days, Windows: statsWindows, Refused: problemFrom(err, r.id)}, nil
	}
	if err != nil {
		return nil, err
	}
	return buildConsentStats(st, days), nil
}

// buildConsentStats makes the chart (one line per purpose, 0–100 %) and
// the table. A day before anybody decided is drawn at 0 and its rate
// shown as "—" in the table.
func buildConsentStats(st client.ConsentStats, days int) *consentStats {
	out := &consentStats{Days: days, Windows: statsWindows,
		Chart: Chart{ID: "consent-rates", Title: fmt.Sprintf("Consent rate per purpose, last %d days (%% of the subjects who decided whose grant is in force)", days),
			Kind: "line", Unit: "%", Max: 100}}
	for i, p := range st.Purposes {
		s := Series{Name: p.Purpose}
		row := statsRow{Purpose: p.Purpose, Basis: p.Basis, Rate: "—"}
		for _, d := range p.Days {
			if i == 0 {
				out.Chart.Labels = append(out.Chart.Labels, dayLabel(d.Day))
			}
			v := 0.0
			if d.Rate != nil {
				v = *d.Rate
			}
			s.Values = append(s.Values, v)
			row.Grants += d.Grants
			row.Withdrawals += d.Withdrawals
		}
		if n := len(p.Days); n > 0 {
			last := p.Days[n-1]
			row.Granted, row.Decided = last.Granted, last.Decided
			if last.Rate != nil {
				row.Rate = short(*last.Rate) + "%"
			}
		}
		out.Chart.Drawn = out.Chart.Drawn || row.Decided > 0 || row.Grants+row.Withdrawals > 0
		out.Chart.Series = append(out.Chart.Series, s)
		out.Rows = append(out.Rows, row)
	}
	return out
}

// dayLabel is "MM-DD" of a YYYY-MM-DD day.
func dayLabel(day string) string {
	if len(day) == len("2006-01-02") {
		return day[5:]
	}
	return day
}
