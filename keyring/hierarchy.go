package keyring

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	mu      sync.Mutex
	seal    []age.Recipient
	roots   map[string]Root
	cluster *Key // the cluster's data key once opened (cluster.go)

	// For metrics (Stats): root round trips, and the tenants whose last
	// key operation failed closed (bounded by the tenants; cleared by
	// their next success).
	rootCalls        atomic.Uint64
	unavailableTotal atomic.Uint64
	unavailableN     atomic.Int64
	unavailable      map[string]bool // guarded by mu
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
		vaultTimeout: o.VaultTimeout, system: o.System, pseudonym: o.Pseudonym, roots: map[string]Root{}, unavailable: map[string]bool{},
	}
}

// Sealed reports whether this node has no seal identity.
func (h *Hierarchy) Sealed() bool { return h.ids == nil }

// Cache is the hierarchy's cache of unwrapped keys.
func (h *Hierarchy) Cache() *Cache { return h.cache }

// Stats are the keyring's counters on this node, for metrics.
type Stats struct {
	Cache CacheStats
	// RootCalls counts the calls to tenants' roots (age or Vault): KEK
	// unwraps on a cache miss, and wraps when a KEK is made or rotated.
	RootCalls uint64
	// Unavailable counts the key operations that failed closed
	// (UnavailableError); UnavailableTenants is how many tenants' most
	// recent key operation did.
	Unavailable        uint64
	UnavailableTenants int
}

// Stats returns the keyring's counters.
func (h *Hierarchy) Stats() Stats {
	return Stats{Cache: h.cache.Stats(), RootCalls: h.rootCalls.Load(),
		Unavailable: h.unavailableTotal.Load(), UnavailableTenants: int(h.unavailableN.Load())}
}

// failClosed is the package's failClosed, counting the outcome for
// Stats: an UnavailableError marks its tenant unavailable, a success
// clears the mark.
func (h *Hierarchy) failClosed(tenant string, err *error) {
	failClosed(tenant, err)
	var ue *UnavailableError
	switch {
	case *err == nil:
		if h.unavailableN.Load() == 0 {
			return // the common case takes no lock
		}
		h.mu.Lock()
		if h.unavailable[tenant] {
			delete(h.unavailable, tenant)
			h.unavailableN.Add(-1)
		}
		h.mu.Unlock()
	case errors.As(*err, &ue):
		h.unavailableTotal.Add(1)
		h.mu.Lock()
		if !h.unavailable[ue.Tenant] {
			h.unavailable[ue.Tenant] = true
			h.unavailableN.Add(1)
		}
		h.mu.Unlock()
	}
}

// CachedKeys is how many unwrapped keys this node holds.
func (h *Hierarchy) CachedKeys() int { return h.cache.Len() }

// Records of the keyring's system bucket.
const (
	sysSealRecipients = "seal_recipients" // one age recipient per line
	sysPurgePrefix    = "purge/"          // purge/<tenant>: its version is the purge signal
	sysShred          = "shred"           // its version is the compaction signal
	sysRewrapPrefix   = "rewrap/"         // rewrap/<tenant>: a rewrap is to be finished
	sysVaultPrefix    = "vault/"          // vault/<tenant>: transit key id, for trimming
	sysClusterKey     = "cluster_key"     // the cluster's data key, age-encrypted to the seal recipients
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
