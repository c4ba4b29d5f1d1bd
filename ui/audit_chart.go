package ui

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/custos/custos/appliance/client"
)

// auditChartSeries is how many actions the chart draws on their own (the
// palette's and legend's size less one); the rest are summed as "other".
const auditChartSeries = 7

// auditChartDays are the periods the chart offers; the first is the
// default.
var auditChartDays = []int{14, 7, 30, 90}

// auditChart is the chart of events per day by action, drawn from the
// API's counters (GET …/audit/stats): one call whatever the chain's
// length, so the page renders as fast on a million entries as on ten.
type auditChart struct {
	Chart   Chart
	Days    int
	Options []auditChartOption
	Total   uint64
}

// auditChartOption is a link to the chart over another period.
type auditChartOption struct {
	Days    int
	Href    string
	Current bool
}

// auditChartOf builds the chart of view's chain over days days.
func (r *req) auditChartOf(view auditChain, days int) (*auditChart, error) {
	st, err := r.api.AuditStats(r.ctx, view.Tenant, days)
	if err != nil {
		return nil, err
	}
	c := &auditChart{Days: days}
	for _, d := range auditChartDays {
		c.Options = append(c.Options, auditChartOption{Days: d, Href: view.Base + qs("days", strconv.Itoa(d)), Current: d == days})
	}
	sort.Slice(c.Options, func(i, j int) bool { return c.Options[i].Days < c.Options[j].Days })
	c.Chart, c.Total = dayChart(st, days)
	return c, nil
}

// dayChart lays the counts out as a stacked bar chart: one label per day
// from st.From, one series per action — the auditChartSeries largest by
// total, the rest as "other".
func dayChart(st client.AuditStats, days int) (Chart, uint64) {
	ch := Chart{ID: "audit-per-day", Title: "Entries per day by action (UTC)", Kind: "bar"}
	from, err := time.Parse(time.DateOnly, st.From)
	if err != nil {
		return ch, 0
	}
	index := map[string]int{}
	for i := range days {
		d := from.AddDate(0, 0, i)
		index[d.Format(time.DateOnly)] = i
		ch.Labels = append(ch.Labels, d.Format("01-02"))
	}
	totals := map[string]uint64{}
	var all uint64
	for _, c := range st.Counts {
		if _, ok := index[c.Day]; ok {
			totals[c.Action] += c.Count
			all += c.Count
		}
	}
	actions := make([]string, 0, len(totals))
	for a := range totals {
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool {
		if totals[actions[i]] != totals[actions[j]] {
			return totals[actions[i]] > totals[actions[j]]
		}
		return actions[i] < actions[j]
	})
	named := actions[:min(len(actions), auditChartSeries)]
	if len(actions) == auditChartSeries+1 {
		named = actions // one more fits: no "other" of a single action
	}
	series := map[string]*Series{}
	for _, a := range named {
		series[a] = &Series{Name: a, Values: make([]float64, days)}
	}
	other := &Series{Name: "other", Values: make([]float64, days)}
	for _, c := range st.Counts {
		i, ok := index[c.Day]
		if !ok {
			continue
		}
		s := series[c.Action]
		if s == nil {
			s = other
		}
		s.Values[i] += float64(c.Count)
	}
	for _, a := range named {
		ch.Series = append(ch.Series, *series[a])
	}
	if len(named) < len(actions) {
		ch.Series = append(ch.Series, *other)
	}
	return ch, all
}

// chartDays is the period asked in the query, if it is one offered.
func chartDays(q string) int {
	if d, err := strconv.Atoi(q); err == nil && slices.Contains(auditChartDays, d) {
		return d
	}
	return auditChartDays[0]
}
