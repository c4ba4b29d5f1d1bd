package records

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// # Expiry (for retention)
//
// Retention (appliance/privacy/retention) decides how long records are
// kept; this file only finds the records of a collection that have not
// changed since a cutoff, and names the conditions that keep a later
// transaction from removing one that changed since it was found. A
// record's age is counted from its last change (the envelope's
// updated_at, which its creation sets too).
//
// Expired reads this node's local state (the leader's, when retention
// calls it): a record it finds is removed only by a transaction carrying
// Unchanged's condition on the version found, so a lagging read can
// cause no wrong removal, only a failed transaction (or a record missed
// until the next sweep). There is no time
// index: a scan decodes each envelope's subject and updated_at in pages of at most maxScan keys per read
// transaction, so no read transaction stays open long and every page
// yields to writers. At retention's hourly pace a full scan of a
// collection is cheap next to what an index would add to every write
// (BENCHMARKS.md, issue 13).

// Expiring is a record Expired found: where it is, whose it is, the
// storage version it was found at and when it last changed.
type Expiring struct {
	Held
	Subject   string
	Version   uint64
	UpdatedAt time.Time
}

// ExpiredQuery says what Expired looks for in one collection.
type ExpiredQuery struct {
	Collection string
	// Before: records last changed strictly before it.
	Before time.Time
	// SubjectOnly keeps only records that belong to a subject.
	SubjectOnly bool
	// After is the id to continue after ("" from the start).
	After string
	// Limit bounds the records found, MaxScan the keys read (one read
	// transaction); 0: no bound (Limit), 4096 (MaxScan).
	Limit, MaxScan int
}

// defaultMaxScan is ExpiredQuery.MaxScan's default.
const defaultMaxScan = 4096

// envelopeHead is the part of an envelope a scan decodes.
type envelopeHead struct {
	Subject   string    `json:"subject"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Expired lists the records of q.Collection in tenant last changed
// before q.Before, in id order after q.After, reading this node's local
// state, at most q.MaxScan keys in one read transaction. next is the id
// to continue after, "" when the collection's end was reached. An
// envelope that does not decode is skipped (its record is left to the
// integrity path of reads and deletes).
func (s *Service) Expired(ctx context.Context, tenant string, q ExpiredQuery) (found []Expiring, next string, err error) {
	maxScan := q.MaxScan
	if maxScan <= 0 {
		maxScan = defaultMaxScan
	}
	var start []byte
	if q.After != "" {
		start = []byte(q.After)
	}
	more := false
	err = s.tenancy.Scope(tenant).View(ctx, raftstore.Stale, func(r tenancy.Read) error {
		scanned := 0
		r.Scan(recordsPath(q.Collection), start, 0, func(k, v []byte, version uint64) bool {
			if scanned == maxScan || (q.Limit > 0 && len(found) == q.Limit) {
				more = true
				return false
			}
			scanned++
			next = string(k)
			var h envelopeHead
			if json.Unmarshal(v, &h) != nil || !h.UpdatedAt.Before(q.Before) || (q.SubjectOnly && h.Subject == "") {
				return true
			}
			found = append(found, Expiring{Held: Held{Collection: q.Collection, ID: next}, Subject: h.Subject, Version: version, UpdatedAt: h.UpdatedAt})
			return true
		})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("records: expired %s: %w", q.Collection, err)
	}
	if !more {
		next = ""
	}
	return found, next, nil
}

// Unchanged are the conditions that the records found are still at the
// versions found: a transaction removing them applies only if none
// changed (or went) since, so a record rewritten after it was found
// expired — no longer expired — is never removed.
func Unchanged(found []Expiring) []raftstore.Cond {
	out := make([]raftstore.Cond, len(found))
	for i, f := range found {
		out[i] = raftstore.Cond{Kind: raftstore.CondVersion, Bucket: recordsPath(f.Collection), Key: []byte(f.ID), Version: f.Version}
	}
	return out
}
