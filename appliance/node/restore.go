package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/appliance/privacy/erasure"
	"github.com/custos/custos/raftstore"
)

// fileRestore is left by `custos operator restore` beside the restored
// state and consumed by the node's first start (as the bootstrap file
// is): what that start must do before it serves.
const fileRestore = "restore.json"

// restorePlan is the restore file.
type restorePlan struct {
	JoinTokenHash string    `json:"join_token_sha256"`
	Index         uint64    `json:"index"`
	Term          uint64    `json:"term"`
	Time          time.Time `json:"time"`
	SHA256        string    `json:"sha256"`
	// Ledger is the erasure ledger to re-apply, by tenant: the newer
	// cluster's, read from the backups given to the restore as ledgers.
	Ledger map[string][]erasure.Entry `json:"ledger"`
}

// RestoreOptions are the choices of `operator restore`.
type RestoreOptions struct {
	// Backup is the backup file; Identities open it (and the ledgers).
	Backup     io.Reader
	Identities []age.Identity
	// AuditKey pins the audit verifier key the backups must be signed
	// with; empty: the key in the backup's own state.
	AuditKey string
	// Ledgers are newer backups (of the cluster the restore replaces)
	// whose erasure ledgers the restored cluster re-applies at its first
	// start.
	Ledgers []io.Reader
	// Archive is a log archive (a backup directory, or its log/) to
	// replay onto the backup's state up to Until: a point-in-time
	// restore. Empty: the backup's state as it is.
	Archive string
	Until   backup.Until
}

// RestoreResult is what a restore prints.
type RestoreResult struct {
	Manifest backup.Manifest
	// Index is the raft index of the restored state: the backup's, or
	// where the archive's replay stopped.
	Index     uint64
	AuditKey  string
	JoinToken string
	// Erasures counts the ledger entries the first start re-applies.
	Erasures int
}

// Restore makes dataDir the first node of a new cluster whose state is a
// backup's: the state checked and loaded, fresh cluster credentials (a
// new CA: the old cluster's nodes cannot talk to it) and join token, and
// the restore file the first start consumes — it records the new join
// token and the restore in the system chain and re-applies the newer
// erasure ledgers before it serves. The operator token, the seal
// recipients and the audit key are the backed-up cluster's: start the
// node with the old seal identity.
func Restore(ctx context.Context, dataDir, nodeID string, o RestoreOptions) (*RestoreResult, error) {
	if has, err := hasCredentials(dataDir); err != nil || has {
		return nil, fmt.Errorf("restore into %s: %w", dataDir, errors.Join(err, ErrAlreadyInitialized))
	}
	statePath := filepath.Join(dataDir, "state.db")
	if _, err := os.Stat(statePath); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore into %s: %w (it holds a state file)", dataDir, ErrAlreadyInitialized)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	loading := statePath + ".restore"
	os.Remove(loading)
	m, vkey, err := backup.Read(ctx, o.Backup, o.Identities, loading, backup.ReadOptions{AuditKey: o.AuditKey})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.Remove(loading)
		}
	}()
	plan := restorePlan{Index: m.Index, Term: m.Term, Time: m.Time, SHA256: fmt.Sprintf("%x", m.SHA256), Ledger: map[string][]erasure.Entry{}}
	res := &RestoreResult{Manifest: m, AuditKey: vkey, Index: m.Index}
	if o.Archive != "" {
		info, err := backup.ReplayArchive(ctx, o.Archive, o.Identities, vkey, loading, o.Until)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		res.Index, plan.Index, plan.Term = info.Index, info.Index, info.Term
	}
	for i, r := range o.Ledgers {
		l, lm, err := backup.LedgersOf(ctx, r, o.Identities, dataDir, vkey)
		if err != nil {
			return nil, fmt.Errorf("restore: ledger %d: %w", i+1, err)
		}
		if lm.Time.Before(m.Time) {
			return nil, fmt.Errorf("restore: ledger %d is a backup older than the one restored", i+1)
		}
		for t, es := range l {
			plan.Ledger[t] = append(plan.Ledger[t], es...)
			res.Erasures += len(es)
		}
	}
	off, err := raftstore.OpenOffline(loading)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = off.StartNewLog()
	if cerr := off.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	creds, err := raftstore.NewClusterCredentials(nodeID)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if res.JoinToken, err = raftstore.NewJoinToken(creds); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	plan.JoinTokenHash = raftstore.TokenHash(res.JoinToken)
	b, err := json.Marshal(plan)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, fileRestore), b, 0o600); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(loading, statePath); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := raftstore.SaveCredentials(filepath.Join(dataDir, dirTLS), creds); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ok = true
	return res, nil
}

