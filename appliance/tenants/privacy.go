package tenants

import (
	"time"

	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/internal/validation"
)

// Privacy settings: the defaults a tenant has until it sets its own, and
// the bounds of what it may set.
const (
	// DefaultRegulation is the regulation mode of a tenant that chose none.
	DefaultRegulation = deadline.GDPR
	// DefaultTimeZone is the zone a tenant's request deadlines are counted
	// in when it chose none.
	DefaultTimeZone = "UTC"
	// DefaultRetentionDays is how long a record of a collection without
	// its own retention_days is kept: one year, the conservative default
	// the product promises, whatever the regulation mode (see the package
	// doc on why GDPR does not force 730).
	DefaultRetentionDays = 365
	// MaxRetentionDays bounds a tenant's retention (100 years).
	MaxRetentionDays = 36500
	// maxTimeZoneLen bounds a time-zone name before it is looked up.
	maxTimeZoneLen = 64
)

// withDefaults fills the privacy settings an entry written before they
// existed lacks (or a new tenant has not chosen).
func (t Tenant) withDefaults() Tenant {
	if t.Regulation == "" {
		t.Regulation = DefaultRegulation
	}
	if t.TimeZone == "" {
		t.TimeZone = DefaultTimeZone
	}
	if t.DPDPResponseDays == 0 {
		t.DPDPResponseDays = deadline.DefaultDPDPDays
	}
	if t.RetentionDays == 0 {
		t.RetentionDays = DefaultRetentionDays
	}
	return t
}

// Deadlines is what the tenant's data-subject requests are timed by: the
// law's rule under its regulation mode (with its DPDP response period) and
// the zone whose calendar days are counted. A stored setting that no longer
// reads (a zone the host's database lost) is reported, not guessed.
func (t Tenant) Deadlines() (deadline.Rule, *time.Location, error) {
	t = t.withDefaults()
	p := deadline.Policy{Mode: t.Regulation}
	if t.Regulation == deadline.DPDP {
		p.Period = deadline.Days(t.DPDPResponseDays)
	}
	rule, err := p.Rule()
	if err != nil {
		return deadline.Rule{}, nil, err
	}
	zone, err := deadline.LoadZone("time_zone", t.TimeZone)
	if err != nil {
		return deadline.Rule{}, nil, err
	}
	return rule, zone, nil
}

// checkPrivacy validates the privacy settings of p and returns the mode
// and zone name to store (the mode in its canonical spelling).
func (p Patch) checkPrivacy() (deadline.Mode, string, error) {
	var mode deadline.Mode
	if p.Regulation != nil {
		var err error
		if mode, err = deadline.ParseMode("regulation", *p.Regulation); err != nil {
			return "", "", err
		}
	}
	var zone string
	if p.TimeZone != nil {
		if len(*p.TimeZone) > maxTimeZoneLen {
			return "", "", validation.Field("time_zone", "must be an IANA time zone name such as Europe/Berlin")
		}
		loc, err := deadline.LoadZone("time_zone", *p.TimeZone)
		if err != nil {
			return "", "", err
		}
		zone = loc.String()
	}
	if d := p.DPDPResponseDays; d != nil && (*d < deadline.MinDPDPDays || *d > deadline.MaxDPDPDays) {
		return "", "", validation.Field("dpdp_response_days", "must be 1 to 90 days")
	}
	if d := p.RetentionDays; d != nil && (*d < 1 || *d > MaxRetentionDays) {
		return "", "", validation.Field("retention_days", "must be 1 to 36500 days")
	}
	return mode, zone, nil
}

// apply sets the privacy settings of p on t (checked by checkPrivacy).
func (p Patch) applyPrivacy(t Tenant, mode deadline.Mode, zone string) Tenant {
	if p.Regulation != nil {
		t.Regulation = mode
	}
	if p.TimeZone != nil {
		t.TimeZone = zone
	}
	if p.DPDPResponseDays != nil {
		t.DPDPResponseDays = *p.DPDPResponseDays
	}
	if p.RetentionDays != nil {
		t.RetentionDays = *p.RetentionDays
	}
	return t
}
