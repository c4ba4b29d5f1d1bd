package consent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// # Consent rates (Stats)
//
// How many subjects agree to a purpose, and how that moves, is asked of
// the whole tenant, so it must not be answered by reading every ledger.
// Every grant and withdrawal updates counters in its own transaction
// instead, so Stats reads at most days × shards values per purpose:
//
//	consent_stats / <purpose> / <day YYYY-MM-DD> 0 <shard>   the day's counts (JSON)
//	consent_stats_total / <purpose> / <shard>                 the running totals (JSON)
//
// For each purpose an event names (a withdrawal of all: every purpose on
// consent or legitimate interest that existed then) the subject's
// decision before the event — none, granted or withdrawn, from the
// ledger the append reads anyway — and the new one give the day's
// grants or withdrawals (+1), the change of the subjects with a grant in
// force (granted: +1, −1 or 0) and of the subjects who decided at all
// (decided: +1 on a subject's first decision). The rate of a day is
// granted ÷ decided at its end, in per cent: of the subjects who
// answered, the share whose consent is in force.
//
// Counters are split into statShards by the subject's blind index, so
// concurrent appends of different subjects seldom write the same key;
// each write is conditioned on the version it read, and an append whose
// counter changed meanwhile retries like one that lost its sequence
// number. Days are UTC days (events are timed in UTC).
//
// The counters describe decisions as they were made: an erasure, which
// keeps each event's minimal proof, does not rewrite them, and counting
// started with this version (events recorded before it are not in the
// totals; a withdrawal of such a grant is clamped at zero when read).
// They name no subject, but they count subjects across every attribute
// scope, so a principal restricted to a scope may not read them
// (ErrScoped), as with the audit chain.

const (
	// MaxStatsDays bounds the days one Stats call covers.
	MaxStatsDays = 366
	statShards   = 8
)

var (
	statsRoot = "consent_stats"
	totalRoot = "consent_stats_total"
)

func statsPath(purpose string) [][]byte { return raftstore.Path(statsRoot, purpose) }
func totalPath(purpose string) [][]byte { return raftstore.Path(totalRoot, purpose) }

func dayKey(day string, shard byte) []byte { return append(append([]byte(day), 0), shard) }

// shardOf is a subject's shard, from its blind index.
func shardOf(tok string) byte {
	if tok == "" {
		return 0
	}
	return tok[0] % statShards
}

// dayCounts is one purpose's counts of one day (of one shard): the
// events, and the changes of the totals.
type dayCounts struct {
	Grants      int64 `json:"g,omitempty"`
	Withdrawals int64 `json:"w,omitempty"`
	Granted     int64 `json:"dg,omitempty"`
	Decided     int64 `json:"dd,omitempty"`
}

// totals are one purpose's running totals (of one shard).
type totals struct {
	Granted int64 `json:"g"`
	Decided int64 `json:"d"`
}

// decision of a subject about one purpose.
type decision int

const (
	undecided decision = iota
	granted
	withdrawn
)

// priorDecision is what the subject's ledger said of purpose p before the
// event being appended, as the counters counted it: a withdrawal of all
// counts for the purposes that existed then.
func priorDecision(events []stored, p Purpose) decision {
	d := undecided
	for _, e := range events {
		switch {
		case e.Kind == KindWithdraw && e.All:
			if !e.At.Before(p.CreatedAt) {
				d = withdrawn
			}
		case e.Kind == KindGrant && slices.Contains(e.Purposes, p.ID):
			d = granted
		case e.Kind == KindWithdraw && slices.Contains(e.Purposes, p.ID):
			d = withdrawn
		}
	}
	return d
}

// agreeable: the purpose rests on the subject's agreement (it can be
// granted or withdrawn).
func agreeable(p Purpose) bool { return p.Basis == BasisConsent || p.Basis == BasisLegitimateInterest }

