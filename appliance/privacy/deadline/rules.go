package deadline

import "github.com/custos/custos/internal/validation"

// Mode is a regulation mode: the law whose deadlines a tenant's
// data-subject requests follow.
type Mode string

// The regulation modes.
const (
	GDPR   Mode = "gdpr"   // EU General Data Protection Regulation (EU) 2016/679
	CCPA   Mode = "ccpa"   // California Consumer Privacy Act, as amended by the CPRA
	PIPEDA Mode = "pipeda" // Canada's Personal Information Protection and Electronic Documents Act
	DPDP   Mode = "dpdp"   // India's Digital Personal Data Protection Act, 2023
)

// Modes returns every regulation mode, in a stable order.
func Modes() []Mode { return []Mode{GDPR, CCPA, PIPEDA, DPDP} }

// ParseMode reads a mode by its name — gdpr, ccpa, pipeda or dpdp, in any
// ASCII letter case. Anything else is a *validation.FieldError naming field.
func ParseMode(field, s string) (Mode, error) {
	for _, m := range Modes() {
		if asciiEqualFold(s, string(m)) {
			return m, nil
		}
	}
	return "", validation.Field(field, "must be one of gdpr, ccpa, pipeda, dpdp")
}

// asciiEqualFold compares s to the lower-case ASCII name, folding only
// ASCII letters (strings.EqualFold would also accept "ſ" for "s" and the
// Kelvin sign for "k").
func asciiEqualFold(s, name string) bool {
	if len(s) != len(name) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// The bounds of a DPDP tenant's response period, in days. The Act leaves
// the period to be prescribed and the Rules made under it (rule 14) put the
// outer limit at ninety days; a tenant may promise less, never more, and at
// least a day.
const (
	MinDPDPDays = 1
	MaxDPDPDays = 90
)

// DefaultDPDPDays is a DPDP tenant's response period, in days, when it sets
// none: the 30 days the product promises on its trust pages.
const DefaultDPDPDays = 30

// Policy is a tenant's choice: its regulation mode and, under DPDP only, its
// response period (zero for DefaultDPDPDays). The other laws fix their
// periods themselves.
type Policy struct {
	Mode   Mode
	Period Period
}

// Rule is what a law makes of a request's deadline: the period to respond
// in, counted from receipt, and the most one extension may add. Rules come
// only from [Policy.Rule], so a Rule is always one the law gives.
type Rule struct {
	mode         Mode
	response     Period
	maxExtension Period
	basis        string
}

// Mode returns the regulation mode the rule belongs to.
func (r Rule) Mode() Mode { return r.mode }

// Response returns the period to respond in, counted from the day of receipt.
func (r Rule) Response() Period { return r.response }

// MaxExtension returns the most the one extension may add; the zero Period
// when the law provides none.
func (r Rule) MaxExtension() Period { return r.maxExtension }

// Basis names where the rule is written, for a notice to the subject or an
// auditor: "GDPR Art. 12(3)".
func (r Rule) Basis() string { return r.basis }

// Rule returns the deadline rule of p. An unknown mode is a
// *validation.FieldError on "regulation_mode"; a period set for a mode whose
// law fixes it, or a DPDP period that is not MinDPDPDays to MaxDPDPDays
// days, is one on "response_period".
func (p Policy) Rule() (Rule, error) {
	var r Rule
	switch p.Mode {
	case GDPR:
		// GDPR Art. 12(3): the controller answers a request under Arts. 15
		// to 22 without undue delay and at the latest within one month of
		// receiving it; where needed, given how complex the requests are
		// and how many there are, it may take two further months, telling
		// the subject so, with its reasons, inside the first month.
		r = Rule{GDPR, Months(1), Months(2), "GDPR Art. 12(3)"}
	case CCPA:
		// Cal. Civ. Code §1798.130(a)(2)(A): a business answers a
		// verifiable consumer request within 45 days of receiving it, and
		// may extend that once by another 45 days where reasonably
		// necessary, telling the consumer within the first 45. CCPA
		// regulations (Cal. Code Regs. tit. 11) §7021(b): the answer is due
		// no later than 45 calendar days after receipt, the period running
		// from the day of receipt whatever verifying the request takes,
		// and the extension caps the whole at 90 days, with an
		// explanation given to the consumer. Requests to opt out of sale
		// or sharing follow a shorter rule (§7026(f): as soon as feasible,
		// within 15 business days) that this rule does not cover.
		r = Rule{CCPA, Days(45), Days(45), "Cal. Civ. Code §1798.130(a)(2); CCPA regulations §7021"}
	case PIPEDA:
		// PIPEDA s. 8(3): an organization answers a request for access no
		// later than thirty days after receiving it. s. 8(4): it may extend
		// that by at most thirty more days (when answering in time would
		// unreasonably interfere with its activities, or consultations
		// need longer), notifying the individual inside the first thirty
		// days with the new limit, its reasons and the right to complain to
		// the Commissioner. (s. 8(4)(c) also allows the time needed to
		// convert information into an alternative format; that open-ended
		// case is not modelled, so the extension here is bounded by 30.)
		r = Rule{PIPEDA, Days(30), Days(30), "PIPEDA s. 8(3), 8(4)"}
	case DPDP:
		// DPDP Act, 2023, s. 13(2): a Data Fiduciary answers a Data
		// Principal's grievance — the recourse when a request under ss. 11
		// to 14 (access, correction and erasure, nomination) goes
		// unanswered — within the period prescribed; the Rules made under
		// the Act (DPDP Rules, 2025, rule 14) set an outer limit of ninety
		// days. The period is the tenant's setting within that bound, 30
		// days unless it chose otherwise. Neither the Act nor the Rules
		// provide an extension.
		period := p.Period
		if period.IsZero() {
			period = Days(DefaultDPDPDays)
		}
		if period.Months != 0 || period.Days < MinDPDPDays || period.Days > MaxDPDPDays {
			return Rule{}, validation.Field("response_period", "must be 1 to 90 days")
		}
		return Rule{DPDP, period, Period{}, "DPDP Act 2023 s. 13(2); response period set by the tenant"}, nil
	default:
		return Rule{}, validation.Field("regulation_mode", "must be one of gdpr, ccpa, pipeda, dpdp")
	}
	if !p.Period.IsZero() {
		return Rule{}, validation.Field("response_period", "is set by law in this regulation mode; only dpdp takes a period")
	}
	return r, nil
}
