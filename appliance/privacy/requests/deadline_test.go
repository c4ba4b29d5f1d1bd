package requests_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/validation"
)

// Due dates per regulation mode, through the service: the tenant's mode,
// zone and DPDP period at receipt; the law's extension (the most, by
// default); DPDP has none. The expected dates are worked out by hand from
// the laws (deadline/rules.go cites them).
func TestDeadlinesPerMode(t *testing.T) {
	cases := []struct {
		name             string
		patch            tenants.Patch
		received         string // wall time in the zone
		due, extendedDue string // due days in the zone; "" extended: none allowed
	}{
		// GDPR Art. 12(3): one month, clamped to February's end; two more.
		{"gdpr 31 Jan in Berlin", tenants.Patch{Regulation: ptr("gdpr"), TimeZone: ptr("Europe/Berlin")}, "2026-01-31 23:30", "2026-02-28", "2026-04-28"},
		{"gdpr in a leap year", tenants.Patch{Regulation: ptr("gdpr"), TimeZone: ptr("Europe/Berlin")}, "2028-01-31 10:00", "2028-02-29", "2028-04-29"},
		// CCPA §1798.130(a)(2): 45 days, 45 more.
		{"ccpa in Los Angeles", tenants.Patch{Regulation: ptr("ccpa"), TimeZone: ptr("America/Los_Angeles")}, "2026-01-01 09:00", "2026-02-15", "2026-04-01"},
		// PIPEDA s. 8(3), 8(4): 30 days, 30 more.
		{"pipeda in Toronto", tenants.Patch{Regulation: ptr("pipeda"), TimeZone: ptr("America/Toronto")}, "2026-01-31 12:00", "2026-03-02", "2026-04-01"},
		// DPDP: the tenant's period; no extension.
		{"dpdp default in Kolkata", tenants.Patch{Regulation: ptr("dpdp"), TimeZone: ptr("Asia/Kolkata")}, "2026-01-31 23:30", "2026-03-02", ""},
		{"dpdp 7 days", tenants.Patch{Regulation: ptr("dpdp"), TimeZone: ptr("Asia/Kolkata"), DPDPResponseDays: ptr(7)}, "2026-12-28 12:00", "2027-01-04", ""},
		// The default: GDPR in UTC.
		{"defaults", tenants.Patch{}, "2026-03-31 10:00", "2026-04-30", "2026-06-30"},
	}
	e := newEnv(t, tenants.Patch{})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn, err := e.tenants.Get(ctx(t), 0, "acme")
			if err != nil {
				t.Fatal(err)
			}
			// Reset to the defaults, then apply the case's settings.
			reset := tenants.Patch{Regulation: ptr("gdpr"), TimeZone: ptr("UTC"), DPDPResponseDays: ptr(30)}
			if _, err := e.tenants.Update(ctx(t), operator, tn.ID, reset); err != nil {
				t.Fatal(err)
			}
			if c.patch != (tenants.Patch{}) {
				if _, err := e.tenants.Update(ctx(t), operator, tn.ID, c.patch); err != nil {
					t.Fatal(err)
				}
			}
			tn, _ = e.tenants.Get(ctx(t), 0, "acme")
			_, loc, err := tn.Deadlines()
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.ParseInLocation("2006-01-02 15:04", c.received, loc)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.set(at.Add(time.Minute))
			r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-" + string(rune('a'+i)), Received: at})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Due.In(loc).Format(time.DateOnly); got != c.due {
				t.Errorf("due %s, want %s", got, c.due)
			}
			if r.Due.Add(time.Nanosecond).In(loc).Format(time.DateOnly) == c.due {
				t.Errorf("due %v is not the end of its day in %s", r.Due, loc)
			}
			x, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, requests.TransitionInput{To: requests.Extended, Reason: "many requests"})
			if c.extendedDue == "" {
				var fe *validation.FieldError
				if !errors.As(err, &fe) || fe.Field != "extension" {
					t.Errorf("an extension under dpdp: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := x.Due.In(loc).Format(time.DateOnly); got != c.extendedDue || !x.Extension.OriginalDue.Equal(r.Due) {
				t.Errorf("extended due %s (original %v), want %s", got, x.Extension.OriginalDue, c.extendedDue)
			}
			// Read back on another node: the same dates.
			if got, err := e.svcs[2].Get(ctx(t), compliance, "acme", r.ID); err != nil || !got.Due.Equal(x.Due) || got.Extension.By != x.Extension.By {
				t.Errorf("read back: %+v, %v", got, err)
			}
		})
	}
}

