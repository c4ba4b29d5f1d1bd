package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// JanitorConfig configures the background work of one node.
type JanitorConfig struct {
	// Tick is how often the janitor looks at the cluster's keyring records
	// (default 1s): a cache purge reaches every node within about a tick.
	Tick time.Duration
	// CompactWindow bounds how long after a shred (or a tenant deletion)
	// the node's files may still hold the destroyed key's bytes (default
	// 10 min). The janitor waits half of it to batch erasures, then
	// compacts.
	CompactWindow time.Duration
	// Compact rewrites this node's files (raft snapshot, log truncation and
	// bbolt compaction); nil disables compaction.
	Compact func(ctx context.Context) error
	// StateFile keeps the last compacted shred revision across restarts.
	StateFile string
	// SnapshotsRestored counts snapshots this node installed from the
	// leader (nil: none). A snapshot taken before the leader compacted can
	// bring deleted bytes back in its free pages, so a node that installed
	// one after a shred compacts again.
	SnapshotsRestored func() uint64
	// IsLeader says whether this node leads; only the leader rewraps and
	// trims, so the work is done once.
	IsLeader func() bool
	// TrimAfter is the backup retention: superseded transit key versions
	// are trimmed this long after the last rotation that superseded them
	// (0: never trim).
	TrimAfter time.Duration
	// TrimEvery is how often the leader checks for trimmable versions
	// (default 1 min).
	TrimEvery time.Duration
	Logger    *slog.Logger
}

// Janitor is a node's background key work: it drops cached keys when a
// purge, shred, provider change or tenant deletion anywhere in the cluster
// asks for it; compacts the node's files after a shred, within the
// compaction window; and, on the leader, finishes rewraps after rotations
// and trims superseded Vault transit key versions.
type Janitor struct {
	h   *Hierarchy
	cfg JanitorConfig
	log *slog.Logger

	purgeSeen    map[string]uint64
	compacted    uint64
	restored     uint64 // SnapshotsRestored at the last compaction
	pendingSince time.Time
	lastTrim     time.Time
}

