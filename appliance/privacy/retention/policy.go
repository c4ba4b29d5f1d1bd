package retention

import (
	"time"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/tenants"
)

// DefaultTenantDays is a tenant's default retention when it sets none:
// one year, the conservative default the product promises.
const DefaultTenantDays = tenants.DefaultRetentionDays

// day is the unit of retention periods: 24 hours, not a calendar day
// (a period is a storage limit, not a legal deadline, so summer time
// need not shift it).
const day = 24 * time.Hour

// Basis says which rule gave a collection its retention.
type Basis string

// Bases.
const (
	// BasisCollection: the collection's own retention_days.
	BasisCollection Basis = "collection"
	// BasisTenant: the tenant's default, for a collection without its
	// own — only over records that belong to a subject.
	BasisTenant Basis = "tenant"
)

// Rule is the retention of one collection's records: those last changed
// more than Days ago are erased; with SubjectOnly, only those that belong
// to a subject.
type Rule struct {
	Collection  string
	Days        int
	Basis       Basis
	SubjectOnly bool
}

// RuleFor is the retention rule of sc in a tenant whose default is
// tenantDays (0 or less: DefaultTenantDays):
//
//   - retention_days > 0: that many days, for every record of the
//     collection, with or without a subject;
//   - retention_days 0 (none of its own): the tenant's default, for the
//     records that belong to a subject; records without one are kept
//     until deleted, as before. Personal data is what the storage
//     limitation principle is about, and a record's subject is what
//     marks it as some person's; a collection of reference data (rooms,
//     rate plans) has no subject and is not the tenant's to lose after a
//     year. A collection that must keep its subjects' records longer sets
//     its own retention_days (at most 36500, a century: "forever").
func RuleFor(sc collections.Schema, tenantDays int) Rule {
	if sc.RetentionDays > 0 {
		return Rule{Collection: sc.Name, Days: sc.RetentionDays, Basis: BasisCollection}
	}
	if tenantDays <= 0 {
		tenantDays = DefaultTenantDays
	}
	return Rule{Collection: sc.Name, Days: tenantDays, Basis: BasisTenant, SubjectOnly: true}
}

// Cutoff is the moment before which a record last changed has expired
// under r, at now.
func (r Rule) Cutoff(now time.Time) time.Time {
	return now.Add(-time.Duration(r.Days) * day)
}
