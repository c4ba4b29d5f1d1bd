package deadline

import (
	"errors"
	"testing"
	"time"
	// The tests name zones whose rules they assert; the embedded database
	// makes them independent of the machine's zoneinfo.
	_ "time/tzdata"

	"github.com/custos/custos/internal/validation"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadZone("time_zone", name)
	if err != nil {
		t.Fatalf("zone %s: %v", name, err)
	}
	return loc
}

// local reads "2006-01-02 15:04" as a wall time in loc.
func local(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	at, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func rule(t *testing.T, p Policy) Rule {
	t.Helper()
	r, err := p.Rule()
	if err != nil {
		t.Fatalf("rule of %+v: %v", p, err)
	}
	return r
}

// TestDue checks due days per mode and extension, across months of
// different lengths, leap years and time zones. want is the due day in the
// request's zone; wantEnd, when set, the exact instant (UTC) the day ends,
// for the days whose length daylight saving changes.
func TestDue(t *testing.T) {
	cases := []struct {
		name     string
		policy   Policy
		zone     string
		received string // wall time in zone
		extend   Period
		want     string // the due day in zone
		wantEnd  string // RFC 3339 in UTC, optional
	}{
		// GDPR: a month is the same day of the next month, or its last day.
		{"gdpr mid-month", Policy{Mode: GDPR}, "Europe/Berlin", "2026-03-03 09:00", Period{}, "2026-04-03", ""},
		{"gdpr 31 Jan 2026", Policy{Mode: GDPR}, "Europe/Berlin", "2026-01-31 10:00", Period{}, "2026-02-28", "2026-02-28T22:59:59.999999999Z"},
		{"gdpr 30 Jan 2026", Policy{Mode: GDPR}, "Europe/Berlin", "2026-01-30 10:00", Period{}, "2026-02-28", ""},
		{"gdpr 29 Jan 2026", Policy{Mode: GDPR}, "Europe/Berlin", "2026-01-29 10:00", Period{}, "2026-02-28", ""},
		{"gdpr 31 Jan 2024 leap", Policy{Mode: GDPR}, "Europe/Berlin", "2024-01-31 10:00", Period{}, "2024-02-29", ""},
		{"gdpr 31 Jan 2028 leap", Policy{Mode: GDPR}, "Europe/Berlin", "2028-01-31 10:00", Period{}, "2028-02-29", ""},
		{"gdpr 31 Jan 2100 not leap", Policy{Mode: GDPR}, "Europe/Berlin", "2100-01-31 10:00", Period{}, "2100-02-28", ""},
		{"gdpr 29 Feb 2024", Policy{Mode: GDPR}, "Europe/Berlin", "2024-02-29 10:00", Period{}, "2024-03-29", ""},
		{"gdpr 29 Mar", Policy{Mode: GDPR}, "Europe/Berlin", "2026-03-29 10:00", Period{}, "2026-04-29", ""},
		{"gdpr 30 Mar", Policy{Mode: GDPR}, "Europe/Berlin", "2026-03-30 10:00", Period{}, "2026-04-30", ""},
		{"gdpr 31 Mar", Policy{Mode: GDPR}, "Europe/Berlin", "2026-03-31 10:00", Period{}, "2026-04-30", ""},
		{"gdpr 31 Dec wraps the year", Policy{Mode: GDPR}, "Europe/Berlin", "2026-12-31 10:00", Period{}, "2027-01-31", ""},
		{"gdpr 23:30 in Berlin is that day there", Policy{Mode: GDPR}, "Europe/Berlin", "2026-01-31 23:30", Period{}, "2026-02-28", ""},
		{"gdpr 00:30 in Berlin is the next day", Policy{Mode: GDPR}, "Europe/Berlin", "2026-02-01 00:30", Period{}, "2026-03-01", ""},
		// Berlin's October change: 25 October 2026 has 25 hours.
		{"gdpr due on the October change", Policy{Mode: GDPR}, "Europe/Berlin", "2026-09-25 12:00", Period{}, "2026-10-25", "2026-10-25T22:59:59.999999999Z"},
		{"gdpr due the day before the October change", Policy{Mode: GDPR}, "Europe/Berlin", "2026-09-24 12:00", Period{}, "2026-10-24", "2026-10-24T21:59:59.999999999Z"},
		// GDPR extensions: two further months after the first due day.
		{"gdpr extended 2 months", Policy{Mode: GDPR}, "Europe/Berlin", "2026-01-15 10:00", Months(2), "2026-04-15", ""},
		{"gdpr 31 Jan extended 2 months", Policy{Mode: GDPR}, "Europe/Berlin", "2026-01-31 10:00", Months(2), "2026-04-28", ""},
		{"gdpr 31 Jan extended 1 month", Policy{Mode: GDPR}, "Europe/Berlin", "2026-01-31 10:00", Months(1), "2026-03-28", ""},
		{"gdpr 30 Nov 2027 extended into leap February", Policy{Mode: GDPR}, "Europe/Berlin", "2027-11-30 10:00", Months(2), "2028-02-29", ""},
		{"gdpr 30 Nov 2099 extended into February 2100", Policy{Mode: GDPR}, "Europe/Berlin", "2099-11-30 10:00", Months(2), "2100-02-28", ""},
		{"gdpr in Chatham, due on the September change", Policy{Mode: GDPR}, "Pacific/Chatham", "2026-08-27 12:00", Period{}, "2026-09-27", "2026-09-27T10:14:59.999999999Z"},

		// CCPA: 45 calendar days, the day of receipt not counted.
		{"ccpa", Policy{Mode: CCPA}, "America/Los_Angeles", "2026-01-01 09:00", Period{}, "2026-02-15", ""},
		{"ccpa over leap February", Policy{Mode: CCPA}, "America/Los_Angeles", "2028-02-01 09:00", Period{}, "2028-03-17", ""},
		{"ccpa due on the March change", Policy{Mode: CCPA}, "America/Los_Angeles", "2026-01-22 09:00", Period{}, "2026-03-08", "2026-03-09T06:59:59.999999999Z"},
		{"ccpa 23:30 in Los Angeles is that day there", Policy{Mode: CCPA}, "America/Los_Angeles", "2026-01-22 23:30", Period{}, "2026-03-08", ""},
		{"ccpa due on the November change", Policy{Mode: CCPA}, "America/Los_Angeles", "2026-09-17 09:00", Period{}, "2026-11-01", "2026-11-02T07:59:59.999999999Z"},
		{"ccpa extended 45 days", Policy{Mode: CCPA}, "America/Los_Angeles", "2026-01-01 09:00", Days(45), "2026-04-01", ""},
		{"ccpa extended 10 days", Policy{Mode: CCPA}, "America/Los_Angeles", "2026-01-01 09:00", Days(10), "2026-02-25", ""},

		// PIPEDA: 30 days, extendable by up to 30.
		{"pipeda", Policy{Mode: PIPEDA}, "America/Toronto", "2026-01-31 12:00", Period{}, "2026-03-02", ""},
		{"pipeda in a leap year", Policy{Mode: PIPEDA}, "America/Toronto", "2024-01-31 12:00", Period{}, "2024-03-01", ""},
		{"pipeda extended 30 days", Policy{Mode: PIPEDA}, "America/Toronto", "2026-01-01 12:00", Days(30), "2026-03-02", ""},
		{"pipeda extended 10 days", Policy{Mode: PIPEDA}, "America/Toronto", "2026-01-01 12:00", Days(10), "2026-02-10", ""},
		{"pipeda due on the Berlin March change", Policy{Mode: PIPEDA}, "Europe/Berlin", "2026-02-27 12:00", Period{}, "2026-03-29", "2026-03-29T21:59:59.999999999Z"},
		{"pipeda in Chatham, due on the April change", Policy{Mode: PIPEDA}, "Pacific/Chatham", "2026-03-06 12:00", Period{}, "2026-04-05", "2026-04-05T11:14:59.999999999Z"},

		// DPDP: the tenant's period, 30 days by default.
		{"dpdp default", Policy{Mode: DPDP}, "Asia/Kolkata", "2026-01-31 12:00", Period{}, "2026-03-02", "2026-03-02T18:29:59.999999999Z"},
		{"dpdp 23:30 in Kolkata is that day there", Policy{Mode: DPDP}, "Asia/Kolkata", "2026-01-31 23:30", Period{}, "2026-03-02", ""},
		{"dpdp 7 days", Policy{Mode: DPDP, Period: Days(7)}, "Asia/Kolkata", "2026-12-28 12:00", Period{}, "2027-01-04", ""},
		{"dpdp 90 days", Policy{Mode: DPDP, Period: Days(90)}, "Asia/Kolkata", "2026-01-01 12:00", Period{}, "2026-04-01", ""},
		{"dpdp 1 day", Policy{Mode: DPDP, Period: Days(1)}, "Asia/Kolkata", "2028-02-28 12:00", Period{}, "2028-02-29", ""},

		// Zones whose clocks skip midnight, or turn it back.
		{"midnight skipped in Santiago", Policy{Mode: DPDP, Period: Days(5)}, "America/Santiago", "2026-08-31 12:00", Period{}, "2026-09-05", "2026-09-06T03:59:59.999999999Z"},
		{"midnight repeated in Santiago", Policy{Mode: DPDP, Period: Days(4)}, "America/Santiago", "2026-03-31 12:00", Period{}, "2026-04-04", "2026-04-05T03:59:59.999999999Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc := zone(t, c.zone)
			r := rule(t, c.policy)
			d, err := New(local(t, loc, c.received), r, loc)
			if err != nil {
				t.Fatal(err)
			}
			if !c.extend.IsZero() {
				if d, err = d.Extend(c.extend, "many requests at once", d.Received()); err != nil {
					t.Fatal(err)
				}
			}
			due := d.Due()
			if got := due.In(loc).Format(time.DateOnly); got != c.want {
				t.Errorf("due %s, want %s", got, c.want)
			}
			if next := dayOf(due.Add(time.Nanosecond), loc); dayOf(due, loc) == next {
				t.Errorf("due %v is not the last instant of its day in %s", due, c.zone)
			}
			if c.wantEnd != "" {
				if got := due.UTC().Format(time.RFC3339Nano); got != c.wantEnd {
					t.Errorf("due at %s, want %s", got, c.wantEnd)
				}
			}
			if c.extend.IsZero() {
				if got := Due(d.Received(), r, loc, false); !got.Equal(due) {
					t.Errorf("Due() = %v, want %v", got, due)
				}
			}
		})
	}
}

