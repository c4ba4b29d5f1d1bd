package keyring

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Provisioning is what creating a tenant's keys adds to the transaction
// that creates the tenant.
type Provisioning struct {
	// Txn holds the key records (relative to the tenant's bucket), the
	// keyring's system records and the tenant-chain entry.
	Txn  tenancy.Txn
	Spec ProviderSpec // normalized, Derived read from Vault
}

// PrepareProvision makes a tenant's root (or checks its Vault key), KEK
// version 1 and tenant data key, and returns them as transaction parts:
// the tenant registry applies them in the transaction that creates the
// tenant, so a tenant never exists without keys. For a Vault tenant it
// calls Vault (reads the transit key, wraps the KEK): bad credentials or
// an unreachable Vault fail the creation with an *UnavailableError.
func (h *Hierarchy) PrepareProvision(ctx context.Context, caller Auditor, tenant string, spec ProviderSpec) (_ *Provisioning, err error) {
	defer h.failClosed(tenant, &err)
	root, rootTxn, err := h.newRoot(ctx, tenant, &spec)
	if err != nil {
		return nil, err
	}
	prov := &Provisioning{Txn: rootTxn}
	prov.Txn.Conds = []raftstore.Cond{cond(raftstore.CondAbsent, "kek_current", 0)}
	specJSON, _ := json.Marshal(spec)
	kek, err := NewKey(1)
	if err != nil {
		return nil, err
	}
	h.rootCalls.Add(1)
	wkek, err := root.WrapKEK(ctx, tenant, kek)
	if err != nil {
		return nil, err
	}
	dek, err := NewKey(1)
	if err != nil {
		return nil, err
	}
	wdek, err := Wrap(kek, KeyContext{Tenant: tenant}, dek)
	if err != nil {
		return nil, err
	}
	prov.Txn.Ops = append(prov.Txn.Ops,
		put("provider", specJSON),
		put("kek/1", wkek),
		put("kek_current", []byte("1")),
		put("dek/", wdek))
	a, err := h.audit(caller, "key.provision", "provider:"+spec.Kind)
	if err != nil {
		return nil, err
	}
	prov.Txn.Audit = [][]byte{a}
	prov.Spec = spec
	return prov, nil
}

// newRoot makes a tenant root for spec (normalizing it; for Vault, reading
// the transit key, whose derivation it records) and the writes that store
// it: the sealed age identity, or the encrypted Vault credentials and the
// transit-key index entry.
func (h *Hierarchy) newRoot(ctx context.Context, tenant string, spec *ProviderSpec) (Root, tenancy.Txn, error) {
	if err := spec.Normalize(); err != nil {
		return nil, tenancy.Txn{}, err
	}
	seal, err := h.sealRecipients(ctx)
	if err != nil {
		return nil, tenancy.Txn{}, err
	}
	if spec.Kind == ProviderAge {
		r, sealed, err := NewAgeRoot(tenant, seal...)
		if err != nil {
			return nil, tenancy.Txn{}, err
		}
		return r, tenancy.Txn{Ops: []raftstore.Op{put("root", sealed)}}, nil
	}
	v := *spec.Vault
	vr, err := h.newVaultRoot(v)
	if err != nil {
		return nil, tenancy.Txn{}, err
	}
	info, err := vr.KeyInfo(ctx)
	if err != nil {
		return nil, tenancy.Txn{}, fmt.Errorf("keyring: tenant %s: transit key %s/%s: %w", tenant, v.Mount, v.Key, err)
	}
	v.Derived = info.Derived
	spec.Vault = &v
	if vr, err = h.newVaultRoot(v); err != nil { // now with the derivation context
		return nil, tenancy.Txn{}, err
	}
	creds, _ := json.Marshal(vaultAuth{Tenant: tenant, Token: v.Token, RoleID: v.RoleID, SecretID: v.SecretID})
	enc, err := ageEncrypt(creds, seal...)
	if err != nil {
		return nil, tenancy.Txn{}, fmt.Errorf("keyring: encrypt vault credentials: %w", err)
	}
	return vr, tenancy.Txn{
		Ops:       []raftstore.Op{put("vault_auth", enc)},
		SystemOps: []raftstore.Op{sysRecords.Put(sysVaultPrefix+tenant, []byte(v.transitID()))},
	}, nil
}

// Provision creates the keys of an existing tenant on their own (the
// registry uses PrepareProvision instead). It is idempotent: an already
// provisioned tenant is left alone.
func (h *Hierarchy) Provision(ctx context.Context, caller Auditor, tenant string, spec ProviderSpec) error {
	prov, err := h.PrepareProvision(ctx, caller, tenant, spec)
	if err != nil {
		return err
	}
	res, err := h.scope(tenant).Apply(ctx, &prov.Txn)
	if err != nil {
		return fmt.Errorf("keyring: provision %s: %w", tenant, err)
	}
	if res.Err != nil {
		return fmt.Errorf("keyring: provision %s: %w", tenant, res.Err)
	}
	return nil
}

func (h *Hierarchy) newVaultRoot(v VaultSpec) (*VaultRoot, error) {
	cfg := v.vaultConfig()
	cfg.Timeout = h.vaultTimeout
	return NewVaultRoot(cfg)
}
