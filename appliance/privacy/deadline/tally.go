package deadline

import (
	"slices"
	"time"
)

// Counts is how many open requests stand in each status: what a metrics
// hook reads (a gauge per status) and an alert fires on.
type Counts struct {
	OnTrack int
	DueSoon int
	Overdue int
}

// Entry is one listed request: the caller's key for it and when it is due.
type Entry[K any] struct {
	Key K
	Due time.Time
}

// Tally sorts open requests by status at one moment, counting all of them
// and listing the overdue and the due-soon ones (those on track are only
// counted, so a tally of many requests stays small). It is a plain value
// built by its caller for one reading of the clock; nothing is shared.
type Tally[K any] struct {
	now     time.Time
	within  time.Duration
	counts  Counts
	overdue []Entry[K]
	dueSoon []Entry[K]
}

// NewTally returns an empty tally at now, counting a request due within
// within of now as due soon.
func NewTally[K any](now time.Time, within time.Duration) *Tally[K] {
	return &Tally[K]{now: now, within: within}
}

// Add counts the open request key with deadline d, lists it when it is
// overdue or due soon, and returns its status.
func (t *Tally[K]) Add(key K, d Deadline) Status {
	s := d.Status(t.now, t.within)
	switch s {
	case StatusOverdue:
		t.counts.Overdue++
		t.overdue = append(t.overdue, Entry[K]{key, d.Due()})
	case StatusDueSoon:
		t.counts.DueSoon++
		t.dueSoon = append(t.dueSoon, Entry[K]{key, d.Due()})
	default:
		t.counts.OnTrack++
	}
	return s
}

// Counts returns how many requests were added in each status.
func (t *Tally[K]) Counts() Counts { return t.counts }

// Overdue lists the overdue requests, the longest overdue first (a fresh
// slice the caller may keep).
func (t *Tally[K]) Overdue() []Entry[K] { return byDue(t.overdue) }

// DueSoon lists the requests due soon, the soonest first (a fresh slice the
// caller may keep).
func (t *Tally[K]) DueSoon() []Entry[K] { return byDue(t.dueSoon) }

// byDue returns a copy of entries in order of due time, stable for equal
// times so that the caller's order breaks ties.
func byDue[K any](entries []Entry[K]) []Entry[K] {
	out := slices.Clone(entries)
	slices.SortStableFunc(out, func(a, b Entry[K]) int { return a.Due.Compare(b.Due) })
	return out
}
