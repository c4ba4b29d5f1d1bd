package deadline

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/internal/validation"
)

// MaxReasonBytes bounds an extension's reason.
const MaxReasonBytes = 1000

// Extension is the one extension of a request's deadline: how much it adds,
// why (every law here requires the subject to be told the reasons), and when
// it was decided.
type Extension struct {
	By     Period
	Reason string
	At     time.Time
}

// Deadline is the deadline of one data-subject request: when it was
// received, in which zone its days are counted, under which rule, and its
// extension if it had one. It is a value: [Deadline.Extend] returns a new
// one. Deadlines come only from [New] and Extend, which check what they are
// given, so a Deadline is always one the law allows; to restore a stored
// one, call New and Extend again with the stored values.
type Deadline struct {
	received  time.Time
	zone      *time.Location
	rule      Rule
	extension *Extension
}

// New returns the deadline of a request received at received, its days
// counted in zone (the tenant's time zone), under rule. A zero received time
// is a *validation.FieldError on "received_at", a nil zone or a zero Rule
// one on "time_zone" or "regulation_mode".
func New(received time.Time, rule Rule, zone *time.Location) (Deadline, error) {
	switch {
	case received.IsZero():
		return Deadline{}, validation.Field("received_at", "must be set")
	case zone == nil:
		return Deadline{}, validation.Field("time_zone", "must be set")
	case rule.mode == "":
		return Deadline{}, validation.Field("regulation_mode", "must be set")
	}
	return Deadline{received: received, zone: zone, rule: rule}, nil
}

// Received returns when the request was received.
func (d Deadline) Received() time.Time { return d.received }

// Zone returns the time zone the request's days are counted in.
func (d Deadline) Zone() *time.Location { return d.zone }

// Rule returns the rule the deadline follows.
func (d Deadline) Rule() Rule { return d.rule }

// Extension returns the deadline's extension, and whether it has one.
func (d Deadline) Extension() (Extension, bool) {
	if d.extension == nil {
		return Extension{}, false
	}
	return *d.extension, true
}

// Due returns the last instant of the day the request is due on, in its
// zone: the response period counted from the day of receipt, plus the
// extension if it has one. A response at or before Due is on time.
func (d Deadline) Due() time.Time {
	due := d.rule.response.after(dayOf(d.received, d.zone))
	if d.extension != nil {
		due = d.extension.By.after(due)
	}
	return due.end(d.zone)
}

// OriginalDue returns when the request was due before any extension: the
// moment by which an extension must have been decided and told.
func (d Deadline) OriginalDue() time.Time {
	return d.rule.response.after(dayOf(d.received, d.zone)).end(d.zone)
}

// Extend returns d extended by by, for reason, decided at at. A deadline is
// extended once (a second time is ErrAlreadyExtended), before its original
// period ends (else ErrExtensionTooLate), by a period of the unit the law
// states, at most the law's limit, in a mode that has an extension (else a
// *validation.FieldError on "extension"), with a reason of 1 to
// MaxReasonBytes of UTF-8 text (else one on "extension_reason"); at may not
// be before the request was received (else one on "extended_at").
func (d Deadline) Extend(by Period, reason string, at time.Time) (Deadline, error) {
	limit := d.rule.maxExtension
	switch {
	case d.extension != nil:
		return Deadline{}, ErrAlreadyExtended
	case limit.IsZero():
		return Deadline{}, validation.Field("extension", "is not provided for in this regulation mode")
	case !by.valid() || !by.sameUnit(limit) || by.count() > limit.count():
		return Deadline{}, validation.Field("extension", "must be 1 to "+limit.String())
	case strings.TrimSpace(reason) == "" || len(reason) > MaxReasonBytes || !utf8.ValidString(reason):
		return Deadline{}, validation.Field("extension_reason", fmt.Sprintf("must be 1 to %d bytes of text", MaxReasonBytes))
	case at.IsZero() || at.Before(d.received):
		return Deadline{}, validation.Field("extended_at", "must be set and not before the request was received")
	}
	if original := d.OriginalDue(); at.After(original) {
		return Deadline{}, fmt.Errorf("%w (on %s)", ErrExtensionTooLate, original.Format(time.RFC3339))
	}
	d.extension = &Extension{By: by, Reason: reason, At: at}
	return d, nil
}

// Overdue reports whether the request is past its due time at now. It says
// nothing of whether the request was answered: callers ask it of open
// requests.
func (d Deadline) Overdue(now time.Time) bool { return now.After(d.Due()) }

// DueSoon reports whether the request is not yet overdue at now but due
// within within of it (a negative within counts as zero).
func (d Deadline) DueSoon(now time.Time, within time.Duration) bool {
	return d.Status(now, within) == StatusDueSoon
}

// Status is where an open request stands against its deadline.
type Status int

// The statuses, from least to most urgent.
const (
	StatusOnTrack Status = iota
	StatusDueSoon
	StatusOverdue
)

func (s Status) String() string {
	switch s {
	case StatusOnTrack:
		return "on-track"
	case StatusDueSoon:
		return "due-soon"
	case StatusOverdue:
		return "overdue"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Status returns where the request stands at now: overdue past its due time,
// due soon when due within within of now, on track otherwise.
func (d Deadline) Status(now time.Time, within time.Duration) Status {
	due := d.Due()
	switch {
	case now.After(due):
		return StatusOverdue
	case !now.Add(max(within, 0)).Before(due):
		return StatusDueSoon
	}
	return StatusOnTrack
}

// Due returns when a request received at received is due under rule, its
// days counted in zone (UTC when nil), extended by the law's whole
// extension when extended is true: the arithmetic of [Deadline.Due] without
// a Deadline, for showing a tenant what its mode means.
func Due(received time.Time, rule Rule, zone *time.Location, extended bool) time.Time {
	if zone == nil {
		zone = time.UTC
	}
	d := Deadline{received: received, zone: zone, rule: rule}
	if extended && !rule.maxExtension.IsZero() {
		d.extension = &Extension{By: rule.maxExtension}
	}
	return d.Due()
}

// LoadZone loads a tenant's time zone by its IANA name ("Europe/Berlin",
// "UTC"). The empty name and "Local" are refused — a tenant's days must not
// depend on the host's configuration — as is any name the zone database does
// not know: a *validation.FieldError naming field.
func LoadZone(field, name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, validation.Field(field, "must be an IANA time zone name such as Europe/Berlin")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, validation.Field(field, "must be an IANA time zone name such as Europe/Berlin")
	}
	return loc, nil
}
