// Package deadline computes when a data subject's request must be answered,
// under the regulation mode a tenant chose, and which open requests are
// overdue or due soon.
//
// It exists on its own, below the service that tracks requests, because the
// arithmetic is where a compliance product is most easily wrong without
// anyone noticing: a month is not 30 days, a day is the tenant's day and
// not the server's, a day may have 23 or 25 hours, and an extension may be
// taken once, in time, with a reason, and no further than the law allows.
// Everything here is a pure function of the values it is given (the
// receipt time, the zone, the clock reading passed in); it keeps no state
// and imports nothing of the module but [validation].
//
// # Modes
//
// A [Policy] names a [Mode] — GDPR, CCPA, PIPEDA or DPDP — and, for DPDP
// only, the tenant's own response period; [Policy.Rule] turns it into the
// [Rule] the law gives: the response period, the most the one extension may
// add, and where the rule is written. The sources are cited beside each rule
// in rules.go.
//
// # Counting
//
// The day of receipt is the calendar day on which the request arrived in the
// tenant's time zone (a request received at 23:30 in Europe/Berlin belongs
// to that day there, whatever the hour in UTC), and it is not itself counted:
// a period of n days ends with the n-th day after it; a period of n months
// ends on the same day-of-month n months later or, when that month is too
// short to have that day, on its last day (31 January + 1 month = 28 or 29
// February). That is how the EU's rules on periods count months
// (Regulation (EEC, Euratom) No 1182/71, Art. 3), how supervisory
// authorities explain the GDPR's month, and how California (Civil Code §10)
// and Canada (Interpretation Act, s. 27) count days. A request is due at the
// end of its due day in the tenant's zone: [Deadline.Due] is the last
// instant before the next day begins there, found from the zone's own
// transitions, so days of 23 or 25 hours (daylight saving) and zones whose
// clocks skip midnight are counted right.
//
// One refinement of those rules is deliberately not applied — leaving it
// out only ever makes our date earlier, never later than the law's: a period that
// ends on a weekend or public holiday is not moved to the next working day
// (Regulation 1182/71 Art. 3(4), Civil Code §10–§12 allow that, but public
// holidays differ by member state and province).
//
// An extension adds its period to the end of the first one, counted from the
// first due day by the same rule: a GDPR request received on 31 January is
// due on 28 February and, extended by two months, on 28 April. Counting three
// months from receipt instead would give 30 April; the law says the period
// "may be extended by two further months", and of the two readings ours is
// never the later.
//
// # Time zones
//
// Zones come from [time.LoadLocation], which reads the host's zoneinfo
// (ZONEINFO, /usr/share/zoneinfo) and falls back on the copy embedded by
// time/tzdata when a binary imports it. This package does not import
// time/tzdata: whether the appliance binary carries its own zone database is
// the main package's decision, as the Go documentation recommends. Its tests
// do import it, so they pass on a machine without zoneinfo (a minimal
// container) as on one with it.
package deadline
