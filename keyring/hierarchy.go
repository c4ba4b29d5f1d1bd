package keyring

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// Store is the replicated store the key hierarchy lives in (raftstore).
type Store interface {
	Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error)
	View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error
}

// Hierarchy manages the key hierarchy of tenants, stored below each
// tenant's bucket (["tenant:<id>", "keys"]):
//
//	provider      where the root lives (ProviderSpec as JSON, no credentials)
//	root          age provider: the tenant root identity, age-encrypted to the
//	              seal recipients
//	vault_auth    vault provider: the Vault credentials, age-encrypted to the
//	              seal recipients
//	kek/<v>       KEK version v, wrapped by the root (age file, or a transit
//	              ciphertext "vault:vN:...")
//	kek_current   the current KEK version (decimal)
//	dek/<subject> the subject's data key ("" subject: "dek/" is the tenant's),
//	              wrapped by a KEK (Wrap format: names its KEK version)
//	vault_rotated_at  when the transit key was last rotated by Custos
//
// and the cluster-wide records below ["sys", "keyring"] (see SysPath).
//
// Every key operation appends an entry to the tenant's chain
// ("tenant:<id>") in the same transaction. Nothing unwrapped is stored; the
// unwrapped keys live in the Cache. Reads of key material are linearizable,
// so a shredded key cannot come back through a lagging follower.
type Hierarchy struct {
	store        Store
	ids          []age.Identity // nil on a sealed node
	cache        *Cache
	now          func() time.Time
	vaultTimeout time.Duration

	mu    sync.Mutex
	seal  []age.Recipient
	roots map[string]Root
}

// HierarchyOptions configure a Hierarchy.
type HierarchyOptions struct {
	// Seal are the recipients new tenant roots and Vault credentials are
	// encrypted to. Nil: read from the cluster (SysPath, written at
	// bootstrap by BootstrapOps).
	Seal []age.Recipient
	// Identities unseal tenant roots. Nil: this node is sealed and fails
	// closed with ErrSealed.
	Identities []age.Identity
	// Cache holds unwrapped keys (default: 5 min TTL, 10,000 keys).
	Cache *Cache
	// Now is the clock of audit entries (default time.Now).
	Now func() time.Time
	// VaultTimeout bounds each Vault call (default 5s).
	VaultTimeout time.Duration
}

// NewHierarchy makes a Hierarchy over store.
func NewHierarchy(store Store, o HierarchyOptions) *Hierarchy {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Cache == nil {
		o.Cache = NewCache(0, 0, o.Now)
	}
	return &Hierarchy{
		store: store, seal: o.Seal, ids: o.Identities, cache: o.Cache, now: o.Now,
		vaultTimeout: o.VaultTimeout, roots: map[string]Root{},
	}
}

// Sealed reports whether this node has no seal identity.
func (h *Hierarchy) Sealed() bool { return h.ids == nil }

// Cache is the hierarchy's cache of unwrapped keys.
func (h *Hierarchy) Cache() *Cache { return h.cache }

// CachedKeys is how many unwrapped keys this node holds.
func (h *Hierarchy) CachedKeys() int { return h.cache.Len() }

// Records below ["sys", "keyring"].
const (
	sysSealRecipients = "seal_recipients" // one age recipient per line
	sysPurgePrefix    = "purge/"          // purge/<tenant>: its version is the purge signal
	sysShred          = "shred"           // its version is the compaction signal
	sysRewrapPrefix   = "rewrap/"         // rewrap/<tenant>: a rewrap is to be finished
	sysVaultPrefix    = "vault/"          // vault/<tenant>: transit key id, for trimming
)

// SysPath is the bucket of the keyring's cluster-wide records.
func SysPath() [][]byte { return raftstore.Path("sys", "keyring") }

// BootstrapOps record the cluster's seal recipients; `operator init` makes
// them part of the bootstrap transaction.
func BootstrapOps(recipients []string) ([]raftstore.Op, error) {
	if len(recipients) == 0 {
		return nil, errNoSealRecipients
	}
	if _, err := parseRecipients(strings.Join(recipients, "\n")); err != nil {
		return nil, err
	}
	return []raftstore.Op{{Kind: raftstore.OpPut, Bucket: SysPath(), Key: []byte(sysSealRecipients), Value: []byte(strings.Join(recipients, "\n"))}}, nil
}

