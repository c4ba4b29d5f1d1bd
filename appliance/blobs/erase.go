package blobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// # Bulk removal (erasure, retention)
//
// RemoveOps builds — it does not apply — the writes that remove blobs
// with everything that names them: the metadata, the chunks (one bucket
// delete each, whatever the blob's size: the raft entry stays small) and
// the subject entry. The caller applies them through the tenant's
// tenancy.Scope in a transaction of its own with its own audit entry;
// each blob carries a condition on the metadata version read, so a blob
// changed in between fails the transaction and the caller reads again.
// Blobs already gone are skipped: a removal run again finishes what a
// first one left. SubjectBlobs lists what an erasure removes: the
// subject's blobs and the uploads of the subject still in progress
// (their chunks are the subject's too).

// RemoveOps returns the writes removing the blobs ids names that exist
// (n of them) and the conditions that they are still as read (one
// linearizable read; no attribute scope: the callers act for the
// tenant). Each blob takes one condition and two or three ops.
func (s *Service) RemoveOps(ctx context.Context, tenant string, ids []string) (ops []raftstore.Op, conds []raftstore.Cond, n int, err error) {
	seen := map[string]bool{}
	err = s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		for _, id := range ids {
			if seen[id] || !ValidID(id) {
				continue
			}
			seen[id] = true
			if raw, ver, ok := r.Get(metaPath, []byte(id)); ok {
				var m stored
				_ = json.Unmarshal(raw, &m) // what decodes names the subject entry; the rest goes regardless
				ops = append(ops,
					raftstore.Op{Kind: raftstore.OpDelete, Bucket: metaPath, Key: []byte(id)},
					raftstore.Op{Kind: raftstore.OpDeleteBucket, Bucket: chunksParent, Key: []byte(id)})
				if m.Subject != "" && ValidID(m.Subject) {
					ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: subjectPath(m.Subject), Key: []byte(id)})
				}
				conds = append(conds, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: metaPath, Key: []byte(id), Version: ver})
				n++
				continue
			}
			if _, ver, ok := r.Get(pendingPath, []byte(id)); ok {
				ops = append(ops,
					raftstore.Op{Kind: raftstore.OpDelete, Bucket: pendingPath, Key: []byte(id)},
					raftstore.Op{Kind: raftstore.OpDeleteBucket, Bucket: chunksParent, Key: []byte(id)})
				conds = append(conds, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: pendingPath, Key: []byte(id), Version: ver})
				n++
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("blobs: read for removal: %w", err)
	}
	return ops, conds, n, nil
}

// SubjectBlobs lists the ids of subject's blobs and of the uploads of the
// subject still in progress, sorted (one linearizable read; no attribute
// scope).
func (s *Service) SubjectBlobs(ctx context.Context, tenant, subject string) ([]string, error) {
	if !ValidID(subject) {
		return nil, nil
	}
	var out []string
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		r.Scan(subjectPath(subject), nil, 0, func(k, _ []byte, _ uint64) bool {
			out = append(out, string(k))
			return true
		})
		r.Scan(pendingPath, nil, 0, func(k, v []byte, _ uint64) bool {
			var p pending
			if json.Unmarshal(v, &p) == nil && p.Subject == subject {
				out = append(out, string(k))
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blobs: blobs of a subject: %w", err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// SubjectBucketOp is the delete of subject's (empty) bucket in the
// subject index of blobs, whose name is the subject's id: the erasure's
// last transaction carries it.
func (s *Service) SubjectBucketOp(subject string) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpDeleteBucket, Bucket: raftstore.Path("blob_subjects"), Key: []byte(subject)}
}
