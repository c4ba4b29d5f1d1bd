package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// tenantKeys is a consistent read of a tenant's key records.
type tenantKeys struct {
	provider ProviderSpec
	recs     map[string][]byte
}

func (h *Hierarchy) readKeys(ctx context.Context, tenant string, names ...string) (tenantKeys, error) {
	tk := tenantKeys{recs: map[string][]byte{}}
	err := h.scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		for _, n := range append([]string{"provider", "root", "kek_current"}, names...) {
			if v, _, ok := r.Get(keysBucket, []byte(n)); ok {
				tk.recs[n] = v
			}
		}
		return nil
	})
	if err != nil {
		return tk, fmt.Errorf("keyring: read keys of %s: %w", tenant, err)
	}
	if tk.recs["kek_current"] == nil {
		return tk, fmt.Errorf("%w: %s", ErrNoKeys, tenant)
	}
	tk.provider = ProviderSpec{Kind: ProviderAge}
	if b := tk.recs["provider"]; b != nil {
		if tk.provider, err = decodeProvider(b); err != nil {
			return tk, err
		}
	}
	return tk, nil
}

// root returns the tenant's unsealed root.
func (h *Hierarchy) root(ctx context.Context, tenant string) (Root, error) {
	h.mu.Lock()
	r, ok := h.roots[tenant]
	h.mu.Unlock()
	if ok {
		return r, nil
	}
	if h.ids == nil {
		return nil, fmt.Errorf("tenant %s: %w", tenant, ErrSealed)
	}
	tk, err := h.readKeys(ctx, tenant, "vault_auth")
	if err != nil {
		return nil, err
	}
	switch tk.provider.Kind {
	case ProviderAge:
		if r, err = OpenAgeRoot(tenant, tk.recs["root"], h.ids...); err != nil {
			return nil, err
		}
	case ProviderVault:
		pt, err := ageDecrypt(tk.recs["vault_auth"], h.ids...)
		if err != nil {
			return nil, fmt.Errorf("%w: tenant %s: the seal identity does not open the Vault credentials", ErrRootUnavailable, tenant)
		}
		var a vaultAuth
		if err := json.Unmarshal(pt, &a); err != nil || a.Tenant != tenant {
			return nil, fmt.Errorf("%w: vault credentials are not tenant %s's", ErrOpen, tenant)
		}
		v := *tk.provider.Vault
		v.Token, v.RoleID, v.SecretID = a.Token, a.RoleID, a.SecretID
		if r, err = h.newVaultRoot(v); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: tenant %s: unknown key provider %q", ErrFormat, tenant, tk.provider.Kind)
	}
	h.mu.Lock()
	h.roots[tenant] = r
	h.mu.Unlock()
	return r, nil
}

func (h *Hierarchy) read(ctx context.Context, tenant, key string) ([]byte, error) {
	var v []byte
	var ok bool
	err := h.scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		v, _, ok = r.Get(keysBucket, []byte(key))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: read %s of %s: %w", key, tenant, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s of %s", ErrNoKeys, key, tenant)
	}
	return v, nil
}

// kek returns KEK version v of tenant, through the cache.
func (h *Hierarchy) kek(ctx context.Context, tenant string, v uint32) (*Key, error) {
	return h.cache.GetOrLoad(ctx, CacheKey{Tenant: tenant, KEK: true, Version: v}, func(ctx context.Context) (*Key, error) {
		r, err := h.root(ctx, tenant)
		if err != nil {
			return nil, err
		}
		w, err := h.read(ctx, tenant, fmt.Sprintf("kek/%d", v))
		if err != nil {
			return nil, err
		}
		h.rootCalls.Add(1)
		return r.UnwrapKEK(ctx, tenant, w)
	})
}

// DataKey returns the data key of subject ("" for the tenant's own),
// creating a subject key on first use.
func (h *Hierarchy) DataKey(ctx context.Context, tenant, subject string) (_ *Key, err error) {
	defer h.failClosed(tenant, &err)
	return h.cache.GetOrLoad(ctx, CacheKey{Tenant: tenant, Subject: subject}, func(ctx context.Context) (*Key, error) {
		w, err := h.read(ctx, tenant, "dek/"+subject)
		if errors.Is(err, ErrNoKeys) && subject != "" {
			return h.createSubjectKey(ctx, tenant, subject)
		}
		if err != nil {
			return nil, err
		}
		kv, _, err := WrappedVersions(w)
		if err != nil {
			return nil, err
		}
		kek, err := h.kek(ctx, tenant, kv)
		if err != nil {
			return nil, err
		}
		return Unwrap(kek, KeyContext{Tenant: tenant, Subject: subject}, w)
	})
}

func (h *Hierarchy) createSubjectKey(ctx context.Context, tenant, subject string) (*Key, error) {
	cur, err := h.read(ctx, tenant, "kek_current")
	if err != nil {
		return nil, err
	}
	v, err := parseVersion(cur)
	if err != nil {
		return nil, fmt.Errorf("keyring: kek_current of %s: %w", tenant, err)
	}
	kek, err := h.kek(ctx, tenant, v)
	if err != nil {
		return nil, err
	}
	dek, err := NewKey(1)
	if err != nil {
		return nil, err
	}
	w, err := Wrap(kek, KeyContext{Tenant: tenant, Subject: subject}, dek)
	if err != nil {
		return nil, err
	}
	ref, err := h.subjectRef(ctx, tenant, subject)
	if err != nil {
		return nil, err
	}
	a, err := h.audit(h.system, "key.create", ref)
	if err != nil {
		return nil, err
	}
	res, err := h.scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{
			cond(raftstore.CondPresent, "kek_current", 0),
			cond(raftstore.CondAbsent, "dek/"+subject, 0),
		},
		Ops:   []raftstore.Op{put("dek/"+subject, w)},
		Audit: [][]byte{a},
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: create key of %s/%s: %w", tenant, subject, err)
	}
	switch {
	case res.Applied:
		return dek, nil
	case res.FailedCond == 0:
		return nil, fmt.Errorf("%w: %s", ErrNoKeys, tenant)
	}
	// Someone else created it first: use theirs.
	w, err = h.read(ctx, tenant, "dek/"+subject)
	if err != nil {
		return nil, err
	}
	return Unwrap(kek, KeyContext{Tenant: tenant, Subject: subject}, w)
}
