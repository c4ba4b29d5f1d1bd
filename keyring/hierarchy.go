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
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Auditor is who a key operation is recorded as in the tenant's audit
// chain: it makes the canonical bytes of the entry of its action on target
// at a time. audit.Principal implements it; keyring does not know the entry
// format (it sits below the appliance).
type Auditor interface {
	AuditEntry(at time.Time, action, target string) ([]byte, error)
}

// Hierarchy manages the key hierarchy of tenants, stored below each
// tenant's bucket, in its "keys" bucket, reached through the tenancy
// boundary:
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
// and the cluster-wide records of its system bucket ["sys", "keyring"]
// (purge, rewrap and Vault-key signals, the seal recipients), which change
// in the same transactions as the tenant's keys.
//
// Every key operation appends an entry to the tenant's chain in the same
// transaction, and is conditioned on the tenant existing. Nothing unwrapped
// is stored; the unwrapped keys live in the Cache. Reads of key material
// are linearizable, so a shredded key cannot come back through a lagging
// follower.
type Hierarchy struct {
	tenancy      *tenancy.Boundary
	ids          []age.Identity // nil on a sealed node
	cache        *Cache
	now          func() time.Time
	vaultTimeout time.Duration
	system       Auditor
	pseudonym    func(key []byte, kind, value string) string

	mu    sync.Mutex
	seal  []age.Recipient
	roots map[string]Root
}

// HierarchyOptions configure a Hierarchy.
type HierarchyOptions struct {
	// Seal are the recipients new tenant roots and Vault credentials are
	// encrypted to. Nil: read from the cluster (the keyring's system
	// records, written at bootstrap by BootstrapOps).
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
	// System is who the hierarchy's own work is recorded as: subject keys
	// made on first use, rewraps after a rotation, transit key trims
	// (audit.System()). Required.
	System Auditor
	// Pseudonym names a subject in audit entries by a keyed hash of its id
	// under the tenant's AuditKey, since subject ids may be personal data
	// (audit.Pseudonym). Required.
	Pseudonym func(key []byte, kind, value string) string
}

// NewHierarchy makes a Hierarchy over the tenants of b. Options without
// System or Pseudonym are a wiring mistake, and panic.
func NewHierarchy(b *tenancy.Boundary, o HierarchyOptions) *Hierarchy {
	if b == nil || o.System == nil || o.Pseudonym == nil {
		panic("keyring: NewHierarchy needs a boundary, a System auditor and a Pseudonym function")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Cache == nil {
		o.Cache = NewCache(0, 0, o.Now)
	}
	return &Hierarchy{
		tenancy: b, seal: o.Seal, ids: o.Identities, cache: o.Cache, now: o.Now,
		vaultTimeout: o.VaultTimeout, system: o.System, pseudonym: o.Pseudonym, roots: map[string]Root{},
	}
}

// Sealed reports whether this node has no seal identity.
func (h *Hierarchy) Sealed() bool { return h.ids == nil }

// Cache is the hierarchy's cache of unwrapped keys.
func (h *Hierarchy) Cache() *Cache { return h.cache }

// CachedKeys is how many unwrapped keys this node holds.
func (h *Hierarchy) CachedKeys() int { return h.cache.Len() }

// Records of the keyring's system bucket.
const (
	sysSealRecipients = "seal_recipients" // one age recipient per line
	sysPurgePrefix    = "purge/"          // purge/<tenant>: its version is the purge signal
	sysShred          = "shred"           // its version is the compaction signal
	sysRewrapPrefix   = "rewrap/"         // rewrap/<tenant>: a rewrap is to be finished
	sysVaultPrefix    = "vault/"          // vault/<tenant>: transit key id, for trimming
)

// sysRecords is the keyring's system bucket, ["sys", "keyring"].
var sysRecords = tenancy.SystemOf("keyring")

// BootstrapOps record the cluster's seal recipients; `operator init` makes
// them part of the bootstrap transaction.
func BootstrapOps(recipients []string) ([]raftstore.Op, error) {
	if len(recipients) == 0 {
		return nil, errNoSealRecipients
	}
	if _, err := parseRecipients(strings.Join(recipients, "\n")); err != nil {
		return nil, err
	}
	return []raftstore.Op{sysRecords.Put(sysSealRecipients, []byte(strings.Join(recipients, "\n")))}, nil
}

func parseRecipients(s string) ([]age.Recipient, error) {
	rs, err := age.ParseRecipients(strings.NewReader(s))
	if err != nil {
		return nil, fmt.Errorf("keyring: seal recipients: %w", err)
	}
	return rs, nil
}

// SealRecipients reads the cluster's seal recipients.
func SealRecipients(ctx context.Context, b *tenancy.Boundary) ([]string, error) {
	var v []byte
	err := b.ViewSystem(ctx, raftstore.Stale, sysRecords, func(r tenancy.SystemRead) error {
		v, _, _ = r.Get(sysSealRecipients)
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
	rs, err := SealRecipients(ctx, h.tenancy)
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

// keysBucket is the tenant's key records, relative to its bucket.
var keysBucket = raftstore.Path("keys")

func put(key string, value []byte) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: keysBucket, Key: []byte(key), Value: value}
}

func del(key string) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpDelete, Bucket: keysBucket, Key: []byte(key)}
}

func cond(kind raftstore.CondKind, key string, version uint64) raftstore.Cond {
	return raftstore.Cond{Kind: kind, Bucket: keysBucket, Key: []byte(key), Version: version}
}

// scope is tenant's storage.
func (h *Hierarchy) scope(tenant string) tenancy.Scope { return h.tenancy.Scope(tenant) }

// audit is the tenant-chain entry of a key operation, for the
// transaction that makes it.
func (h *Hierarchy) audit(caller Auditor, action, target string) ([]byte, error) {
	e, err := caller.AuditEntry(h.now().UTC(), action, target)
	if err != nil {
		return nil, fmt.Errorf("keyring: audit entry: %w", err)
	}
	return e, nil
}

// stamp is the time value of a purge, shred or rewrap signal.
func (h *Hierarchy) stamp() []byte { return []byte(h.now().UTC().Format(time.RFC3339Nano)) }

// subjectRef names a subject in audit entries by its pseudonym under the
// tenant's audit key: subject ids may be personal data.
func (h *Hierarchy) subjectRef(ctx context.Context, tenant, subject string) (string, error) {
	if subject == "" {
		return tenancy.AuditTarget(tenant), nil
	}
	k, err := h.AuditKey(ctx, tenant)
	if err != nil {
		return "", err
	}
	return h.pseudonym(k, "subject", subject), nil
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
	defer failClosed(tenant, &err)
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
