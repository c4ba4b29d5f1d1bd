package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/sweep"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// SweepConfig drives RunSweeper (every: 0 is a minute).
type SweepConfig = sweep.Config

// RunSweeper shreds expired exports, and removes abandoned builds, on the
// leader until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, cfg SweepConfig) {
	sweep.Run(ctx, cfg, time.Minute, "export sweep", "shredded expired exports", s.Sweep)
}

// Sweep shreds the tenants' exports that expired — the metadata, the
// chunks and the export's data key in one transaction with an
// export.expire entry in the tenant's chain (the key's shredding has every
// node compact its files, so no copy of the key is left: keyring.ShredOps)
// — and removes builds whose marker has not been touched for StaleAfter
// (their builder died). The leader runs it.
func (s *Service) Sweep(ctx context.Context, tenantIDs []string) (int, error) {
	now := s.now()
	cutoff := now.Add(-s.cfg.StaleAfter)
	swept := 0
	for _, t := range tenantIDs {
		type due struct {
			id      string
			version uint64
			meta    *Export
		}
		var found []due
		if err := s.tenancy.Scope(t).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
			r.Scan(metaPath, nil, 0, func(k, v []byte, ver uint64) bool {
				var m stored
				if json.Unmarshal(v, &m) != nil || !now.Before(m.ExpiresAt) {
					found = append(found, due{string(k), ver, &m.Export})
				}
				return true
			})
			r.Scan(pendingPath, nil, 0, func(k, v []byte, ver uint64) bool {
				var p pending
				if json.Unmarshal(v, &p) != nil || p.Touched.Before(cutoff) {
					found = append(found, due{string(k), ver, nil})
				}
				return true
			})
			return nil
		}); err != nil {
			return swept, fmt.Errorf("export: sweep %s: %w", t, err)
		}
		for _, f := range found {
			var err error
			if f.meta != nil {
				err = s.remove(ctx, audit.System(), t, f.id, f.version, "export.expire", describe(*f.meta))
			} else {
				err = s.remove(ctx, audit.System(), t, f.id, f.version, "", nil)
			}
			if err != nil && !errors.Is(err, ErrAborted) {
				return swept, fmt.Errorf("export: sweep %s/%s: %w", t, f.id, err)
			}
			swept++
		}
	}
	return swept, nil
}

// remove deletes export id — metadata, marker, chunks — and shreds its
// key in one transaction. action names its audit entry ("": an unfinished
// build, whose key's shredding is the only entry). version, when set, is
// the metadata's (action set) or the marker's version the caller read: a
// change since aborts (ErrAborted).
func (s *Service) remove(ctx context.Context, caller audit.Principal, tenant, id string, version uint64, action string, details map[string]string) error {
	txn, err := s.keys.ShredOps(ctx, caller, tenant, keySubject(id))
	if err != nil {
		return err
	}
	txn.Ops = append(txn.Ops,
		raftstore.Op{Kind: raftstore.OpDelete, Bucket: metaPath, Key: []byte(id)},
		raftstore.Op{Kind: raftstore.OpDelete, Bucket: pendingPath, Key: []byte(id)},
		raftstore.Op{Kind: raftstore.OpDeleteBucket, Bucket: chunksParent, Key: []byte(id)})
	if version != 0 {
		bucket := pendingPath
		if action != "" {
			bucket = metaPath
		}
		txn.Conds = []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: bucket, Key: []byte(id), Version: version}}
	} else {
		// Never a finished export's (a failed build's cleanup).
		txn.Conds = []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: metaPath, Key: []byte(id)}}
	}
	if action != "" {
		entry, err := caller.Entry(s.now().UTC(), action, "export:"+id, audit.OutcomeSuccess, details).Encode()
		if err != nil {
			return err
		}
		txn.Audit = append(txn.Audit, entry)
	}
	err = apply(ctx, s.tenancy.Scope(tenant), txn)
	s.keys.Forget(tenant, keySubject(id))
	return err
}

func sortByCreated(es []Export) {
	slices.SortStableFunc(es, func(a, b Export) int { return a.CreatedAt.Compare(b.CreatedAt) })
}
