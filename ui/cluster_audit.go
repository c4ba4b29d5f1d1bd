package ui

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
)

// The cluster page's membership changes and backups are entries of the
// system audit chain (cluster.init, cluster.join, cluster.add_voter,
// cluster.remove_peer, cluster.transfer_leader, cluster.restore;
// backup.taken), the replicated record every node holds. The API lists a
// chain oldest first from a cursor; to show the newest without paging
// through a long chain, the page starts at the chain's latest signed
// checkpoint (verified with the cluster's audit key) less auditWindow
// entries: the entries after the checkpoint (signed at least every
// minute) are read too, so nothing recent is missed, and each render
// reads a bounded number of entries.

// systemEvents fills d's membership changes and backups. The chain's
// counters of entries per day and action (one cheap read) say first
// whether there is anything to look for — a membership change in the
// last membershipDays days, a backup in the last year — since a search
// finding nothing still reads the whole window.
func (u *UI) systemEvents(r *req, d *clusterData) error {
	stats, err := r.api.AuditStats(r.ctx, "", audit.MaxStatsDays)
	if err != nil {
		return err
	}
	// No counts at all: a chain older than its counters, searched.
	members, backups := len(stats.Counts) == 0, len(stats.Counts) == 0
	since := u.now().UTC().AddDate(0, 0, -membershipDays).Format(time.DateOnly)
	for _, c := range stats.Counts {
		members = members || (strings.HasPrefix(c.Action, "cluster.") && c.Day >= since)
		backups = backups || c.Action == "backup.taken"
	}
	if !members && !backups {
		return nil
	}
	w, err := u.systemWindow(r)
	if err != nil {
		return err
	}
	d.AuditWindow = w.window
	now := u.now()
	if members {
		if d.Membership, err = u.latest(r, w, client.AuditFilter{Action: "cluster."}, now); err != nil {
			return err
		}
	}
	if backups {
		// backup.taken's target is "cluster": the API matches a target
		// without decoding the entries that lack it.
		if d.Backups, err = u.latest(r, w, client.AuditFilter{Action: "backup.taken", Target: "cluster"}, now); err != nil {
			return err
		}
	}
	return nil
}

// membershipDays is how far back the page looks for membership changes.
const membershipDays = 30

// auditWindow is how many of the system chain's latest entries the page
// searches (each membership entry found costs a decode of every entry
// of the window: a few milliseconds for a thousand).
const auditWindow = 1000

// auditShown is how many entries of each kind the page shows.
const auditShown = 10

// chainWindow is where the page's search of the system chain starts.
type chainWindow struct {
	after  uint64 // the cursor: entries after this sequence number
	window uint64 // 0: the whole chain (it is shorter than the window)
}

// systemWindow finds the window from the system chain's checkpoint; a
// chain with no checkpoint yet is young and read whole.
func (u *UI) systemWindow(r *req) (chainWindow, error) {
	var key, msg bytes.Buffer
	if err := r.api.AuditKey(r.ctx, &key); err != nil {
		return chainWindow{}, fmt.Errorf("ui: audit key: %w", err)
	}
	if err := r.api.AuditCheckpoint(r.ctx, "", &msg); err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == fiber.StatusNotFound {
			return chainWindow{}, nil
		}
		return chainWindow{}, fmt.Errorf("ui: system checkpoint: %w", err)
	}
	size, err := checkpointSize(key.Bytes(), msg.Bytes())
	if err != nil {
		return chainWindow{}, err
	}
	if size <= auditWindow {
		return chainWindow{}, nil
	}
	return chainWindow{after: size - auditWindow, window: auditWindow}, nil
}

// checkpointSize verifies a signed checkpoint with the cluster's audit
// key and returns the chain size it commits to.
func checkpointSize(vkey, msg []byte) (uint64, error) {
	v, err := audit.Verifier(vkey)
	if err != nil {
		return 0, fmt.Errorf("ui: %w", err)
	}
	cp, err := audit.OpenCheckpoint(msg, v)
	if err != nil {
		return 0, fmt.Errorf("ui: system checkpoint: %w", err)
	}
	return cp.Size, nil
}

// latest are the newest entries of the window that f selects, newest
// first.
func (u *UI) latest(r *req, w chainWindow, f client.AuditFilter, now time.Time) ([]auditRow, error) {
	var rows []auditRow
	after := w.after
	// The window is at most auditWindow entries plus those since the
	// checkpoint (a minute's): a page or two of matches, bounded here
	// all the same.
	for range 8 {
		f.Limit, f.After = 1000, after
		page, err := r.api.Audit(r.ctx, "", f)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Entries {
			rows = append(rows, rowOf(it, now))
		}
		if len(rows) > auditShown {
			rows = slices.Delete(rows, 0, len(rows)-auditShown)
		}
		if page.Next == 0 {
			break
		}
		after = page.Next
	}
	slices.Reverse(rows)
	return rows, nil
}

func rowOf(it audit.Item, now time.Time) auditRow {
	e := it.Entry
	var details []string
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		if k == "sha256" {
			continue // the page names the backup; the digest is in the entry
		}
		details = append(details, k+"="+e.Details[k])
	}
	return auditRow{Seq: it.Seq, Time: e.Time, Age: ageOf(now.Sub(e.Time).Seconds()), Action: e.Action, Target: e.Target,
		Outcome: e.Outcome, Actor: e.Actor.Type + ":" + e.Actor.ID, Details: strings.Join(details, " ")}
}
