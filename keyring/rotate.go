package keyring

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// KeyStatus is a tenant's key state, for `GET /v1/tenants/{id}/keys`. It
// holds no key material and no credentials.
type KeyStatus struct {
	Tenant     string         `json:"tenant"`
	Provider   ProviderSpec   `json:"provider"`
	CurrentKEK uint32         `json:"current_kek"`
	KEKs       []uint32       `json:"keks"`
	DataKeys   int            `json:"data_keys"`
	ByKEK      map[uint32]int `json:"data_keys_by_kek"`
	// Pending counts data keys not yet under the current KEK; Rewrapping
	// says a background rewrap is scheduled or running.
	Pending    int  `json:"rewrap_pending"`
	Rewrapping bool `json:"rewrapping"`
	// TransitVersions are the transit key versions the tenant's KEKs are
	// encrypted under (Vault tenants).
	TransitVersions []int      `json:"transit_versions,omitempty"`
	VaultRotatedAt  *time.Time `json:"vault_rotated_at,omitempty"`
}

// Status reads a tenant's key state.
func (h *Hierarchy) Status(ctx context.Context, tenant string) (KeyStatus, error) {
	st := KeyStatus{Tenant: tenant, ByKEK: map[uint32]int{}, KEKs: []uint32{}, Provider: ProviderSpec{Kind: ProviderAge}}
	found := false
	var perr error
	err := h.tenancy.ViewSystem(ctx, raftstore.Linearizable, sysRecords, func(r tenancy.SystemRead) error {
		_, _, st.Rewrapping = r.Get(sysRewrapPrefix + tenant)
		r.Tenant(tenant).Scan(keysBucket, nil, 0, func(k, v []byte, _ uint64) bool {
			key := string(k)
			switch {
			case key == "provider":
				st.Provider, perr = decodeProvider(v)
			case key == "kek_current":
				found = true
				st.CurrentKEK, _ = parseVersion(v)
			case key == "vault_rotated_at":
				if t, err := time.Parse(time.RFC3339Nano, string(v)); err == nil {
					st.VaultRotatedAt = &t
				}
			case strings.HasPrefix(key, "kek/"):
				if n, err := parseVersion([]byte(key[4:])); err == nil {
					st.KEKs = append(st.KEKs, n)
				}
				if isVaultCiphertext(v) {
					if tv, err := TransitVersion(v); err == nil {
						st.TransitVersions = append(st.TransitVersions, tv)
					}
				}
			case strings.HasPrefix(key, "dek/"):
				if kv, _, err := WrappedVersions(v); err == nil {
					st.ByKEK[kv]++
					st.DataKeys++
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("keyring: status of %s: %w", tenant, err)
	}
	if !found {
		return st, fmt.Errorf("%w: %s", ErrNoKeys, tenant)
	}
	if perr != nil {
		return st, perr
	}
	sort.Slice(st.KEKs, func(i, j int) bool { return st.KEKs[i] < st.KEKs[j] })
	sort.Ints(st.TransitVersions)
	st.Pending = st.DataKeys - st.ByKEK[st.CurrentKEK]
	return st, nil
}

// Rotate adds KEK version current+1 and makes it current; new data keys are
// wrapped under it at once, and the janitor rewraps the existing ones in
// the background (Rewrap; progress in Status). Data is never re-encrypted:
// data keys stay the same, only their wrapping changes.
//
// For a Vault tenant rotation follows the transit key: Custos rotates the
// transit key, rewraps the stored KEKs to its new version (transit rewrap,
// so Custos never sees the transit key) and wraps the new KEK under it.
// The superseded transit versions are trimmed later by the janitor, once
// no backup that could hold them is kept (TrimAfter).
func (h *Hierarchy) Rotate(ctx context.Context, caller Auditor, tenant string) (_ uint32, err error) {
	defer h.failClosed(tenant, &err)
	st, err := h.Status(ctx, tenant)
	if err != nil {
		return 0, err
	}
	r, err := h.root(ctx, tenant)
	if err != nil {
		return 0, err
	}
	sc := h.scope(tenant)
	next := st.CurrentKEK + 1
	conds := []raftstore.Cond{cond(raftstore.CondAbsent, fmt.Sprintf("kek/%d", next), 0)}
	var ops []raftstore.Op
	if vr, ok := r.(*VaultRoot); ok {
		if _, err := vr.RotateTransit(ctx); err != nil {
			return 0, err
		}
		err := sc.View(ctx, raftstore.Linearizable, func(rt tenancy.Read) error {
			c, o, err := rewrapKEKs(rt, func(wrapped []byte) ([]byte, error) { return vr.RewrapKEK(ctx, tenant, wrapped) })
			conds, ops = append(conds, c...), append(ops, o...)
			return err
		})
		if err != nil {
			return 0, err
		}
		ops = append(ops, put("vault_rotated_at", h.stamp()))
	}
	kek, err := NewKey(next)
	if err != nil {
		return 0, err
	}
	h.rootCalls.Add(1)
	w, err := r.WrapKEK(ctx, tenant, kek)
	if err != nil {
		return 0, err
	}
	ops = append(ops,
		put(fmt.Sprintf("kek/%d", next), w),
		put("kek_current", []byte(strconv.FormatUint(uint64(next), 10))))
	a, err := h.audit(caller, "key.rotate", fmt.Sprintf("kek:%d", next))
	if err != nil {
		return 0, err
	}
	res, err := sc.Apply(ctx, &tenancy.Txn{
		Conds:     conds,
		Ops:       ops,
		SystemOps: []raftstore.Op{sysRecords.Put(sysRewrapPrefix+tenant, h.stamp())},
		Audit:     [][]byte{a},
	})
	if err != nil {
		return 0, fmt.Errorf("keyring: rotate %s: %w", tenant, err)
	}
	if !res.Applied {
		return 0, fmt.Errorf("keyring: rotate %s: %w", tenant, ErrConcurrent)
	}
	h.cache.Put(CacheKey{Tenant: tenant, KEK: true, Version: next}, kek)
	return next, nil
}

// Rewrap moves up to batch data keys of tenant from older KEKs to the
// current one, each in its own conditional transaction (a key shredded or
// rewrapped meanwhile is skipped). It returns how many it moved; call it
// until it returns 0.
func (h *Hierarchy) Rewrap(ctx context.Context, tenant string, batch int) (_ int, err error) {
	defer h.failClosed(tenant, &err)
	st, err := h.Status(ctx, tenant)
	if err != nil {
		return 0, err
	}
	cur, err := h.kek(ctx, tenant, st.CurrentKEK)
	if err != nil {
		return 0, err
	}
	type item struct {
		key     []byte
		wrapped []byte
		version uint64
	}
	var todo []item
	sc := h.scope(tenant)
	err = sc.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		// Keys sort "dek", "dek/", "dek/a"...: start right after "dek".
		r.Scan(keysBucket, []byte("dek"), 0, func(k, v []byte, ver uint64) bool {
			if !strings.HasPrefix(string(k), "dek/") {
				return string(k) < "dek/"
			}
			if kv, _, err := WrappedVersions(v); err == nil && kv != st.CurrentKEK {
				todo = append(todo, item{k, v, ver})
			}
			return len(todo) < batch
		})
		return nil
	})
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, it := range todo {
		subject := strings.TrimPrefix(string(it.key), "dek/")
		kv, _, _ := WrappedVersions(it.wrapped)
		old, err := h.kek(ctx, tenant, kv)
		if err != nil {
			return moved, err
		}
		dek, err := Unwrap(old, KeyContext{Tenant: tenant, Subject: subject}, it.wrapped)
		if err != nil {
			return moved, err
		}
		w, err := Wrap(cur, KeyContext{Tenant: tenant, Subject: subject}, dek)
		if err != nil {
			return moved, err
		}
		ref, err := h.subjectRef(ctx, tenant, subject)
		if err != nil {
			return moved, err
		}
		a, err := h.audit(h.system, "key.rewrap", ref)
		if err != nil {
			return moved, err
		}
		res, err := sc.Apply(ctx, &tenancy.Txn{
			Conds: []raftstore.Cond{cond(raftstore.CondVersion, string(it.key), it.version)},
			Ops:   []raftstore.Op{put(string(it.key), w)},
			Audit: [][]byte{a},
		})
		if err != nil {
			return moved, fmt.Errorf("keyring: rewrap %s/%s: %w", tenant, subject, err)
		}
		if res.Applied {
			moved++
		}
	}
	return moved, nil
}

// finishRewrap rewraps all of tenant's data keys and then clears its
// rewrap record, unless a new rotation set it again meanwhile.
func (h *Hierarchy) finishRewrap(ctx context.Context, tenant string, markerVersion uint64) error {
	for {
		n, err := h.Rewrap(ctx, tenant, 256)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	st, err := h.Status(ctx, tenant)
	if err != nil {
		return err
	}
	if st.Pending > 0 {
		return nil // a rotation raced us; the next tick goes on
	}
	_, err = h.tenancy.ApplySystem(ctx,
		[]raftstore.Cond{sysRecords.Cond(raftstore.CondVersion, sysRewrapPrefix+tenant, markerVersion)},
		[]raftstore.Op{sysRecords.Delete(sysRewrapPrefix + tenant)})
	return err
}

// ChangeProvider moves a tenant's root: every KEK is unwrapped with the
// old root and wrapped with the new one, in one transaction with the new
// provider record. Changing a Vault tenant's credentials (a new token or
// AppRole secret) is a provider change to the same transit key. Data keys
// and data are untouched.
func (h *Hierarchy) ChangeProvider(ctx context.Context, caller Auditor, tenant string, spec ProviderSpec) (err error) {
	defer h.failClosed(tenant, &err)
	old, err := h.root(ctx, tenant)
	if err != nil {
		return err
	}
	newRoot, txn, err := h.newRoot(ctx, tenant, &spec)
	if err != nil {
		return err
	}
	switch spec.Kind {
	case ProviderAge:
		txn.Ops = append(txn.Ops, del("vault_auth"))
		txn.SystemOps = append(txn.SystemOps, sysRecords.Delete(sysVaultPrefix+tenant))
	case ProviderVault:
		txn.Ops = append(txn.Ops, del("root"))
	}
	specJSON, _ := json.Marshal(spec)
	txn.Ops = append(txn.Ops, put("provider", specJSON))
	sc := h.scope(tenant)
	err = sc.View(ctx, raftstore.Linearizable, func(rt tenancy.Read) error {
		if _, ver, ok := rt.Get(keysBucket, []byte("provider")); ok {
			txn.Conds = append(txn.Conds, cond(raftstore.CondVersion, "provider", ver))
		} else {
			txn.Conds = append(txn.Conds, cond(raftstore.CondAbsent, "provider", 0))
		}
		c, o, err := rewrapKEKs(rt, func(wrapped []byte) ([]byte, error) {
			h.rootCalls.Add(2)
			kek, err := old.UnwrapKEK(ctx, tenant, wrapped)
			if err != nil {
				return nil, err
			}
			return newRoot.WrapKEK(ctx, tenant, kek)
		})
		txn.Conds, txn.Ops = append(txn.Conds, c...), append(txn.Ops, o...)
		return err
	})
	if err != nil {
		return err
	}
	a, err := h.audit(caller, "key.provider_change", "provider:"+spec.Kind)
	if err != nil {
		return err
	}
	txn.SystemOps = append(txn.SystemOps, sysRecords.Put(sysPurgePrefix+tenant, h.stamp()))
	txn.Audit = [][]byte{a}
	res, err := sc.Apply(ctx, &txn)
	if err != nil {
		return fmt.Errorf("keyring: change provider of %s: %w", tenant, err)
	}
	h.purgeLocal(tenant)
	if !res.Applied {
		return fmt.Errorf("keyring: change provider of %s: %w", tenant, ErrConcurrent)
	}
	return nil
}

// rewrapKEKs reads every stored KEK of the tenant and returns, for the
// transaction that replaces them, a version condition and a put of
// rewrap(wrapped) for each: a KEK changed meanwhile fails the transaction.
func rewrapKEKs(r tenancy.Read, rewrap func(wrapped []byte) ([]byte, error)) ([]raftstore.Cond, []raftstore.Op, error) {
	var conds []raftstore.Cond
	var ops []raftstore.Op
	var err error
	// Keys sort "kek", "kek/1"...: start right after "kek".
	r.Scan(keysBucket, []byte("kek"), 0, func(k, v []byte, ver uint64) bool {
		if !strings.HasPrefix(string(k), "kek/") {
			return string(k) < "kek/"
		}
		var nw []byte
		if nw, err = rewrap(v); err != nil {
			return false
		}
		conds = append(conds, cond(raftstore.CondVersion, string(k), ver))
		ops = append(ops, put(string(k), nw))
		return true
	})
	return conds, ops, err
}