// TestDueWholeExtension checks the package-level Due with the law's whole
// extension.
func TestDueWholeExtension(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cases := []struct {
		mode Mode
		want string
	}{
		{GDPR, "2026-04-28"},
		{CCPA, "2026-05-01"},
		{PIPEDA, "2026-04-01"},
		{DPDP, "2026-03-02"}, // no extension: the period alone
	}
	for _, c := range cases {
		got := Due(local(t, berlin, "2026-01-31 12:00"), rule(t, Policy{Mode: c.mode}), berlin, true)
		if s := got.In(berlin).Format(time.DateOnly); s != c.want {
			t.Errorf("%s: due %s, want %s", c.mode, s, c.want)
		}
	}
	// A nil zone counts in UTC.
	got := Due(time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC), rule(t, Policy{Mode: GDPR}), nil, false)
	if want := time.Date(2026, 2, 28, 23, 59, 59, 999999999, time.UTC); !got.Equal(want) {
		t.Errorf("due in UTC %v, want %v", got, want)
	}
}

// TestReceivedInstantDependsOnZone: one instant, two zones, two days.
func TestReceivedInstantDependsOnZone(t *testing.T) {
	at := time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC) // 1 February 00:30 in Berlin
	r := rule(t, Policy{Mode: GDPR})
	for zoneName, want := range map[string]string{"UTC": "2026-02-28", "Europe/Berlin": "2026-03-01", "America/Los_Angeles": "2026-02-28"} {
		loc := zone(t, zoneName)
		d, err := New(at, r, loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Due().In(loc).Format(time.DateOnly); got != want {
			t.Errorf("%s: due %s, want %s", zoneName, got, want)
		}
	}
}