// statChange is the change ev makes to one purpose's counters.
type statChange struct {
	purpose string
	day     dayCounts
}

// statChanges are the changes ev (a grant or withdrawal, appended after
// prior) makes, one per purpose, in the order of the purposes' ids.
func statChanges(ev Event, prior []stored, known map[string]Purpose) []statChange {
	if ev.Kind != KindGrant && ev.Kind != KindWithdraw {
		return nil
	}
	names := ev.Purposes
	if ev.All {
		names = nil
		for id, p := range known {
			if agreeable(p) {
				names = append(names, id)
			}
		}
	}
	names = slices.Clone(names)
	slices.Sort(names)
	var out []statChange
	for _, n := range names {
		before := priorDecision(prior, known[n])
		var c dayCounts
		if before == undecided {
			c.Decided = 1
		}
		if ev.Kind == KindGrant {
			c.Grants = 1
			if before != granted {
				c.Granted = 1
			}
		} else {
			c.Withdrawals = 1
			if before == granted {
				c.Granted = -1
			}
		}
		out = append(out, statChange{purpose: n, day: c})
	}
	return out
}

// statWrites reads the counters the changes touch and returns their
// writes, conditioned on the versions read.
func (s *Service) statWrites(ctx context.Context, tenant, tok string, at time.Time, changes []statChange) ([]raftstore.Cond, []raftstore.Op, error) {
	if len(changes) == 0 {
		return nil, nil, nil
	}
	shard := shardOf(tok)
	dk, tk := dayKey(at.UTC().Format(time.DateOnly), shard), []byte{shard}
	var conds []raftstore.Cond
	var ops []raftstore.Op
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		for _, ch := range changes {
			var d dayCounts
			var t totals
			dv, dver, _ := r.Get(statsPath(ch.purpose), dk)
			tv, tver, _ := r.Get(totalPath(ch.purpose), tk)
			if dv != nil {
				if err := json.Unmarshal(dv, &d); err != nil {
					return fmt.Errorf("consent: stats of %s: %w", ch.purpose, err)
				}
			}
			if tv != nil {
				if err := json.Unmarshal(tv, &t); err != nil {
					return fmt.Errorf("consent: totals of %s: %w", ch.purpose, err)
				}
			}
			d.Grants += ch.day.Grants
			d.Withdrawals += ch.day.Withdrawals
			d.Granted += ch.day.Granted
			d.Decided += ch.day.Decided
			t.Granted += ch.day.Granted
			t.Decided += ch.day.Decided
			dj, _ := json.Marshal(d)
			tj, _ := json.Marshal(t)
			conds = append(conds,
				raftstore.Cond{Kind: raftstore.CondVersion, Bucket: statsPath(ch.purpose), Key: dk, Version: dver},
				raftstore.Cond{Kind: raftstore.CondVersion, Bucket: totalPath(ch.purpose), Key: tk, Version: tver})
			ops = append(ops,
				raftstore.Op{Kind: raftstore.OpPut, Bucket: statsPath(ch.purpose), Key: dk, Value: dj},
				raftstore.Op{Kind: raftstore.OpPut, Bucket: totalPath(ch.purpose), Key: tk, Value: tj})
		}
		return nil
	})
	return conds, ops, err
}

// DayStats is one purpose's day.
type DayStats struct {
	Day         string `json:"day"` // YYYY-MM-DD, UTC
	Grants      int64  `json:"grants"`
	Withdrawals int64  `json:"withdrawals"`
	// Granted and Decided are the subjects with a grant in force and the
	// subjects who decided, at the day's end.
	Granted int64 `json:"granted"`
	Decided int64 `json:"decided"`
	// Rate is Granted ÷ Decided in per cent; nil while nobody decided.
	Rate *float64 `json:"rate"`
}

// PurposeStats is one purpose's days, oldest first.
type PurposeStats struct {
	Purpose string     `json:"purpose"`
	Basis   string     `json:"basis"`
	Days    []DayStats `json:"days"`
}

