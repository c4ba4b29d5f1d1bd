package deadline

import "time"

// day is a civil date — a day of the calendar, not an instant. Arithmetic on
// it is done in UTC, where every day has 24 hours, and only the final step
// ([day.start]) asks a zone when the day begins there.
type day struct {
	year  int
	month time.Month
	dom   int
}

// dayOf returns the calendar day t falls on in loc.
func dayOf(t time.Time, loc *time.Location) day {
	y, m, d := t.In(loc).Date()
	return day{y, m, d}
}

func (d day) utc() time.Time { return time.Date(d.year, d.month, d.dom, 0, 0, 0, 0, time.UTC) }

// addDays returns the day n days after d.
func (d day) addDays(n int) day { return dayOf(d.utc().AddDate(0, 0, n), time.UTC) }

// addMonths returns the same day-of-month n months after d or, when that
// month has no such day (31 January + 1 month), that month's last day.
// time.AddDate would roll over into the month after (3 March), which is not
// how a period of months is counted.
func (d day) addMonths(n int) day {
	first := time.Date(d.year, d.month+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	return day{first.Year(), first.Month(), min(d.dom, daysIn(first.Year(), first.Month()))}
}

// daysIn returns the number of days of month m of year y (the Gregorian
// calendar: February has 29 days in years divisible by 4, except centuries
// not divisible by 400 — 2024 and 2028 are leap years, 2100 is not).
func daysIn(y int, m time.Month) int { return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day() }

// start returns the first instant at which the calendar day in loc is d or
// later. Usually that is local midnight; where the clocks skip midnight (a
// daylight-saving change at 00:00, or Samoa dropping 30 December 2011) it is
// the transition itself. time.Date leaves the choice of offset for a
// non-existent local time unspecified, so start walks the zone's periods of
// constant offset (time.Time.ZoneBounds) from well before the day: in each,
// local time runs with the instant, so the day begins either at local
// midnight under that period's offset, if that instant lies within it, or at
// the period's start, if the clock jumped past midnight into it.
func (d day) start(loc *time.Location) time.Time {
	midnight := d.utc()
	guess := time.Date(d.year, d.month, d.dom, 0, 0, 0, 0, loc)
	// No zone's offset has ever changed by 48 hours at once, so at
	// guess-48h the local day is still before d.
	t := guess.Add(-48 * time.Hour)
	for range 32 {
		_, end := t.ZoneBounds()
		_, offset := t.Zone()
		at := midnight.Add(-time.Duration(offset) * time.Second)
		if at.Before(t) {
			// Local time at t is already past midnight of d: the clock
			// jumped over it at the start of this period.
			return t
		}
		if end.IsZero() || at.Before(end) {
			return at
		}
		t = end
	}
	// Unreachable for any real zone (a few transitions in 48 hours at
	// most); time.Date's answer is the best left.
	return guess
}

// end returns the last instant of day d in loc: one nanosecond before the
// next day begins there.
func (d day) end(loc *time.Location) time.Time {
	return d.addDays(1).start(loc).Add(-time.Nanosecond)
}
