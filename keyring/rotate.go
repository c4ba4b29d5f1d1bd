package keyring

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/custos/custos/raftstore"
)

// KeyStatus is a tenant's key state, for `GET /v1/tenants/{id}/keys`.
type KeyStatus struct {
	CurrentKEK uint32         `json:"current_kek"`
	DataKeys   int            `json:"data_keys"`
	ByKEK      map[uint32]int `json:"data_keys_by_kek"`
	Pending    int            `json:"rewrap_pending"` // data keys not yet under the current KEK
	KEKs       []uint32       `json:"keks"`
}

// Status reads a tenant's key state.
func (h *Hierarchy) Status(ctx context.Context, tenant string) (KeyStatus, error) {
	st := KeyStatus{ByKEK: map[uint32]int{}}
	found := false
	err := h.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.Scan(keysPath(tenant), nil, 0, func(k, v []byte, _ uint64) bool {
			key := string(k)
			switch {
			case key == "kek_current":
				found = true
				st.CurrentKEK, _ = parseVersion(v)
			case strings.HasPrefix(key, "kek/"):
				if n, err := parseVersion([]byte(key[4:])); err == nil {
					st.KEKs = append(st.KEKs, n)
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
	st.Pending = st.DataKeys - st.ByKEK[st.CurrentKEK]
	return st, nil
}

// Rotate adds KEK version current+1 and makes it current; new data keys are
// wrapped under it at once. Rewrap then moves existing data keys to it.
// Data is never re-encrypted: data keys stay the same, only their wrapping
// changes.
func (h *Hierarchy) Rotate(ctx context.Context, tenant string) (uint32, error) {
	st, err := h.Status(ctx, tenant)
	if err != nil {
		return 0, err
	}
	r, err := h.root(ctx, tenant)
	if err != nil {
		return 0, err
	}
	next := st.CurrentKEK + 1
	kek, err := NewKey(next)
	if err != nil {
		return 0, err
	}
	w, err := r.WrapKEK(ctx, tenant, kek)
	if err != nil {
		return 0, err
	}
	p := keysPath(tenant)
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: p, Key: fmt.Appendf(nil, "kek/%d", next)}},
		Ops: []raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: p, Key: fmt.Appendf(nil, "kek/%d", next), Value: w},
			{Kind: raftstore.OpPut, Bucket: p, Key: []byte("kek_current"), Value: []byte(strconv.FormatUint(uint64(next), 10))},
		},
		Appends: []raftstore.Append{h.audit(tenant, "key.rotate", fmt.Sprintf("kek:%d", next))},
	})
	if err != nil {
		return 0, fmt.Errorf("keyring: rotate %s: %w", tenant, err)
	}
	if !res.Applied {
		return 0, fmt.Errorf("keyring: rotate %s: a concurrent rotation won", tenant)
	}
	h.cache.Put(CacheKey{Tenant: tenant, KEK: true, Version: next}, kek)
	return next, nil
}

// Rewrap moves up to batch data keys of tenant from older KEKs to the
// current one, each in its own conditional transaction (a key shredded or
// rewrapped meanwhile is skipped). It returns how many it moved; call it
// until it returns 0.
func (h *Hierarchy) Rewrap(ctx context.Context, tenant string, batch int) (int, error) {
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
		p := keysPath(tenant)
		res, err := h.store.Apply(ctx, &raftstore.Txn{
			Conds:   []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: p, Key: it.key, Version: it.version}},
			Ops:     []raftstore.Op{{Kind: raftstore.OpPut, Bucket: p, Key: it.key, Value: w}},
			Appends: []raftstore.Append{h.audit(tenant, "key.rewrap", "subject:"+subject)},
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