func readRestorePlan(dataDir string) (*restorePlan, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, fileRestore))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p restorePlan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read %s: %w", fileRestore, err)
	}
	return &p, nil
}

// finishRestore is a restored node's first start: the new join token and
// the cluster.restore entry, then the erasure ledger re-applied, then a
// snapshot of the result with the log truncated behind it (what joining
// nodes install), before the API serves; then the restore file goes.
// Idempotent across restarts.
func (n *Node) finishRestore(ctx context.Context, dataDir string, members *cluster.Service, era *erasure.Service, p *restorePlan) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := n.store.WaitLeader(wctx); err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	if _, err := members.Restored(wctx, p.JoinTokenHash, map[string]string{
		"backup_index": strconv.FormatUint(p.Index, 10), "backup_term": strconv.FormatUint(p.Term, 10),
		"backup_time": p.Time.UTC().Format(time.RFC3339Nano), "backup_sha256": p.SHA256,
	}); err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	for tenant, entries := range p.Ledger {
		k, err := era.Reapply(wctx, audit.System(), tenant, entries)
		if errors.Is(err, erasure.ErrNoTenant) {
			continue // created after the backup: nothing of it was restored
		}
		if err != nil {
			return fmt.Errorf("node: restore: re-apply the erasure ledger of %s (the node needs the seal identity): %w", tenant, err)
		}
		n.logger.Info("erasure ledger re-applied", "tenant", tenant, "entries", len(entries), "subjects_erased", k)
	}
	// The restored state is in no raft snapshot yet and the new log
	// starts at index 1: a node joining would replay that log onto an
	// empty state. Compact takes snapshots of the state and truncates the
	// log behind them, so joining nodes install the state instead (and
	// the restored file loses whatever the re-applied erasures freed).
	if _, err := n.store.Compact(wctx); err != nil {
		return fmt.Errorf("node: restore: snapshot the restored state: %w", err)
	}
	if err := os.Remove(filepath.Join(dataDir, fileRestore)); err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	return nil
}

// startBackups makes the backup service and, with [backup] dir set,
// starts the leader's scheduled backups.
func (n *Node) startBackups(members *cluster.Service, aud *audit.Service) *backup.Service {
	s := backup.New(n.store, backup.Deps{Recipients: members.BackupRecipients, Signer: aud.Signer})
	bc := n.cfg.Backup
	if bc.Dir != "" && bc.ArchiveLog {
		a := backup.NewArchiver(s, n.store, bc.Dir, bc.ArchiveInterval, n.store.IsLeader, n.logger.With("component", "backup"))
		n.background(a.Run)
	}
	if bc.Dir != "" {
		n.backups = backup.NewScheduler(s, backup.ScheduleConfig{Dir: bc.Dir, Interval: bc.Interval, Keep: bc.Keep,
			IsLeader: n.store.IsLeader, Logger: n.logger.With("component", "backup")})
		n.background(n.backups.Run)
	}
	return s
}

// Backups is the scheduler of the leader's backups (its LastBackup is
// the backup-age metric); nil when [backup] dir is not set.
func (n *Node) Backups() *backup.Scheduler { return n.backups }
