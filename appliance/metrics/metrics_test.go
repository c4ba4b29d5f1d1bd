package metrics_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/custos/custos/appliance/metrics"
	"github.com/custos/custos/appliance/privacy/requests"
)

// tallies answers Tally from a table; a tenant missing from it fails.
type tallies map[string]requests.Summary

func (t tallies) Tally(_ context.Context, tenant string) (requests.Summary, error) {
	s, ok := t[tenant]
	if !ok {
		return requests.Summary{}, errors.New("unreadable")
	}
	return s, nil
}

func gaugeOf(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return s.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// Backup age: +Inf with no backup source or no backup, else the age.
func TestBackupAge(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		last func() (time.Time, bool)
		want float64
	}{
		{"not wired", nil, math.Inf(1)},
		{"none yet", func() (time.Time, bool) { return time.Time{}, false }, math.Inf(1)},
		{"an hour ago", func() (time.Time, bool) { return now.Add(-time.Hour), true }, 3600},
	} {
		m := metrics.New(metrics.Options{Now: func() time.Time { return now }})
		m.Wire(metrics.Sources{LastBackup: c.last})
		if got, ok := gaugeOf(t, m, "custos_backup_age_seconds", nil); !ok || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, ok, c.want)
		}
	}
}

// A tenant whose tally fails keeps its previous figures; one that is
// gone is dropped.
func TestPollKeepsFiguresOnError(t *testing.T) {
	tenants := []string{"acme", "globex"}
	src := tallies{"acme": {Open: 3, DueSoon: 1, Overdue: 1}, "globex": {Open: 2}}
	m := metrics.New(metrics.Options{})
	m.Wire(metrics.Sources{Requests: src, Tenants: func(context.Context) ([]string, error) { return tenants, nil }})
	if err := m.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	delete(src, "acme")
	src["globex"] = requests.Summary{Open: 5}
	if err := m.PollOnce(context.Background()); err == nil {
		t.Error("a failed tally was not reported")
	}
	for _, c := range []struct {
		name, tenant string
		want         float64
	}{
		{"custos_dsr_open_requests", "acme", 3},
		{"custos_dsr_overdue_requests", "acme", 1},
		{"custos_dsr_open_requests", "globex", 5},
	} {
		if got, ok := gaugeOf(t, m, c.name, map[string]string{"tenant": c.tenant}); !ok || got != c.want {
			t.Errorf("%s{%s} = %v %v, want %v", c.name, c.tenant, got, ok, c.want)
		}
	}
	tenants = []string{"globex"}
	_ = m.PollOnce(context.Background())
	if _, ok := gaugeOf(t, m, "custos_dsr_open_requests", map[string]string{"tenant": "acme"}); ok {
		t.Error("a tenant gone from the list is still reported")
	}
}

// The observers count by route template and limit.
func TestObservers(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ObserveRequest("GET", "/v1/tenants/:id", 200, time.Millisecond)
	m.ObserveRequest("GET", "/v1/tenants/:id", 200, time.Millisecond)
	m.ObserveRateLimited("source")
	if n, err := testutil.GatherAndCount(m.Registry(), "custos_http_requests_total", "custos_ratelimit_rejections_total"); err != nil || n != 3 {
		t.Errorf("%d series, %v; want 3 (one route, two limits)", n, err)
	}
}
