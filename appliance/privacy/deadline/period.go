package deadline

import (
	"strconv"
	"strings"

	"github.com/custos/custos/internal/validation"
)

// Period is a span of the calendar: a number of whole days or of whole
// months, never both (the laws state each period in one unit, and a month is
// not a number of days). The zero Period is no period at all.
type Period struct {
	Months int
	Days   int
}

// Days returns a period of n days.
func Days(n int) Period { return Period{Days: n} }

// Months returns a period of n months.
func Months(n int) Period { return Period{Months: n} }

// IsZero reports whether p is no period at all.
func (p Period) IsZero() bool { return p == Period{} }

// String writes p as ParsePeriod reads it: "1 day", "45 days", "1 month",
// "2 months"; the zero Period is "0 days".
func (p Period) String() string {
	n, unit := p.Days, "day"
	if p.Months != 0 {
		n, unit = p.Months, "month"
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.Itoa(n) + " " + unit
}

// maxPeriodDigits bounds the count a period string may carry (9999), far
// above any law's period and far below an overflow of the date arithmetic.
const maxPeriodDigits = 4

// ParsePeriod reads a period: "<n> day", "<n> days", "<n> month" or
// "<n> months" (lower case, one space), or the ISO 8601 forms "P<n>D" and
// "P<n>M"; n is 1 to 9999 written without leading zeros. Anything else is a
// *validation.FieldError naming field.
func ParsePeriod(field, s string) (Period, error) {
	bad := validation.Field(field, `must be a period such as "30 days", "1 month", "P30D" or "P1M"`)
	var digits, unit string
	if rest, iso := strings.CutPrefix(s, "P"); iso {
		if len(rest) < 2 {
			return Period{}, bad
		}
		digits, unit = rest[:len(rest)-1], rest[len(rest)-1:]
		switch unit {
		case "D":
			unit = "day"
		case "M":
			unit = "month"
		default:
			return Period{}, bad
		}
	} else {
		var ok bool
		if digits, unit, ok = strings.Cut(s, " "); !ok {
			return Period{}, bad
		}
		unit = strings.TrimSuffix(unit, "s")
	}
	n, ok := count(digits)
	if !ok {
		return Period{}, bad
	}
	switch unit {
	case "day":
		return Days(n), nil
	case "month":
		return Months(n), nil
	}
	return Period{}, bad
}

// count reads 1 to maxPeriodDigits decimal digits without a leading zero.
func count(s string) (int, bool) {
	if s == "" || len(s) > maxPeriodDigits || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// valid reports whether p is a period of a positive count of one unit.
func (p Period) valid() bool {
	return p.Days > 0 && p.Months == 0 || p.Months > 0 && p.Days == 0
}

// sameUnit reports whether p and q count the same unit.
func (p Period) sameUnit(q Period) bool { return (p.Months != 0) == (q.Months != 0) }

// count returns how many of its unit p holds.
func (p Period) count() int { return p.Days + p.Months }

// after returns the day that ends p when p starts the day after d (d itself
// is not counted): n days after d, or the same day-of-month n months after d,
// clamped to the last day of a shorter month.
func (p Period) after(d day) day {
	if p.Months != 0 {
		return d.addMonths(p.Months)
	}
	return d.addDays(p.Days)
}
