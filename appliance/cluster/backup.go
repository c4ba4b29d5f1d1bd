package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// keyBackupRecipients ( ["sys"] backup_recipients ) holds the age
// recipients backups are encrypted to, as a JSON list: public keys only.
// Their identities are kept by the operators away from the cluster
// ("separate key storage"): no node can read a backup.
var keyBackupRecipients = []byte("backup_recipients")

// ErrNoBackupRecipients means the cluster has no backup recipients (set them
// with `custos operator backup recipients`).
var ErrNoBackupRecipients = errors.New("cluster: no backup recipients configured (custos operator backup recipients set age1…)")

// ParseBackupRecipients checks a list of age recipients: at least one,
// each an X25519 recipient (age1…), no duplicates.
func ParseBackupRecipients(rs []string) ([]age.Recipient, error) {
	if len(rs) == 0 {
		return nil, ErrNoBackupRecipients
	}
	out := make([]age.Recipient, 0, len(rs))
	for i, r := range rs {
		x, err := age.ParseX25519Recipient(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("cluster: backup recipient %d: %w", i+1, err)
		}
		if slices.Index(rs, r) != i {
			return nil, fmt.Errorf("cluster: backup recipient %d: listed twice", i+1)
		}
		out = append(out, x)
	}
	return out, nil
}

// backupRecipientsOp records rs.
func backupRecipientsOp(rs []string) (raftstore.Op, error) {
	v, err := json.Marshal(rs)
	if err != nil {
		return raftstore.Op{}, err
	}
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyBackupRecipients, Value: v}, nil
}

// BackupRecipients reads the recipients backups are encrypted to
// (linearizable): ErrNoBackupRecipients when none are set.
func (s *Service) BackupRecipients(ctx context.Context) ([]string, error) {
	store, err := s.storeOf()
	if err != nil {
		return nil, err
	}
	var raw []byte
	if err := store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		raw, _, _ = r.Get(bucketSys, keyBackupRecipients)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("cluster: read backup recipients: %w", err)
	}
	var rs []string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rs); err != nil {
			return nil, fmt.Errorf("cluster: backup recipients: %w", err)
		}
	}
	if len(rs) == 0 {
		return nil, ErrNoBackupRecipients
	}
	return rs, nil
}

// SetBackupRecipients replaces the backup recipients, with a
// backup.recipients entry in the system chain. Backups taken before keep
// the recipients they were encrypted to.
func (s *Service) SetBackupRecipients(ctx context.Context, who audit.Principal, rs []string) error {
	if _, err := ParseBackupRecipients(rs); err != nil {
		return err
	}
	store, err := s.storeOf()
	if err != nil {
		return err
	}
	op, err := backupRecipientsOp(rs)
	if err != nil {
		return err
	}
	e, err := audit.Record(tenancy.SystemChain, who.Entry(s.now().UTC(), "backup.recipients", "cluster", audit.OutcomeSuccess,
		map[string]string{"recipients": strings.Join(rs, ",")}))
	if err != nil {
		return fmt.Errorf("cluster: backup recipients: %w", err)
	}
	if _, err := store.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{op}, Appends: []raftstore.Append{e}}); err != nil {
		return fmt.Errorf("cluster: backup recipients: %w", err)
	}
	return nil
}

// Restored records, at the first start of a cluster restored from a
// backup, the new cluster's join token (its hash: the restored state
// holds the old cluster's, whose CA is gone) and a cluster.restore entry
// in the system chain with details (the backup's index, time, digest).
// It writes once: a restart before the restore was finished finds the
// hash already there and writes nothing.
func (s *Service) Restored(ctx context.Context, joinTokenHash string, details map[string]string) (bool, error) {
	store, err := s.storeOf()
	if err != nil {
		return false, err
	}
	e, err := audit.Record(tenancy.SystemChain, audit.System().Entry(s.now().UTC(), "cluster.restore", "cluster", audit.OutcomeSuccess, details))
	if err != nil {
		return false, fmt.Errorf("cluster: restore: %w", err)
	}
	var (
		cur []byte
		ver uint64
	)
	if err := store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		cur, ver, _ = r.Get(bucketSys, keyJoinToken)
		return nil
	}); err != nil {
		return false, fmt.Errorf("cluster: restore: %w", err)
	}
	if string(cur) == joinTokenHash {
		return false, nil
	}
	res, err := store.Apply(ctx, &raftstore.Txn{
		Conds:   []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: bucketSys, Key: keyJoinToken, Version: ver}},
		Ops:     []raftstore.Op{{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyJoinToken, Value: []byte(joinTokenHash)}},
		Appends: []raftstore.Append{e},
	})
	if err != nil {
		return false, fmt.Errorf("cluster: restore: %w", err)
	}
	return res.Applied, nil
}