func parseRecipients(s string) ([]age.Recipient, error) {
	rs, err := age.ParseRecipients(strings.NewReader(s))
	if err != nil {
		return nil, fmt.Errorf("keyring: seal recipients: %w", err)
	}
	return rs, nil
}

// SealRecipients reads the cluster's seal recipients.
func SealRecipients(ctx context.Context, store Store) ([]string, error) {
	var v []byte
	err := store.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
		v, _, _ = r.Get(SysPath(), []byte(sysSealRecipients))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: read seal recipients: %w", err)
	}
	if len(v) == 0 {
		return nil, errNoSealRecipients
	}
	return strings.Split(string(v), "\n"), nil
}

func (h *Hierarchy) sealRecipients(ctx context.Context) ([]age.Recipient, error) {
	h.mu.Lock()
	seal := h.seal
	h.mu.Unlock()
	if seal != nil {
		return seal, nil
	}
	rs, err := SealRecipients(ctx, h.store)
	if err != nil {
		return nil, err
	}
	if seal, err = parseRecipients(strings.Join(rs, "\n")); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.seal = seal
	h.mu.Unlock()
	return seal, nil
}

func keysPath(tenant string) [][]byte { return raftstore.Path("tenant:"+tenant, "keys") }

func chainOf(tenant string) []byte { return []byte("tenant:" + tenant) }

func put(bucket [][]byte, key string, value []byte) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: bucket, Key: []byte(key), Value: value}
}

// audit is the tenant-chain entry of a key operation, for the
// transaction that makes it.
func (h *Hierarchy) audit(caller audit.Caller, tenant, action, target string) (raftstore.Append, error) {
	a, err := audit.Record(audit.TenantChain(tenant), caller.Entry(h.now().UTC(), action, target, audit.OutcomeSuccess, nil))
	if err != nil {
		return raftstore.Append{}, fmt.Errorf("keyring: audit entry: %w", err)
	}
	return a, nil
}

// subjectRef names a subject in audit entries by its pseudonym under the
// tenant's audit key: subject ids may be personal data.
func (h *Hierarchy) subjectRef(ctx context.Context, tenant, subject string) (string, error) {
	if subject == "" {
		return "tenant:" + tenant, nil
	}
	k, err := h.AuditKey(ctx, tenant)
	if err != nil {
		return "", err
	}
	return audit.Pseudonym(k, "subject", subject), nil
}

// AuditKey is the tenant's audit key: what pseudonyms in its audit entries
// are keyed with. It is derived from the tenant's own data key, so it
// lives as long as the tenant and never leaves memory.
func (h *Hierarchy) AuditKey(ctx context.Context, tenant string) ([]byte, error) {
	return h.derivedKey(ctx, tenant, "custos/audit-pseudonym/v1")
}

// IndexKey is the tenant's blind-index key: what equality-search tokens
// of encrypted fields are HMAC'd with. Derived from the tenant key like
// AuditKey, for another purpose.
func (h *Hierarchy) IndexKey(ctx context.Context, tenant string) ([]byte, error) {
	return h.derivedKey(ctx, tenant, "custos/blind-index/v1")
}

func (h *Hierarchy) derivedKey(ctx context.Context, tenant, purpose string) ([]byte, error) {
	k, err := h.DataKey(ctx, tenant, "")
	if err != nil {
		return nil, err
	}
	out, err := hkdf.Key(sha256.New, k.raw[:], nil, purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("keyring: %s key: %w", purpose, err)
	}
	return out, nil
}

// Provisioning is what creating a tenant's keys adds to the transaction
// that creates the tenant.
type Provisioning struct {
	Conds   []raftstore.Cond
	Ops     []raftstore.Op
	Appends []raftstore.Append
	Spec    ProviderSpec // normalized, Derived read from Vault
}