func TestExtendRefused(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	received := local(t, berlin, "2026-01-31 10:00")
	newDeadline := func(p Policy) Deadline {
		d, err := New(received, rule(t, p), berlin)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	extended, err := newDeadline(Policy{Mode: GDPR}).Extend(Months(2), "complex request", received.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	original := newDeadline(Policy{Mode: GDPR}).OriginalDue()
	cases := []struct {
		name   string
		d      Deadline
		by     Period
		reason string
		at     time.Time
		want   error  // a sentinel, or nil for a field error
		field  string // the field error's field
	}{
		{"double extension", extended, Months(1), "again", received.Add(2 * time.Hour), ErrAlreadyExtended, ""},
		{"gdpr beyond two months", newDeadline(Policy{Mode: GDPR}), Months(3), "too much", received, nil, "extension"},
		{"gdpr in days", newDeadline(Policy{Mode: GDPR}), Days(20), "wrong unit", received, nil, "extension"},
		{"ccpa beyond 45 days", newDeadline(Policy{Mode: CCPA}), Days(46), "too much", received, nil, "extension"},
		{"ccpa in months", newDeadline(Policy{Mode: CCPA}), Months(1), "wrong unit", received, nil, "extension"},
		{"pipeda beyond 30 days", newDeadline(Policy{Mode: PIPEDA}), Days(31), "too much", received, nil, "extension"},
		{"dpdp has none", newDeadline(Policy{Mode: DPDP}), Days(1), "none", received, nil, "extension"},
		{"zero extension", newDeadline(Policy{Mode: CCPA}), Period{}, "nothing", received, nil, "extension"},
		{"negative extension", newDeadline(Policy{Mode: CCPA}), Days(-5), "less", received, nil, "extension"},
		{"mixed units", newDeadline(Policy{Mode: CCPA}), Period{Months: 1, Days: 1}, "both", received, nil, "extension"},
		{"no reason", newDeadline(Policy{Mode: GDPR}), Months(2), " \t", received, nil, "extension_reason"},
		{"reason not UTF-8", newDeadline(Policy{Mode: GDPR}), Months(2), "\xff", received, nil, "extension_reason"},
		{"reason too long", newDeadline(Policy{Mode: GDPR}), Months(2), string(make([]byte, MaxReasonBytes+1)), received, nil, "extension_reason"},
		{"no decision time", newDeadline(Policy{Mode: GDPR}), Months(2), "why", time.Time{}, nil, "extended_at"},
		{"decided before receipt", newDeadline(Policy{Mode: GDPR}), Months(2), "why", received.Add(-time.Second), nil, "extended_at"},
		{"decided after the first period", newDeadline(Policy{Mode: GDPR}), Months(2), "why", original.Add(time.Nanosecond), ErrExtensionTooLate, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.d.Extend(c.by, c.reason, c.at)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				return
			}
			var fe *validation.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, validation.ErrInvalid) {
				t.Fatalf("err = %v, want a field error on %s", err, c.field)
			}
		})
	}
	// The first deadline is unchanged by a refused or accepted extension,
	// and the extended one keeps its extension.
	if _, ok := newDeadline(Policy{Mode: GDPR}).Extension(); ok {
		t.Error("a new deadline has an extension")
	}
	if e, ok := extended.Extension(); !ok || e.By != Months(2) || e.Reason != "complex request" {
		t.Errorf("extension = %+v, %v", e, ok)
	}
	// Deciding at the very last instant of the first period is in time.
	if _, err := newDeadline(Policy{Mode: GDPR}).Extend(Months(2), "why", original); err != nil {
		t.Errorf("extension at the original due time: %v", err)
	}
}

