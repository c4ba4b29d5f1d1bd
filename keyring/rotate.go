package keyring

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/appliance/audit"
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
	err := h.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		_, _, st.Rewrapping = r.Get(SysPath(), []byte(sysRewrapPrefix+tenant))
		r.Scan(keysPath(tenant), nil, 0, func(k, v []byte, _ uint64) bool {
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
func (h *Hierarchy) Rotate(ctx context.Context, caller audit.Caller, tenant string) (_ uint32, err error) {
	defer failClosed(tenant, &err)
	st, err := h.Status(ctx, tenant)
	if err != nil {
		return 0, err
	}
	r, err := h.root(ctx, tenant)
	if err != nil {
		return 0, err
	}
	p := keysPath(tenant)
	next := st.CurrentKEK + 1
	conds := []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: p, Key: fmt.Appendf(nil, "kek/%d", next)}}
	var ops []raftstore.Op
	if vr, ok := r.(*VaultRoot); ok {
		if _, err := vr.RotateTransit(ctx); err != nil {
			return 0, err
		}
		err := h.store.View(ctx, raftstore.Linearizable, func(rt *raftstore.ReadTx) error {
			c, o, err := rewrapKEKs(rt, p, func(wrapped []byte) ([]byte, error) { return vr.RewrapKEK(ctx, tenant, wrapped) })
			conds, ops = append(conds, c...), append(ops, o...)
			return err
		})
		if err != nil {
			return 0, err
		}
		ops = append(ops, put(p, "vault_rotated_at", []byte(h.now().UTC().Format(time.RFC3339Nano))))
	}
	kek, err := NewKey(next)
	if err != nil {
		return 0, err
	}
	w, err := r.WrapKEK(ctx, tenant, kek)
	if err != nil {
		return 0, err
	}
	ops = append(ops,
		put(p, fmt.Sprintf("kek/%d", next), w),
		put(p, "kek_current", []byte(strconv.FormatUint(uint64(next), 10))),
		put(SysPath(), sysRewrapPrefix+tenant, []byte(h.now().UTC().Format(time.RFC3339Nano))))
	a, err := h.audit(caller, tenant, "key.rotate", fmt.Sprintf("kek:%d", next))
	if err != nil {
		return 0, err
	}
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds:   conds,
		Ops:     ops,
		Appends: []raftstore.Append{a},
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
	defer failClosed(tenant, &err)
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
	err = h.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		// Keys sort "dek", "dek/", "dek/a"...: start right after "dek".
		r.Scan(keysPath(tenant), []byte("dek"), 0, func(k, v []byte, ver uint64) bool {
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
		a, err := h.audit(audit.System(), tenant, "key.rewrap", ref)
		if err != nil {
			return moved, err
		}
		p := keysPath(tenant)
		res, err := h.store.Apply(ctx, &raftstore.Txn{
			Conds:   []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: p, Key: it.key, Version: it.version}},
			Ops:     []raftstore.Op{{Kind: raftstore.OpPut, Bucket: p, Key: it.key, Value: w}},
			Appends: []raftstore.Append{a},
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
	_, err = h.store.Apply(ctx, &raftstore.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: SysPath(), Key: []byte(sysRewrapPrefix + tenant), Version: markerVersion}},
		Ops:   []raftstore.Op{{Kind: raftstore.OpDelete, Bucket: SysPath(), Key: []byte(sysRewrapPrefix + tenant)}},
	})
	return err
}

// ChangeProvider moves a tenant's root: every KEK is unwrapped with the
// old root and wrapped with the new one, in one transaction with the new
// provider record. Changing a Vault tenant's credentials (a new token or
// AppRole secret) is a provider change to the same transit key. Data keys
// and data are untouched.
func (h *Hierarchy) ChangeProvider(ctx context.Context, caller audit.Caller, tenant string, spec ProviderSpec) (err error) {
	defer failClosed(tenant, &err)
	old, err := h.root(ctx, tenant)
	if err != nil {
		return err
	}
	newRoot, ops, err := h.newRoot(ctx, tenant, &spec)
	if err != nil {
		return err
	}
	p := keysPath(tenant)
	var conds []raftstore.Cond
	switch spec.Kind {
	case ProviderAge:
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: p, Key: []byte("vault_auth")},
			raftstore.Op{Kind: raftstore.OpDelete, Bucket: SysPath(), Key: []byte(sysVaultPrefix + tenant)})
	case ProviderVault:
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: p, Key: []byte("root")})
	}
	specJSON, _ := json.Marshal(spec)
	ops = append(ops, put(p, "provider", specJSON))
	err = h.store.View(ctx, raftstore.Linearizable, func(rt *raftstore.ReadTx) error {
		if _, ver, ok := rt.Get(p, []byte("provider")); ok {
			conds = append(conds, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: p, Key: []byte("provider"), Version: ver})
		} else {
			conds = append(conds, raftstore.Cond{Kind: raftstore.CondAbsent, Bucket: p, Key: []byte("provider")})
		}
		c, o, err := rewrapKEKs(rt, p, func(wrapped []byte) ([]byte, error) {
			kek, err := old.UnwrapKEK(ctx, tenant, wrapped)
			if err != nil {
				return nil, err
			}
			return newRoot.WrapKEK(ctx, tenant, kek)
		})
		conds, ops = append(conds, c...), append(ops, o...)
		return err
	})
	if err != nil {
		return err
	}
	a, err := h.audit(caller, tenant, "key.provider_change", "provider:"+spec.Kind)
	if err != nil {
		return err
	}
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds: conds, Ops: append(ops, put(SysPath(), sysPurgePrefix+tenant, []byte(h.now().UTC().Format(time.RFC3339Nano)))),
		Appends: []raftstore.Append{a},
	})
	if err != nil {
		return fmt.Errorf("keyring: change provider of %s: %w", tenant, err)
	}
	h.purgeLocal(tenant)
	if !res.Applied {
		return fmt.Errorf("keyring: change provider of %s: %w", tenant, ErrConcurrent)
	}
	return nil
}

// rewrapKEKs reads every stored KEK under p and returns, for the
// transaction that replaces them, a version condition and a put of
// rewrap(wrapped) for each: a KEK changed meanwhile fails the transaction.
func rewrapKEKs(r *raftstore.ReadTx, p [][]byte, rewrap func(wrapped []byte) ([]byte, error)) ([]raftstore.Cond, []raftstore.Op, error) {
	var conds []raftstore.Cond
	var ops []raftstore.Op
	var err error
	// Keys sort "kek", "kek/1"...: start right after "kek".
	r.Scan(p, []byte("kek"), 0, func(k, v []byte, ver uint64) bool {
		if !strings.HasPrefix(string(k), "kek/") {
			return string(k) < "kek/"
		}
		var nw []byte
		if nw, err = rewrap(v); err != nil {
			return false
		}
		conds = append(conds, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: p, Key: k, Version: ver})
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: p, Key: k, Value: nw})
		return true
	})
	return conds, ops, err
}