// PrepareProvision makes a tenant's root (or checks its Vault key), KEK
// version 1 and tenant data key, and returns them as transaction parts:
// the tenant registry applies them in the transaction that creates the
// tenant, so a tenant never exists without keys. For a Vault tenant it
// calls Vault (reads the transit key, wraps the KEK): bad credentials or
// an unreachable Vault fail the creation with an *UnavailableError.
func (h *Hierarchy) PrepareProvision(ctx context.Context, caller audit.Caller, tenant string, spec ProviderSpec) (_ *Provisioning, err error) {
	defer failClosed(tenant, &err)
	root, rootOps, err := h.newRoot(ctx, tenant, &spec)
	if err != nil {
		return nil, err
	}
	p := keysPath(tenant)
	prov := &Provisioning{Conds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: p, Key: []byte("kek_current")}}, Ops: rootOps}
	specJSON, _ := json.Marshal(spec)
	kek, err := NewKey(1)
	if err != nil {
		return nil, err
	}
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
	prov.Ops = append(prov.Ops,
		put(p, "provider", specJSON),
		put(p, "kek/1", wkek),
		put(p, "kek_current", []byte("1")),
		put(p, "dek/", wdek))
	a, err := h.audit(caller, tenant, "key.provision", "provider:"+spec.Kind)
	if err != nil {
		return nil, err
	}
	prov.Appends = []raftstore.Append{a}
	prov.Spec = spec
	return prov, nil
}

// newRoot makes a tenant root for spec (normalizing it; for Vault, reading
// the transit key, whose derivation it records) and the writes that store
// it: the sealed age identity, or the encrypted Vault credentials and the
// transit-key index entry.
func (h *Hierarchy) newRoot(ctx context.Context, tenant string, spec *ProviderSpec) (Root, []raftstore.Op, error) {
	if err := spec.Normalize(); err != nil {
		return nil, nil, err
	}
	seal, err := h.sealRecipients(ctx)
	if err != nil {
		return nil, nil, err
	}
	p := keysPath(tenant)
	if spec.Kind == ProviderAge {
		r, sealed, err := NewAgeRoot(tenant, seal...)
		if err != nil {
			return nil, nil, err
		}
		return r, []raftstore.Op{put(p, "root", sealed)}, nil
	}
	v := *spec.Vault
	vr, err := h.newVaultRoot(v)
	if err != nil {
		return nil, nil, err
	}
	info, err := vr.KeyInfo(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: tenant %s: transit key %s/%s: %w", tenant, v.Mount, v.Key, err)
	}
	v.Derived = info.Derived
	spec.Vault = &v
	if vr, err = h.newVaultRoot(v); err != nil { // now with the derivation context
		return nil, nil, err
	}
	creds, _ := json.Marshal(vaultAuth{Tenant: tenant, Token: v.Token, RoleID: v.RoleID, SecretID: v.SecretID})
	enc, err := ageEncrypt(creds, seal...)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: encrypt vault credentials: %w", err)
	}
	return vr, []raftstore.Op{put(p, "vault_auth", enc), put(SysPath(), sysVaultPrefix+tenant, []byte(v.transitID()))}, nil
}