func TestPolicyRule(t *testing.T) {
	good := []struct {
		p        Policy
		response Period
		max      Period
	}{
		{Policy{Mode: GDPR}, Months(1), Months(2)},
		{Policy{Mode: CCPA}, Days(45), Days(45)},
		{Policy{Mode: PIPEDA}, Days(30), Days(30)},
		{Policy{Mode: DPDP}, Days(30), Period{}},
		{Policy{Mode: DPDP, Period: Days(1)}, Days(1), Period{}},
		{Policy{Mode: DPDP, Period: Days(90)}, Days(90), Period{}},
	}
	for _, c := range good {
		r := rule(t, c.p)
		if r.Mode() != c.p.Mode || r.Response() != c.response || r.MaxExtension() != c.max || r.Basis() == "" {
			t.Errorf("%+v: rule %+v", c.p, r)
		}
	}
	bad := []struct {
		p     Policy
		field string
	}{
		{Policy{Mode: "hipaa"}, "regulation_mode"},
		{Policy{Mode: "hipaa", Period: Days(30)}, "regulation_mode"},
		{Policy{Mode: "GDPR"}, "regulation_mode"}, // Policy takes a parsed mode
		{Policy{}, "regulation_mode"},
		{Policy{Mode: GDPR, Period: Days(30)}, "response_period"},
		{Policy{Mode: CCPA, Period: Days(10)}, "response_period"},
		{Policy{Mode: DPDP, Period: Days(91)}, "response_period"},
		{Policy{Mode: DPDP, Period: Days(-1)}, "response_period"},
		{Policy{Mode: DPDP, Period: Months(1)}, "response_period"},
		{Policy{Mode: DPDP, Period: Period{Months: 1, Days: 1}}, "response_period"},
	}
	for _, c := range bad {
		_, err := c.p.Rule()
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: err = %v, want a field error on %s", c.p, err, c.field)
		}
	}
}