// NewJanitor makes the janitor of h.
func NewJanitor(h *Hierarchy, cfg JanitorConfig) *Janitor {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.CompactWindow <= 0 {
		cfg.CompactWindow = 10 * time.Minute
	}
	if cfg.TrimEvery <= 0 {
		cfg.TrimEvery = time.Minute
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return false }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	j := &Janitor{h: h, cfg: cfg, log: log, purgeSeen: map[string]uint64{}}
	if cfg.SnapshotsRestored != nil {
		j.restored = cfg.SnapshotsRestored()
	}
	if cfg.StateFile != "" {
		if b, err := os.ReadFile(cfg.StateFile); err == nil {
			j.compacted, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	return j
}

// Run works until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	t := time.NewTicker(j.cfg.Tick)
	defer t.Stop()
	for {
		if err := j.Step(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn("keyring janitor", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sysState is what a step reads of the keyring's cluster records.
type sysState struct {
	purges map[string]uint64
	shred  uint64
	rewrap map[string]uint64
}

// Step does one round of work; Run calls it every tick.
func (j *Janitor) Step(ctx context.Context) error {
	var st sysState
	st.purges, st.rewrap = map[string]uint64{}, map[string]uint64{}
	// Local (stale) read: every node acts on what it has applied.
	err := j.h.tenancy.ViewSystem(ctx, raftstore.Stale, sysRecords, func(r tenancy.SystemRead) error {
		r.Scan("", 0, func(key string, _ []byte, ver uint64) bool {
			switch {
			case strings.HasPrefix(key, sysPurgePrefix):
				st.purges[key[len(sysPurgePrefix):]] = ver
			case strings.HasPrefix(key, sysRewrapPrefix):
				st.rewrap[key[len(sysRewrapPrefix):]] = ver
			case key == sysShred:
				st.shred = ver
			}
			return true
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("keyring janitor: read: %w", err)
	}
	for tenant, ver := range st.purges {
		if ver > j.purgeSeen[tenant] {
			if n := j.h.purgeLocal(tenant); n > 0 {
				j.log.Info("dropped cached keys", "tenant", tenant, "keys", n)
			}
			j.purgeSeen[tenant] = ver
		}
	}
	var errs []error
	errs = append(errs, j.compact(ctx, st.shred))
	if j.cfg.IsLeader() {
		for tenant, ver := range st.rewrap {
			if err := j.h.finishRewrap(ctx, tenant, ver); err != nil {
				errs = append(errs, fmt.Errorf("rewrap %s: %w", tenant, err))
			}
		}
		if j.cfg.TrimAfter > 0 && j.h.now().Sub(j.lastTrim) >= j.cfg.TrimEvery {
			j.lastTrim = j.h.now()
			errs = append(errs, j.h.trimVault(ctx, j.cfg.TrimAfter))
		}
	}
	return errors.Join(errs...)
}

// compact runs the node's compaction once a shred newer than the last
// compacted one has waited half the window (erasures come in bursts).
func (j *Janitor) compact(ctx context.Context, shred uint64) error {
	if j.cfg.Compact == nil {
		return nil
	}
	restored := uint64(0)
	if j.cfg.SnapshotsRestored != nil {
		restored = j.cfg.SnapshotsRestored()
	}
	if shred <= j.compacted && (shred == 0 || restored == j.restored) {
		j.pendingSince = time.Time{}
		return nil
	}
	now := time.Now()
	if j.pendingSince.IsZero() {
		j.pendingSince = now
	}
	if now.Sub(j.pendingSince) < j.cfg.CompactWindow/2 {
		return nil
	}
	start := time.Now()
	if err := j.cfg.Compact(ctx); err != nil {
		return fmt.Errorf("compaction after shred: %w", err)
	}
	j.compacted, j.pendingSince, j.restored = shred, time.Time{}, restored
	j.log.Info("compacted after shred", "revision", shred, "duration", time.Since(start))
	if j.cfg.StateFile != "" {
		if err := raftstore.WriteFileAtomic(j.cfg.StateFile, []byte(strconv.FormatUint(shred, 10)+"\n")); err != nil {
			return fmt.Errorf("compaction state: %w", err)
		}
	}
	return nil
}

// trimVault trims superseded versions of the Vault transit keys tenants
// use. Tenants may share one (derived) transit key, so a key is trimmed
// only below the oldest version any of its tenants' KEKs still uses, and
// only once TrimAfter has passed since the last rotation among them: the
// backups taken before that rotation, which hold KEKs under the older
// versions, have expired by then.
func (h *Hierarchy) trimVault(ctx context.Context, trimAfter time.Duration) error {
	type group struct {
		tenants  []string
		minUsed  int
		lastRot  time.Time
		anyValid bool
	}
	groups := map[string]*group{}
	err := h.tenancy.ViewSystem(ctx, raftstore.Linearizable, sysRecords, func(r tenancy.SystemRead) error {
		r.Scan(sysVaultPrefix, 0, func(k string, v []byte, _ uint64) bool {
			tenant, ok := strings.CutPrefix(k, sysVaultPrefix)
			if !ok {
				return false
			}
			g := groups[string(v)]
			if g == nil {
				g = &group{}
				groups[string(v)] = g
			}
			g.tenants = append(g.tenants, tenant)
			keys := r.Tenant(tenant)
			if b, _, ok := keys.Get(keysBucket, []byte("vault_rotated_at")); ok {
				if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil && t.After(g.lastRot) {
					g.lastRot = t
				}
			}
			keys.Scan(keysBucket, []byte("kek"), 0, func(k, v []byte, _ uint64) bool {
				if !strings.HasPrefix(string(k), "kek/") {
					return string(k) < "kek/"
				}
				if tv, err := TransitVersion(v); err == nil && (!g.anyValid || tv < g.minUsed) {
					g.minUsed, g.anyValid = tv, true
				}
				return true
			})
			return true
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("keyring: trim: %w", err)
	}
	var errs []error
	for id, g := range groups {
		if !g.anyValid || g.lastRot.IsZero() || h.now().Sub(g.lastRot) < trimAfter {
			continue
		}
		r, err := h.root(ctx, g.tenants[0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vr, ok := r.(*VaultRoot)
		if !ok {
			continue
		}
		info, err := vr.KeyInfo(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if g.minUsed <= info.MinAvailableVersion || g.minUsed <= 1 {
			continue // nothing to trim
		}
		if err := vr.Trim(ctx, g.minUsed); err != nil {
			errs = append(errs, fmt.Errorf("keyring: trim %s: %w", strings.ReplaceAll(id, "|", " "), err))
			continue
		}
		batch := make([]tenancy.BatchEntry, 0, len(g.tenants))
		for _, t := range g.tenants {
			a, err := h.audit(h.system, "key.trim", fmt.Sprintf("transit_min_version:%d", g.minUsed))
			if err != nil {
				return err
			}
			batch = append(batch, tenancy.BatchEntry{Scope: h.scope(t), Data: a})
		}
		if _, _, err := h.tenancy.AppendBatch(ctx, batch); err != nil {
			errs = append(errs, fmt.Errorf("keyring: record trim: %w", err))
		}
	}
	return errors.Join(errs...)
}