// Provision creates the tenant's keys on their own (the registry uses
// PrepareProvision instead). It is idempotent: an already provisioned
// tenant is left alone.
func (h *Hierarchy) Provision(ctx context.Context, caller audit.Caller, tenant string, spec ProviderSpec) error {
	prov, err := h.PrepareProvision(ctx, caller, tenant, spec)
	if err != nil {
		return err
	}
	res, err := h.store.Apply(ctx, &raftstore.Txn{Conds: prov.Conds, Ops: prov.Ops, Appends: prov.Appends})
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

// tenantKeys is a consistent read of a tenant's key records.
type tenantKeys struct {
	provider ProviderSpec
	recs     map[string][]byte
}

func (h *Hierarchy) readKeys(ctx context.Context, tenant string, names ...string) (tenantKeys, error) {
	tk := tenantKeys{recs: map[string][]byte{}}
	err := h.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		for _, n := range append([]string{"provider", "root", "kek_current"}, names...) {
			if v, _, ok := r.Get(keysPath(tenant), []byte(n)); ok {
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
	err := h.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		v, _, ok = r.Get(keysPath(tenant), []byte(key))
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
		return r.UnwrapKEK(ctx, tenant, w)
	})
}

// DataKey returns the data key of subject ("" for the tenant's own),
// creating a subject key on first use.
func (h *Hierarchy) DataKey(ctx context.Context, tenant, subject string) (_ *Key, err error) {
	defer failClosed(tenant, &err)
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
	a, err := h.audit(audit.System(), tenant, "key.create", ref)
	if err != nil {
		return nil, err
	}
	p := keysPath(tenant)
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds: []raftstore.Cond{
			{Kind: raftstore.CondPresent, Bucket: p, Key: []byte("kek_current")},
			{Kind: raftstore.CondAbsent, Bucket: p, Key: []byte("dek/" + subject)},
		},
		Ops:     []raftstore.Op{put(p, "dek/"+subject, w)},
		Appends: []raftstore.Append{a},
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

// ShredOps destroy subject's data key: the erasure puts them in the same
// transaction that deletes the subject's rows, with the returned audit
// entry (the subject named by its pseudonym). They also tell every node to
// drop the tenant's cached keys and to compact its files within the
// compaction window (see Janitor), so no file the cluster keeps holds the
// key's bytes afterwards.
func (h *Hierarchy) ShredOps(ctx context.Context, caller audit.Caller, tenant, subject string) ([]raftstore.Op, raftstore.Append, error) {
	ref, err := h.subjectRef(ctx, tenant, subject)
	if err != nil {
		return nil, raftstore.Append{}, err
	}
	a, err := h.audit(caller, tenant, "key.shred", ref)
	if err != nil {
		return nil, raftstore.Append{}, err
	}
	now := []byte(h.now().UTC().Format(time.RFC3339Nano))
	return []raftstore.Op{
		{Kind: raftstore.OpDelete, Bucket: keysPath(tenant), Key: []byte("dek/" + subject)},
		put(SysPath(), sysPurgePrefix+tenant, now),
		put(SysPath(), sysShred, now),
	}, a, nil
}

// Shred destroys subject's data key on its own (the erasure uses ShredOps
// in its own transaction) and drops it from this node's cache at once.
func (h *Hierarchy) Shred(ctx context.Context, caller audit.Caller, tenant, subject string) error {
	ops, a, err := h.ShredOps(ctx, caller, tenant, subject)
	if err != nil {
		return err
	}
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds:   []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: keysPath(tenant), Key: []byte("dek/" + subject)}},
		Ops:     ops,
		Appends: []raftstore.Append{a},
	})
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
	now := []byte(h.now().UTC().Format(time.RFC3339Nano))
	return []raftstore.Op{
		put(SysPath(), sysPurgePrefix+tenant, now),
		put(SysPath(), sysShred, now),
		{Kind: raftstore.OpDelete, Bucket: SysPath(), Key: []byte(sysRewrapPrefix + tenant)},
		{Kind: raftstore.OpDelete, Bucket: SysPath(), Key: []byte(sysVaultPrefix + tenant)},
	}
}

// Forget drops the subject's cached key on this node.
func (h *Hierarchy) Forget(tenant, subject string) {
	h.cache.Delete(CacheKey{Tenant: tenant, Subject: subject})
}

// PurgeCache drops every cached key of tenant on every node: on this one
// at once, on the others within a tick of their janitor (they watch the
// purge record this writes). It returns how many keys this node dropped.
func (h *Hierarchy) PurgeCache(ctx context.Context, caller audit.Caller, tenant string) (int, error) {
	a, err := h.audit(caller, tenant, "key.purge_cache", "tenant:"+tenant)
	if err != nil {
		return 0, err
	}
	p := keysPath(tenant)
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds:   []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: p, Key: []byte("kek_current")}},
		Ops:     []raftstore.Op{put(SysPath(), sysPurgePrefix+tenant, []byte(h.now().UTC().Format(time.RFC3339Nano)))},
		Appends: []raftstore.Append{a},
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

// parseVersion reads a stored key version (decimal).
func parseVersion(b []byte) (uint32, error) {
	n, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: key version %q", ErrFormat, b)
	}
	return uint32(n), nil
}

// isVaultCiphertext tells a transit ciphertext from an age file.
func isVaultCiphertext(b []byte) bool { return bytes.HasPrefix(b, []byte("vault:v")) }
