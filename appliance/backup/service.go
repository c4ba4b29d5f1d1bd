package backup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/internal/tenancy"
)

// Store is the replicated store: dumps, and the system chain's entry of
// each backup. *raftstore.Store is one.
type Store interface {
	Dumper
	audit.Store
}

// Deps are what a backup needs besides the store.
type Deps struct {
	// Recipients are the cluster's backup recipients
	// (cluster.Service.BackupRecipients).
	Recipients func(ctx context.Context) ([]string, error)
	// Signer is the audit key (audit.Service.Signer).
	Signer func(ctx context.Context) (note.Signer, error)
	Now    func() time.Time
}

// Service takes backups.
type Service struct {
	store Store
	d     Deps
}

// New makes the service.
func New(store Store, d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{store: store, d: d}
}

// Backup writes a backup of the state to w and records it (index, size,
// digest of the dump) in the system chain as backup.taken by who.
func (s *Service) Backup(ctx context.Context, who audit.Principal, w io.Writer) (Manifest, error) {
	rs, err := s.d.Recipients(ctx)
	if err != nil {
		return Manifest{}, err
	}
	recipients, err := cluster.ParseBackupRecipients(rs)
	if err != nil {
		return Manifest{}, err
	}
	signer, err := s.d.Signer(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	m, err := Write(ctx, w, s.store, recipients, signer, s.d.Now())
	if err != nil {
		return Manifest{}, err
	}
	e := who.Entry(s.d.Now().UTC(), "backup.taken", "cluster", audit.OutcomeSuccess, map[string]string{
		"index": strconv.FormatUint(m.Index, 10), "size": strconv.FormatUint(m.Size, 10),
		"tenants": strconv.Itoa(len(m.Tenants)), "sha256": fmt.Sprintf("%x", m.SHA256),
	})
	if err := audit.Append(ctx, s.store, tenancy.SystemChain, e); err != nil {
		return m, fmt.Errorf("backup: record: %w", err)
	}
	return m, nil
}

// ScheduleConfig is [backup] of the configuration.
type ScheduleConfig struct {
	Dir      string
	Interval time.Duration
	Keep     int
	IsLeader func() bool
	Logger   *slog.Logger
}

// Scheduler takes a backup into Dir every Interval on the leader and
// keeps the newest Keep.
type Scheduler struct {
	s    *Service
	c    ScheduleConfig
	last atomic.Int64 // unix nanoseconds of the last backup written here
}

// NewScheduler makes a scheduler; Run runs it.
func NewScheduler(s *Service, c ScheduleConfig) *Scheduler {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	sc := &Scheduler{s: s, c: c}
	if files, _ := Files(c.Dir); len(files) > 0 {
		if fi, err := os.Stat(files[len(files)-1]); err == nil {
			sc.last.Store(fi.ModTime().UnixNano())
		}
	}
	return sc
}

// LastBackup is when the newest backup in the directory was written
// (zero: none): the metric of a backup's age.
func (sc *Scheduler) LastBackup() time.Time {
	n := sc.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Run takes the backups until ctx ends; a failed one is logged and
// retried at the next tick.
func (sc *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(sc.c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !sc.c.IsLeader() || time.Since(sc.LastBackup()) < sc.c.Interval/2 {
			continue
		}
		if path, err := sc.Once(ctx); err != nil {
			sc.c.Logger.Error("scheduled backup failed", "error", err)
		} else {
			sc.c.Logger.Info("backup written", "file", path)
		}
	}
}

// filePrefix and fileSuffix frame a scheduled backup's name:
// custos-backup-<UTC time>.age, so names sort by time.
const (
	filePrefix = "custos-backup-"
	fileSuffix = ".age"
)

// Once takes one backup into the directory now and prunes old ones.
func (sc *Scheduler) Once(ctx context.Context) (string, error) {
	if err := os.MkdirAll(sc.c.Dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	now := sc.s.d.Now().UTC()
	path := filepath.Join(sc.c.Dir, filePrefix+now.Format("20060102T150405.000000000Z")+fileSuffix)
	err := WriteFile(path, func(w io.Writer) error {
		_, err := sc.s.Backup(ctx, audit.System(), w)
		return err
	})
	if err != nil {
		return "", err
	}
	sc.last.Store(now.UnixNano())
	files, err := Files(sc.c.Dir)
	if err != nil {
		return path, err
	}
	for len(files) > max(sc.c.Keep, 1) {
		if err := os.Remove(files[0]); err != nil {
			return path, fmt.Errorf("backup: prune: %w", err)
		}
		files = files[1:]
	}
	return path, nil
}

// Files lists the scheduled backups in dir, oldest first.
func Files(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("backup: %w", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, filePrefix) && strings.HasSuffix(n, fileSuffix) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}
