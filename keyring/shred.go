package keyring

import (
	"context"
	"fmt"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// ShredOps destroy subject's data key: the erasure adds its own deletion
// of the subject's rows to the returned transaction of the tenant and
// applies it, with the audit entry it holds (the subject named by its
// pseudonym). Its system records tell every node to drop the tenant's
// cached keys and to compact its files within the compaction window (see
// Janitor), so no file the cluster keeps holds the key's bytes afterwards.
func (h *Hierarchy) ShredOps(ctx context.Context, caller Auditor, tenant, subject string) (*tenancy.Txn, error) {
	ref, err := h.subjectRef(ctx, tenant, subject)
	if err != nil {
		return nil, err
	}
	a, err := h.audit(caller, "key.shred", ref)
	if err != nil {
		return nil, err
	}
	now := h.stamp()
	return &tenancy.Txn{
		Ops:       []raftstore.Op{del("dek/" + subject)},
		SystemOps: []raftstore.Op{sysRecords.Put(sysPurgePrefix+tenant, now), sysRecords.Put(sysShred, now)},
		Audit:     [][]byte{a},
	}, nil
}

// Shred destroys subject's data key on its own (the erasure uses ShredOps
// in its own transaction) and drops it from this node's cache at once.
func (h *Hierarchy) Shred(ctx context.Context, caller Auditor, tenant, subject string) error {
	txn, err := h.ShredOps(ctx, caller, tenant, subject)
	if err != nil {
		return err
	}
	txn.Conds = []raftstore.Cond{cond(raftstore.CondPresent, "dek/"+subject, 0)}
	res, err := h.scope(tenant).Apply(ctx, txn)
	if err != nil {
		return fmt.Errorf("keyring: shred %s/%s: %w", tenant, subject, err)
	}
	h.Forget(tenant, subject)
	if !res.Applied {
		return fmt.Errorf("%w: no key for subject %q of %s", ErrNoKeys, subject, tenant)
	}
	return nil
}

// DeleteTenantOps go with the deletion of a tenant's bucket (which holds
// its keys): every node drops the tenant's cached keys and compacts.
func (h *Hierarchy) DeleteTenantOps(tenant string) []raftstore.Op {
	now := h.stamp()
	return []raftstore.Op{
		sysRecords.Put(sysPurgePrefix+tenant, now),
		sysRecords.Put(sysShred, now),
		sysRecords.Delete(sysRewrapPrefix + tenant),
		sysRecords.Delete(sysVaultPrefix + tenant),
	}
}

// Forget drops the subject's cached key on this node.
func (h *Hierarchy) Forget(tenant, subject string) {
	h.cache.Delete(CacheKey{Tenant: tenant, Subject: subject})
}

// PurgeCache drops every cached key of tenant on every node: on this one
// at once, on the others within a tick of their janitor (they watch the
// purge record this writes). It returns how many keys this node dropped.
func (h *Hierarchy) PurgeCache(ctx context.Context, caller Auditor, tenant string) (int, error) {
	a, err := h.audit(caller, "key.purge_cache", tenancy.AuditTarget(tenant))
	if err != nil {
		return 0, err
	}
	res, err := h.scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds:     []raftstore.Cond{cond(raftstore.CondPresent, "kek_current", 0)},
		SystemOps: []raftstore.Op{sysRecords.Put(sysPurgePrefix+tenant, h.stamp())},
		Audit:     [][]byte{a},
	})
	n := h.purgeLocal(tenant) // whatever the outcome: dropping is always safe
	if err != nil {
		return n, fmt.Errorf("keyring: purge %s: %w", tenant, err)
	}
	if !res.Applied {
		return n, fmt.Errorf("%w: %s", ErrNoKeys, tenant)
	}
	return n, nil
}

// purgeLocal drops the tenant's cached keys and its root on this node.
func (h *Hierarchy) purgeLocal(tenant string) int {
	h.mu.Lock()
	delete(h.roots, tenant)
	h.mu.Unlock()
	return h.cache.Purge(tenant)
}