// Stats are the tenant's consent rates per purpose (those resting on the
// subject's agreement) for the days from the day of to-(days-1) to the
// day of to, UTC.
func (s *Service) Stats(ctx context.Context, caller audit.Principal, tenant string, days int, to time.Time) ([]PurposeStats, error) {
	if err := callerIn(caller, tenant); err != nil {
		return nil, err
	}
	if caller.Restriction().Restricted() {
		return nil, ErrScoped
	}
	if days < 1 || days > MaxStatsDays {
		return nil, validation.Field("days", fmt.Sprintf("must be 1 to %d", MaxStatsDays))
	}
	last := to.UTC().Truncate(24 * time.Hour)
	first := last.AddDate(0, 0, 1-days)
	labels := make([]string, days)
	for i := range labels {
		labels[i] = first.AddDate(0, 0, i).Format(time.DateOnly)
	}
	var out []PurposeStats
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		ps, _, err := readPurposes(r)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if !agreeable(p) {
				continue
			}
			st, err := purposeStats(r, p, labels)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// purposeStats reads one purpose's counters for the days labels (in
// order): the totals now, and each day's changes from the first day on;
// the totals at the end of each day are found walking back from now.
func purposeStats(r tenancy.Read, p Purpose, labels []string) (PurposeStats, error) {
	var now totals
	var bad error
	r.Scan(totalPath(p.ID), nil, statShards, func(k, v []byte, _ uint64) bool {
		var t totals
		if bad = json.Unmarshal(v, &t); bad != nil {
			return false
		}
		now.Granted += t.Granted
		now.Decided += t.Decided
		return true
	})
	byDay := map[string]dayCounts{}
	after := dayKey(prevDay(labels[0]), 0xff)
	r.Scan(statsPath(p.ID), after, 0, func(k, v []byte, _ uint64) bool {
		if bad != nil || len(k) < len(time.DateOnly) {
			return bad == nil
		}
		var d dayCounts
		if bad = json.Unmarshal(v, &d); bad != nil {
			return false
		}
		day := string(k[:len(time.DateOnly)])
		c := byDay[day]
		c.Grants += d.Grants
		c.Withdrawals += d.Withdrawals
		c.Granted += d.Granted
		c.Decided += d.Decided
		byDay[day] = c
		return true
	})
	if bad != nil {
		return PurposeStats{}, fmt.Errorf("consent: stats of %s: %w", p.ID, bad)
	}
	// Changes after the last day (a clock behind the store's) come off
	// the totals first.
	end := now
	for day, c := range byDay {
		if day > labels[len(labels)-1] {
			end.Granted -= c.Granted
			end.Decided -= c.Decided
		}
	}
	out := PurposeStats{Purpose: p.ID, Basis: p.Basis, Days: make([]DayStats, len(labels))}
	for i := len(labels) - 1; i >= 0; i-- {
		c := byDay[labels[i]]
		d := DayStats{Day: labels[i], Grants: c.Grants, Withdrawals: c.Withdrawals, Granted: max(end.Granted, 0), Decided: max(end.Decided, 0)}
		if d.Decided > 0 {
			rate := float64(min(d.Granted, d.Decided)) * 100 / float64(d.Decided)
			d.Rate = &rate
		}
		out.Days[i] = d
		end.Granted -= c.Granted
		end.Decided -= c.Decided
	}
	return out, nil
}

// prevDay is the day before day (YYYY-MM-DD).
func prevDay(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return t.AddDate(0, 0, -1).Format(time.DateOnly)
}

// countMarks counts the withdrawal marks among an append's ops.
func countMarks(ops []raftstore.Op) int {
	n := 0
	for _, op := range ops {
		if slices.EqualFunc(op.Bucket, marksPath, func(a, b []byte) bool { return string(a) == string(b) }) {
			n++
		}
	}
	return n
}
