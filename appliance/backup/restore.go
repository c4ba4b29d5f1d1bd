package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/erasure"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

func removeState(path string) { os.Remove(path) }

// Ledgers reads every tenant's erasure ledger from a state file (a
// restored backup), by tenant id; tenants without erasures are left out.
func Ledgers(ctx context.Context, statePath string) (map[string][]erasure.Entry, error) {
	off, err := raftstore.OpenOffline(statePath)
	if err != nil {
		return nil, err
	}
	defer off.Close()
	b := tenancy.New(off)
	var ids []string
	if err := b.Registry().View(ctx, raftstore.Stale, func(r tenancy.RegistryRead) error {
		r.Scan("", 0, func(id string, _ []byte, _ uint64) bool {
			ids = append(ids, id)
			return true
		})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("backup: tenants: %w", err)
	}
	era := erasure.New(b, erasure.Deps{})
	out := map[string][]erasure.Entry{}
	for _, id := range ids {
		l, err := era.Ledger(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("backup: erasure ledger of %s: %w", id, err)
		}
		if len(l) > 0 {
			out[id] = l
		}
	}
	return out, nil
}

// LedgersOf reads the erasure ledgers a backup holds (a newer backup than
// the one restored: the ledger export of the newer cluster), checked
// against the audit key vkey, by way of a scratch state file in dir.
func LedgersOf(ctx context.Context, r io.Reader, ids []age.Identity, dir, vkey string) (map[string][]erasure.Entry, Manifest, error) {
	tmp, err := os.MkdirTemp(dir, "ledger-*")
	if err != nil {
		return nil, Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "state.db")
	m, _, err := Read(ctx, r, ids, path, ReadOptions{AuditKey: vkey})
	if err != nil {
		return nil, Manifest{}, err
	}
	l, err := Ledgers(ctx, path)
	return l, m, err
}

// DrillReport is what the restore drill found.
type DrillReport struct {
	Manifest Manifest
	AuditKey string
	// Audit is the self-check of every chain of the restored state.
	Audit *audit.CheckReport
	// Buckets and Keys count the restored state; Erasures the ledgers'
	// entries.
	Buckets, Keys, Erasures int
	Duration                time.Duration
}

// Drill restores the backup r holds into a scratch directory under dir,
// runs the audit self-check on it and counts what it holds, then removes
// the directory: the restore drill (`custos operator backup verify`).
func Drill(ctx context.Context, r io.Reader, ids []age.Identity, dir string, o ReadOptions) (*DrillReport, error) {
	start := time.Now()
	tmp, err := os.MkdirTemp(dir, "custos-drill-*")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "state.db")
	m, vkey, err := Read(ctx, r, ids, path, o)
	if err != nil {
		return nil, err
	}
	rep := &DrillReport{Manifest: m, AuditKey: vkey}
	ledgers, err := Ledgers(ctx, path)
	if err != nil {
		return nil, err
	}
	for _, l := range ledgers {
		rep.Erasures += len(l)
	}
	off, err := raftstore.OpenOffline(path)
	if err != nil {
		return nil, err
	}
	defer off.Close()
	if rep.Buckets, rep.Keys, err = off.Count(); err != nil {
		return nil, err
	}
	if rep.Audit, err = audit.New(off, nil, nil).SelfCheck(ctx, audit.NewWitness(filepath.Join(tmp, "witness.json"))); err != nil {
		return nil, fmt.Errorf("backup: drill: audit self-check: %w", err)
	}
	rep.Duration = time.Since(start)
	return rep, nil
}