// An extension is one, of at most the law's, decided within the first
// period; a change of the tenant's mode later does not move a pending due
// date.
func TestExtensionRules(t *testing.T) {
	e := newEnv(t, tenants.Patch{Regulation: ptr("ccpa"), TimeZone: ptr("America/Los_Angeles")})
	r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-1"})
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, requests.TransitionInput{To: requests.Extended, Reason: "complex", Extension: "10 days"})
	if err != nil || x.Extension.By != "10 days" || x.Due.Sub(r.Due) < 9*24*time.Hour {
		t.Fatalf("extend by 10 days: %+v, %v", x, err)
	}
	if x, err = e.svc.Transition(ctx(t), compliance, "acme", r.ID, verify); err != nil {
		t.Fatal(err)
	}
	var te *requests.TransitionError
	if _, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, extend); !errors.As(err, &te) || te.Why != requests.WhyNotAllowed && te.Why != requests.WhyAlreadyExtended {
		t.Errorf("a second extension: %v", err)
	}
	if _, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, requests.TransitionInput{To: requests.InProgress}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Transition(ctx(t), compliance, "acme", r.ID, extend); !errors.As(err, &te) || te.Why != requests.WhyAlreadyExtended {
		t.Errorf("a second extension from in progress: %v", err)
	}

	late, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: "guest-2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenants.Update(ctx(t), operator, "acme", tenants.Patch{Regulation: ptr("gdpr"), TimeZone: ptr("Asia/Tokyo")}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.Get(ctx(t), compliance, "acme", late.ID); err != nil || !got.Due.Equal(late.Due) || got.Regulation != "ccpa" {
		t.Errorf("after the tenant changed its mode: %+v, %v", got, err)
	}
	e.clock.set(late.Due.Add(time.Second))
	if _, err := e.svc.Transition(ctx(t), compliance, "acme", late.ID, extend); !errors.As(err, &te) || te.Why != requests.WhyTooLate {
		t.Errorf("an extension after the first period: %v", err)
	}
}

// Acceptance 4: overdue requests are listed and counted, due-soon ones
// too, with a clock moved by hand; answered requests are neither; the
// alert hook names the tenant.
func TestOverdueCounted(t *testing.T) {
	e := newEnv(t, tenants.Patch{Regulation: ptr("pipeda"), TimeZone: ptr("America/Toronto")})
	mk := func(subject string, received time.Time) requests.Request {
		t.Helper()
		e.clock.set(received)
		r, err := e.svc.Create(ctx(t), compliance, "acme", requests.Input{Kind: requests.Access, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := mk("guest-old", march3)                                 // due 2 April (30 days)
	soon := mk("guest-soon", march3.Add(5*24*time.Hour))           // due 7 April
	fresh := mk("guest-fresh", march3.Add(20*24*time.Hour))        // due 22 April
	answered := mk("guest-answered", march3.Add(-60*24*time.Hour)) // long overdue, but rejected
	if _, err := e.svc.Transition(ctx(t), compliance, "acme", answered.ID, requests.TransitionInput{To: requests.Rejected, Reason: "not the subject"}); err != nil {
		t.Fatal(err)
	}
	e.clock.set(time.Date(2026, 4, 3, 12, 0, 0, 0, time.UTC)) // old is overdue; soon is due within a week
	sum, err := e.svc.Summary(ctx(t), compliance, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Open != 3 || sum.Overdue != 1 || sum.DueSoon != 1 || sum.OnTrack != 1 || sum.ByStatus[requests.Rejected] != 1 || sum.ByStatus[requests.Received] != 3 {
		t.Errorf("summary %+v", sum)
	}
	if len(sum.OverdueIDs) != 1 || sum.OverdueIDs[0] != old.ID || len(sum.DueSoonIDs) != 1 || sum.DueSoonIDs[0] != soon.ID {
		t.Errorf("listed: overdue %v, due soon %v", sum.OverdueIDs, sum.DueSoonIDs)
	}
	for status, want := range map[string][]string{
		requests.FilterOverdue: {old.ID},
		requests.FilterDueSoon: {soon.ID},
		requests.FilterOpen:    {old.ID, soon.ID, fresh.ID},
		"rejected":             {answered.ID},
		"":                     {answered.ID, old.ID, soon.ID, fresh.ID},
	} {
		page, _, err := e.svc.List(ctx(t), compliance, "acme", requests.Filter{Status: status})
		var got []string
		for _, r := range page {
			got = append(got, r.ID)
		}
		if err != nil || len(got) != len(want) {
			t.Errorf("list %q: %v, %v; want %v", status, got, err, want)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("list %q: %v, want %v", status, got, want)
			}
		}
	}
	// Paging: one at a time, in order of arrival.
	var ids []string
	f := requests.Filter{Limit: 1}
	for {
		page, next, err := e.svc.List(ctx(t), compliance, "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			ids = append(ids, r.ID)
		}
		if next == "" {
			break
		}
		f.After = next
	}
	if len(ids) != 4 || ids[0] != answered.ID {
		t.Errorf("paged: %v", ids)
	}
	hook := e.svc.AlertHook(func(context.Context) ([]string, error) { return []string{"acme", "gone"}, nil })
	alerts, err := hook(ctx(t))
	if err != nil || len(alerts) != 1 || alerts[0].Tenant != "acme" || alerts[0].Overdue != 1 {
		t.Errorf("alert hook: %+v, %v", alerts, err)
	}
	// Answered, the overdue request no longer counts.
	e.clock.add(time.Hour)
	if _, err := e.svc.Transition(ctx(t), compliance, "acme", old.ID, requests.TransitionInput{To: requests.Rejected, Reason: "no answer to our questions"}); err != nil {
		t.Fatal(err)
	}
	if sum, err := e.svc.Tally(ctx(t), "acme"); err != nil || sum.Overdue != 0 || sum.Open != 2 {
		t.Errorf("after answering: %+v, %v", sum, err)
	}
}
