package deadline

import (
	"testing"
	"time"
)

func TestStatus(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	d, err := New(local(t, berlin, "2026-01-31 10:00"), rule(t, Policy{Mode: GDPR}), berlin)
	if err != nil {
		t.Fatal(err)
	}
	due := d.Due() // the end of 28 February in Berlin
	week := 7 * 24 * time.Hour
	cases := []struct {
		name   string
		now    time.Time
		within time.Duration
		want   Status
	}{
		{"long before", due.Add(-30 * 24 * time.Hour), week, StatusOnTrack},
		{"just outside the window", due.Add(-week - time.Nanosecond), week, StatusOnTrack},
		{"at the window's edge", due.Add(-week), week, StatusDueSoon},
		{"on the due day", local(t, berlin, "2026-02-28 23:00"), week, StatusDueSoon},
		{"at the due instant", due, week, StatusDueSoon},
		{"the next day began", due.Add(time.Nanosecond), week, StatusOverdue},
		{"a negative window is none", due.Add(-time.Hour), -week, StatusOnTrack},
		{"a zero window at the due instant", due, 0, StatusDueSoon},
	}
	for _, c := range cases {
		got := d.Status(c.now, c.within)
		if got != c.want {
			t.Errorf("%s: status %v, want %v", c.name, got, c.want)
		}
		if d.Overdue(c.now) != (c.want == StatusOverdue) || d.DueSoon(c.now, c.within) != (c.want == StatusDueSoon) {
			t.Errorf("%s: Overdue/DueSoon disagree with status %v", c.name, c.want)
		}
	}
	if s := Status(7).String(); s != "Status(7)" {
		t.Errorf("unknown status reads %q", s)
	}
	for s, want := range map[Status]string{StatusOnTrack: "on-track", StatusDueSoon: "due-soon", StatusOverdue: "overdue"} {
		if s.String() != want {
			t.Errorf("%d reads %q, want %q", int(s), s.String(), want)
		}
	}
}

// TestTally counts and lists requests of several tenants' zones and modes
// at one instant, and shows that an extension moves a request out of the
// overdue list.
func TestTally(t *testing.T) {
	berlin, la, kolkata := zone(t, "Europe/Berlin"), zone(t, "America/Los_Angeles"), zone(t, "Asia/Kolkata")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mk := func(p Policy, loc *time.Location, received string) Deadline {
		d, err := New(local(t, loc, received), rule(t, p), loc)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	late := mk(Policy{Mode: GDPR}, berlin, "2026-01-20 10:00") // due 20 February: overdue
	extended, err := mk(Policy{Mode: GDPR}, berlin, "2026-01-21 10:00").Extend(Months(2), "volume", local(t, berlin, "2026-02-01 10:00"))
	if err != nil {
		t.Fatal(err)
	}
	requests := []struct {
		key string
		d   Deadline
	}{
		{"gdpr-late", late},
		{"gdpr-extended", extended}, // due 21 April: on track
		{"ccpa-soon", mk(Policy{Mode: CCPA}, la, "2026-01-20 09:00")},      // due 6 March: due soon
		{"ccpa-later", mk(Policy{Mode: CCPA}, la, "2026-02-20 09:00")},     // due 6 April: on track
		{"dpdp-late", mk(Policy{Mode: DPDP}, kolkata, "2026-01-10 09:00")}, // due 9 February: overdue, longest
		{"dpdp-soon", mk(Policy{Mode: DPDP}, kolkata, "2026-02-01 09:00")}, // due 3 March: due soon, soonest
	}
	tally := NewTally[string](now, 7*24*time.Hour)
	for _, r := range requests {
		tally.Add(r.key, r.d)
	}
	if got, want := tally.Counts(), (Counts{OnTrack: 2, DueSoon: 2, Overdue: 2}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	keys := func(es []Entry[string]) []string {
		var ks []string
		for _, e := range es {
			ks = append(ks, e.Key)
		}
		return ks
	}
	if got := keys(tally.Overdue()); len(got) != 2 || got[0] != "dpdp-late" || got[1] != "gdpr-late" {
		t.Errorf("overdue %v, want [dpdp-late gdpr-late]", got)
	}
	if got := keys(tally.DueSoon()); len(got) != 2 || got[0] != "dpdp-soon" || got[1] != "ccpa-soon" {
		t.Errorf("due soon %v, want [dpdp-soon ccpa-soon]", got)
	}
	if e := tally.Overdue()[1]; !e.Due.Equal(late.Due()) {
		t.Errorf("listed due %v, want %v", e.Due, late.Due())
	}
	// The lists are the caller's to keep.
	tally.Overdue()[0].Key = "changed"
	if tally.Overdue()[0].Key != "dpdp-late" {
		t.Error("a listed entry changed the tally")
	}
	// An empty tally counts nothing and lists nothing.
	empty := NewTally[int](now, time.Hour)
	if empty.Counts() != (Counts{}) || len(empty.Overdue()) != 0 || len(empty.DueSoon()) != 0 {
		t.Error("an empty tally is not empty")
	}
}