func TestNewRefused(t *testing.T) {
	r := rule(t, Policy{Mode: GDPR})
	cases := []struct {
		received time.Time
		rule     Rule
		zone     *time.Location
		field    string
	}{
		{time.Time{}, r, time.UTC, "received_at"},
		{time.Now(), r, nil, "time_zone"},
		{time.Now(), Rule{}, time.UTC, "regulation_mode"},
	}
	for _, c := range cases {
		_, err := New(c.received, c.rule, c.zone)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("err = %v, want a field error on %s", err, c.field)
		}
	}
}

func TestLoadZone(t *testing.T) {
	for _, name := range []string{"", "Local", "Mars/Olympus_Mons", "../etc/passwd", "/etc/localtime"} {
		var fe *validation.FieldError
		if _, err := LoadZone("time_zone", name); !errors.As(err, &fe) || fe.Field != "time_zone" {
			t.Errorf("LoadZone(%q) = %v, want a field error", name, err)
		}
	}
	if loc := zone(t, "UTC"); loc != time.UTC && loc.String() != "UTC" {
		t.Errorf("UTC loaded as %v", loc)
	}
}

// TestDayStart checks, for every day of a decade in zones with and without
// daylight saving (and one whose clocks skip midnight), that a day begins
// exactly where the zone's calendar turns to it.
func TestDayStart(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham", "America/Santiago", "Australia/Lord_Howe", "Pacific/Apia"}
	for _, name := range zones {
		loc := zone(t, name)
		for d := (day{2020, 1, 1}); d.year < 2030; d = d.addDays(1) {
			s := d.start(loc)
			if got := dayOf(s, loc); got.utc().Before(d.utc()) {
				t.Fatalf("%s: %v begins at %v, which is %v there", name, d, s, got)
			}
			if got := dayOf(s.Add(-time.Nanosecond), loc); !got.utc().Before(d.utc()) {
				t.Fatalf("%s: %v begins at %v, but the instant before is already %v", name, d, s, got)
			}
		}
	}
	// Samoa dropped 30 December 2011: 29 December ends where 31 December
	// begins.
	apia := zone(t, "Pacific/Apia")
	jump := time.Date(2011, 12, 30, 10, 0, 0, 0, time.UTC)
	for _, d := range []day{{2011, 12, 30}, {2011, 12, 31}} {
		if s := d.start(apia); !s.Equal(jump) {
			t.Errorf("%v begins at %v in Apia, want %v", d, s, jump)
		}
	}
	if e := (day{2011, 12, 29}).end(apia); !e.Equal(jump.Add(-time.Nanosecond)) {
		t.Errorf("29 December 2011 ends at %v in Apia", e)
	}
}

func TestAddMonths(t *testing.T) {
	cases := []struct {
		from day
		n    int
		want day
	}{
		{day{2026, 1, 31}, 1, day{2026, 2, 28}},
		{day{2024, 1, 31}, 1, day{2024, 2, 29}},
		{day{2100, 1, 31}, 1, day{2100, 2, 28}},
		{day{2000, 1, 31}, 1, day{2000, 2, 29}},
		{day{2026, 3, 31}, 1, day{2026, 4, 30}},
		{day{2026, 5, 31}, 1, day{2026, 6, 30}},
		{day{2026, 8, 31}, 1, day{2026, 9, 30}},
		{day{2026, 12, 31}, 2, day{2027, 2, 28}},
		{day{2026, 1, 15}, 3, day{2026, 4, 15}},
		{day{2026, 11, 30}, 3, day{2027, 2, 28}},
	}
	for _, c := range cases {
		if got := c.from.addMonths(c.n); got != c.want {
			t.Errorf("%v + %d months = %v, want %v", c.from, c.n, got, c.want)
		}
	}
}
