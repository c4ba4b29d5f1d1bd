package audit

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/custos/custos/raftstore"
)

// Events per day by action are counted as entries are appended, not
// computed from the entries when asked: a chart of the last N days must
// cost the same on a chain of a million entries as on one of ten, and any
// scan of entries (even bounded, even without decoding) grows with the
// traffic of the days shown. So the store keeps counters
// (raftstore.Config.ChainTally, set by the node to TallyKey): each append
// adds one to the count of its chain under "<day>/<action>", in the
// transaction that appends it — on every node alike, since the key is a
// pure function of the entry's bytes. Stats then reads at most days ×
// actions counters (a few hundred), in key order.
//
// The counts are of entries appended: an entry later pruned by retention
// stays counted (a chart of the past does not change when old entries go),
// and entries appended before a node ran a version with the counters are
// not counted. Days are UTC days of the entry's own time.

// tallyPrefix is how every canonical entry starts; the day follows.
var (
	tallyPrefix = []byte(`{"v":1,"time":"`)
	tallyAction = []byte(`},"action":"`)
)

// TallyKey is the counter an appended entry adds to: "YYYY-MM-DD/action",
// read straight from the canonical encoding (the day is at a fixed
// offset; the action follows the actor object and needs no unescaping,
// being of a-z 0-9 . _ -). nil for bytes that are not an entry of format
// v1. It is raftstore.Config.ChainTally's function: cheap, pure, total.
func TallyKey(_, data []byte) []byte {
	const day = len("2006-01-02")
	if !bytes.HasPrefix(data, tallyPrefix) || len(data) < len(tallyPrefix)+day+1 {
		return nil
	}
	d := data[len(tallyPrefix) : len(tallyPrefix)+day]
	if data[len(tallyPrefix)+day] != 'T' || !isDay(d) {
		return nil
	}
	// In a canonical entry every '"' inside a string is escaped, so the
	// first unescaped `},"action":"` is the action's key.
	i := bytes.Index(data, tallyAction)
	if i < 0 {
		return nil
	}
	rest := data[i+len(tallyAction):]
	j := bytes.IndexByte(rest, '"')
	if j < 1 || j > 64 || !name(string(rest[:j]), 64) {
		return nil
	}
	key := make([]byte, 0, day+1+j)
	return append(append(append(key, d...), '/'), rest[:j]...)
}

// isDay: d is YYYY-MM-DD in digits.
func isDay(d []byte) bool {
	for i, c := range d {
		if i == 4 || i == 7 {
			if c != '-' {
				return false
			}
		} else if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// DayCount is how many entries of one action a chain received on one day
// (UTC).
type DayCount struct {
	Day    string `json:"day"` // YYYY-MM-DD
	Action string `json:"action"`
	Count  uint64 `json:"count"`
}

// MaxStatsDays bounds the days one Stats call covers.
const MaxStatsDays = 366

// Stats returns the chain's counts per day and action for the days from
// and to (inclusive, UTC), ordered by day then action; days and actions
// without entries are absent. It reads the counters kept at append time
// (see TallyKey), never the entries.
func (s *Service) Stats(ctx context.Context, c raftstore.Consistency, chain string, from, to time.Time) ([]DayCount, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	if to.Before(from) || to.Sub(from) >= MaxStatsDays*24*time.Hour {
		return nil, fmt.Errorf("%w: days %s to %s", ErrRange, from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	out := []DayCount{}
	lo, hi := []byte(from.Format(time.DateOnly)), []byte(to.AddDate(0, 0, 1).Format(time.DateOnly))
	err := s.store.View(ctx, c, func(r *raftstore.ReadTx) error {
		out = out[:0]
		r.ChainTally([]byte(chain), lo, hi, func(key []byte, n uint64) bool {
			day, action, ok := bytes.Cut(key, []byte("/"))
			if ok {
				out = append(out, DayCount{Day: string(day), Action: string(action), Count: n})
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: stats of %s: %w", chain, err)
	}
	return out, nil
}
