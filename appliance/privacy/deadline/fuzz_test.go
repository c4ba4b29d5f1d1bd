package deadline

import (
	"errors"
	"strings"
	"testing"

	"github.com/custos/custos/internal/validation"
)

// FuzzParseMode: any string is a mode or a field error; a mode's name is the
// input in lower case, and reads back as itself.
func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"gdpr", "GDPR", "Ccpa", "pipeda", "dpdp", "", "hipaa", "gdpr ", "ſ", "dpdP\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode("regulation_mode", s)
		if err != nil {
			var fe *validation.FieldError
			if !errors.As(err, &fe) || fe.Field != "regulation_mode" || m != "" {
				t.Fatalf("ParseMode(%q) = %q, %v", s, m, err)
			}
			return
		}
		if string(m) != strings.ToLower(s) {
			t.Fatalf("ParseMode(%q) = %q", s, m)
		}
		if again, err := ParseMode("regulation_mode", string(m)); err != nil || again != m {
			t.Fatalf("%q reads back as %q, %v", m, again, err)
		}
		if _, err := (Policy{Mode: m}).Rule(); err != nil {
			t.Fatalf("mode %q has no rule: %v", m, err)
		}
	})
}

// FuzzParsePeriod: any string is a period or a field error; a period is one
// positive unit of at most 9999 and its String reads back as itself.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"30 days", "1 day", "1 month", "2 months", "P30D", "P1M", "P", "PD", "0 days", "030 days", "9999 days", "10000 days", "30  days", "30 Days", "-1 days", "P-1D", "1 monthss"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod("response_period", s)
		if err != nil {
			var fe *validation.FieldError
			if !errors.As(err, &fe) || fe.Field != "response_period" || !p.IsZero() {
				t.Fatalf("ParsePeriod(%q) = %+v, %v", s, p, err)
			}
			return
		}
		if !p.valid() || p.count() > 9999 {
			t.Fatalf("ParsePeriod(%q) = %+v", s, p)
		}
		if again, err := ParsePeriod("response_period", p.String()); err != nil || again != p {
			t.Fatalf("%+v writes %q, which reads back as %+v, %v", p, p.String(), again, err)
		}
		// Whatever the period, the arithmetic stays on the calendar.
		from := day{2026, 1, 31}
		if to := p.after(from); !from.utc().Before(to.utc()) {
			t.Fatalf("%v + %v = %v", from, p, to)
		}
	})
}

func TestParsePeriod(t *testing.T) {
	good := map[string]Period{
		"1 day": Days(1), "30 days": Days(30), "45 day": Days(45), "9999 days": Days(9999),
		"1 month": Months(1), "2 months": Months(2), "P30D": Days(30), "P2M": Months(2),
	}
	for s, want := range good {
		if got, err := ParsePeriod("period", s); err != nil || got != want {
			t.Errorf("ParsePeriod(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "30", "days", "0 days", "030 days", "10000 days", "30  days", "30 Days", "-1 days", "+1 days", "1 week", "1 year", "P", "PD", "P0D", "P1Y", "p1d", "P1DT1H", "1 monthss", " 1 day", "1 day "} {
		if p, err := ParsePeriod("period", s); err == nil {
			t.Errorf("ParsePeriod(%q) = %+v, want an error", s, p)
		}
	}
	for p, want := range map[Period]string{Days(1): "1 day", Days(30): "30 days", Months(1): "1 month", Months(2): "2 months", {}: "0 days"} {
		if p.String() != want {
			t.Errorf("%+v reads %q, want %q", p, p.String(), want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"gdpr": GDPR, "GDPR": GDPR, "Ccpa": CCPA, "PIPEDA": PIPEDA, "dpdp": DPDP} {
		if got, err := ParseMode("mode", s); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "hipaa", " gdpr", "gdpr\x00", "ccpa-2020", "pipeda\n"} {
		if got, err := ParseMode("mode", s); err == nil {
			t.Errorf("ParseMode(%q) = %q, want an error", s, got)
		}
	}
}
