// Package apikeys manages tenant API keys: the principals of a tenant's
// applications (the operator token is the only other one).
//
// A key belongs to exactly one tenant, has a name, either a role or a set
// of permissions, and an optional expiry. Its token,
// "ck_<id>_<secret>", is shown once at creation; only the SHA-256 of the
// token is stored. The tenant of a request is taken from the key alone —
// never from a path, query or body field the caller controls: the API
// compares the key's tenant with the tenant the path names and answers a
// mismatch exactly like a missing resource (404).
//
// # Layout
//
// Below the tenant's bucket, through its tenancy.Scope:
//
//	apikeys       <id> -> Key (JSON; the token hash, never the token)
//	apikeys_used  <id> -> last use (RFC 3339), best effort
//
// and in the package's own system bucket, ["sys", "apikeys"]
// (tenancy.SystemOf("apikeys")):
//
//	<id> -> <t>   finds a token's tenant
//
// Like collections, records and blobs, this package holds only the tenancy
// boundary. It is authentication, which must find a token's tenant before
// any tenant is known: the index is its cluster-wide record, written in the
// same transaction as the key through the boundary's component system
// records, and read with the key in one snapshot (the boundary's system
// read opens the scoped read of the tenant the index names).
//
// # Roles and old keys
//
// A key is bound to a built-in tenant role of appliance/identity/roles
// (owner, manager, ..., read-only; never the Operator's, which is no
// tenant's): it may do what the role's permissions allow. Keys created
// before roles carry the permissions read, write, delete, export and
// admin instead, and no role; they keep doing exactly what they did,
// through [roles.FromAPIKey]. A new key has one or the other, never both.
// [Key.EffectiveRole] is the one answer for both kinds, which the API
// computes once when it authenticates a key. A key bound to a role may
// also carry attribute scopes ([Key.Scopes]), which authentication puts on
// the request's principal: the records and blobs services then see only
// the items they admit. In this step a key's role
// decides which operations it may call, not how it reads fields: record
// reads, finds and blob content stay as they are for every key (values in
// clear unless the caller asks for masking), whatever the role's
// visibility per classification says.
//
// Deleting a tenant deletes its bucket and so its keys; a token whose key
// is gone is refused (its index entry, left behind, points at nothing).
// last_used is written at most once a minute per key and node, off the
// request path: a failure to record it never fails a request.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Permissions of keys created before roles ([Key.Permissions]).
const (
	PermRead   = "read"
	PermWrite  = "write"
	PermDelete = "delete"
	PermExport = "export"
	PermAdmin  = "admin"
)

var allPerms = []string{PermRead, PermWrite, PermDelete, PermExport, PermAdmin}

// Limits.
const (
	MaxKeysPerTenant = 100
	maxName          = 100
	maxLifetime      = 10 * 365 * 24 * time.Hour
	touchEvery       = time.Minute
)

// Key is a tenant API key as stored and listed. Hash is never serialized
// to clients (the API copies the other fields).
type Key struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Role is the built-in tenant role the key is bound to; empty for a
	// key created with Permissions (an old key).
	Role string `json:"role,omitempty"`
	// Permissions are the old permissions (Perm*) of a key created with
	// them; empty for a key bound to a Role.
	Permissions []string `json:"permissions,omitempty"`
	// Scopes are the attribute scopes of a key bound to a Role: it sees
	// only records and blobs whose attributes match them (attribute name
	// → allowed values; see audit.Principal.Scopes). Nil: unscoped.
	Scopes map[string][]string `json:"scopes,omitempty"`
	// ClientCertCN binds the key to a client certificate, a second factor
	// for machine clients: the key authenticates only over a connection
	// that presented a certificate the API's client CA
	// ([api] tls_client_ca_file) verified, whose subject common name is
	// this. "": no certificate needed.
	ClientCertCN string     `json:"client_cert_cn,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	LastUsed     *time.Time `json:"last_used,omitempty"`
	Hash         string     `json:"hash,omitempty"`
	// TenantState is the state of the key's tenant in the snapshot that
	// authenticated the key (Authenticate only; never stored or
	// served): the API refuses a suspended tenant's key on every data
	// route without reading the tenant again.
	TenantState tenants.State `json:"-"`
}

// AdmitsClientCert says whether a request may use the key given the
// client certificate its connection presented: verified is whether the
// API's client CA verified one, cn its subject common name. A key bound
// to no certificate admits every request; a bound one only its own
// certificate (ErrClientCertRequired otherwise).
func (k Key) AdmitsClientCert(verified bool, cn string) error {
	if k.ClientCertCN == "" || (verified && cn == k.ClientCertCN) {
		return nil
	}
	return ErrClientCertRequired
}

// Can reports whether the key has the old permission perm (admin
// implies every permission); a key bound to a role has none.
func (k *Key) Can(perm string) bool { return Allows(k.Permissions, perm) }

// EffectiveRole is what the key may do: its built-in role, or for an old
// key the role its permissions map onto ([roles.FromAPIKey]). A stored
// key naming a role that is no tenant role, or an unknown permission, is
// an error (ErrUnknownRole, roles.ErrUnknownAPIKeyPermission): it
// authorizes nothing.
func (k *Key) EffectiveRole() (roles.Role, error) {
	if k.Role == "" {
		r, err := roles.FromAPIKey(k.Permissions)
		if err != nil {
			return roles.Role{}, fmt.Errorf("apikeys: key %s: %w", k.ID, err)
		}
		return r, nil
	}
	r, ok := tenantRole(k.Role)
	if !ok {
		return roles.Role{}, fmt.Errorf("apikeys: key %s: %w: %q", k.ID, ErrUnknownRole, k.Role)
	}
	return r, nil
}

// tenantRole is the built-in tenant role named name (never the
// Operator's).
func tenantRole(name string) (roles.Role, bool) {
	r, ok := roles.Builtin(name)
	return r, ok && !r.ClusterWide()
}

// Roles returns the names of the roles a key may be bound to: the
// built-in tenant roles, in the table's order.
func Roles() []string {
	var names []string
	for _, r := range roles.Builtins() {
		if !r.ClusterWide() {
			names = append(names, r.Name())
		}
	}
	return names
}

// Allows reports whether a principal holding perms may do what perm
// names: admin implies every permission.
func Allows(perms []string, perm string) bool {
	return slices.Contains(perms, perm) || slices.Contains(perms, PermAdmin)
}

// Service manages API keys. It is safe for concurrent use.
type Service struct {
	tenancy *tenancy.Boundary
	now     func() time.Time

	mu      sync.Mutex
	touched map[string]time.Time // key id -> last recorded use, on this node
}

// New makes the service over the tenancy boundary (now nil: time.Now).
func New(b *tenancy.Boundary, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{tenancy: b, now: now, touched: map[string]time.Time{}}
}

var (
	// index is the token index: key id -> tenant.
	index = tenancy.SystemOf("apikeys")
	b32   = base32.StdEncoding.WithPadding(base32.NoPadding)
	// Paths relative to the tenant's bucket: tenant data is reached only
	// through the tenant's Scope.
	keysPath = raftstore.Path("apikeys")
	usedPath = raftstore.Path("apikeys_used")
)

// CreateInput is what the operator supplies: exactly one of Role (present,
// even if empty) and Permissions (present, even if empty).
// Scopes, with a Role only, confine the key to the items whose attributes
// match them.
type CreateInput struct {
	Name        string
	Role        *string
	Permissions []string
	Scopes      map[string][]string
	ExpiresAt   *time.Time
	// ClientCertCN binds the key to a client certificate (Key.ClientCertCN).
	ClientCertCN string
}

func (s *Service) validate(in *CreateInput) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > maxName || !utf8.ValidString(in.Name) || strings.ContainsFunc(in.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return validation.Field("name", "must be 1 to 100 characters without control characters")
	}
	switch {
	case in.Role != nil && in.Permissions != nil:
		return validation.Field("role", "must not be given with permissions: a key has a role or permissions, not both")
	case in.Role != nil:
		if _, ok := tenantRole(*in.Role); !ok {
			return validation.Field("role", "must be one of "+strings.Join(Roles(), ", "))
		}
	case len(in.Permissions) == 0:
		return validation.Field("permissions", "must name at least one of read, write, delete, export, admin (or give a role instead)")
	default:
		seen := map[string]bool{}
		for _, p := range in.Permissions {
			if !slices.Contains(allPerms, p) || seen[p] {
				return validation.Field("permissions", "must be distinct values of read, write, delete, export, admin")
			}
			seen[p] = true
		}
		slices.Sort(in.Permissions)
	}
	if in.Scopes != nil {
		if in.Role == nil {
			return validation.Field("scopes", "need a role: a key created with permissions is unscoped")
		}
		if err := validation.Scopes("scopes", in.Scopes); err != nil {
			return err
		}
		scopes := map[string][]string(nil) // {}: unscoped
		for name, values := range in.Scopes {
			if scopes == nil {
				scopes = map[string][]string{}
			}
			scopes[name] = slices.Sorted(slices.Values(values))
		}
		in.Scopes = scopes
	}
	if cn := in.ClientCertCN; cn != "" && (len(cn) > 64 || !utf8.ValidString(cn) || strings.ContainsFunc(cn, func(r rune) bool { return r < 0x20 || r == 0x7f })) {
		return validation.Field("client_cert_cn", "must be 1 to 64 bytes without control characters: the common name of the client certificate")
	}
	if e := in.ExpiresAt; e != nil {
		now := s.now()
		if !e.After(now) || e.Sub(now) > maxLifetime {
			return validation.Field("expires_at", "must be in the future and at most ten years away")
		}
		t := e.UTC()
		in.ExpiresAt = &t
	}
	return nil
}

// maxScopeDetail bounds the "scopes" detail of apikey.create (audit
// allows 512 bytes a value).
const maxScopeDetail = 500

// scopeNames are the attribute names of scopes, sorted and comma-joined
// (within maxScopeDetail bytes): what apikey.create records of a key's
// scopes; the values are the key's, read with it.
func scopeNames(scopes map[string][]string) string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(scopes)) {
		if b.Len()+1+len(n) > maxScopeDetail {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
	}
	return b.String()
}

func newID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return strings.ToLower(b32.EncodeToString(b[:])), nil // 16 characters
}

// Create makes a key for tenant and returns it with its token (shown once).
func (s *Service) Create(ctx context.Context, caller audit.Principal, tenant string, in CreateInput) (Key, string, error) {
	if err := s.validate(&in); err != nil {
		return Key{}, "", err
	}
	id, err := newID()
	if err != nil {
		return Key{}, "", fmt.Errorf("apikeys: %w", err)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return Key{}, "", fmt.Errorf("apikeys: %w", err)
	}
	token := "ck_" + id + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	now := s.now().UTC()
	k := Key{ID: id, Tenant: tenant, Name: in.Name, Permissions: in.Permissions, ClientCertCN: in.ClientCertCN, CreatedAt: now, ExpiresAt: in.ExpiresAt, Hash: raftstore.TokenHash(token)}
	details := map[string]string{"permissions": strings.Join(in.Permissions, ",")}
	if in.Role != nil {
		k.Role, k.Permissions, k.Scopes = *in.Role, nil, in.Scopes
		details = map[string]string{"role": k.Role}
		if len(k.Scopes) > 0 {
			details["scopes"] = scopeNames(k.Scopes)
		}
	}
	if k.ClientCertCN != "" {
		details["client_cert_cn"] = k.ClientCertCN
	}
	if caller.Kind == audit.ActorOperator {
		// An operator creates a tenant's keys only while the tenant is
		// bootstrapping (the API's rule): the entry says so.
		details["bootstrap"] = "true"
	}
	val, _ := json.Marshal(k)
	entry, err := caller.Entry(now, "apikey.create", "apikey:"+id, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return Key{}, "", err
	}
	var count int
	var exists bool
	sc := s.tenancy.Scope(tenant)
	if err := sc.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		count = r.Count(keysPath)
		exists = r.Exists()
		return nil
	}); err != nil {
		return Key{}, "", fmt.Errorf("apikeys: create: %w", err)
	}
	if !exists {
		return Key{}, "", fmt.Errorf("apikeys: %w", tenants.ErrNotFound)
	}
	if count >= MaxKeysPerTenant {
		return Key{}, "", ErrTooMany
	}
	// The scope adds the condition that the tenant exists.
	res, err := sc.Apply(ctx, &tenancy.Txn{
		SystemConds: []raftstore.Cond{index.Cond(raftstore.CondAbsent, id, 0)},
		Ops:         []raftstore.Op{{Kind: raftstore.OpPut, Bucket: keysPath, Key: []byte(id), Value: val}},
		SystemOps:   []raftstore.Op{index.Put(id, []byte(tenant))},
		Audit:       [][]byte{entry},
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("apikeys: create: %w", err)
	}
	if res.Err != nil {
		return Key{}, "", fmt.Errorf("apikeys: create: %w", res.Err)
	}
	if !res.Applied {
		return Key{}, "", fmt.Errorf("apikeys: %w", tenants.ErrNotFound)
	}
	k.Hash = ""
	return k, token, nil
}

// List returns the tenant's keys (without hashes), by id.
func (s *Service) List(ctx context.Context, tenant string) ([]Key, error) {
	out := []Key{}
	var decodeErr error
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		used := map[string]time.Time{}
		r.Scan(usedPath, nil, 0, func(k, v []byte, _ uint64) bool {
			if t, err := time.Parse(time.RFC3339, string(v)); err == nil {
				used[string(k)] = t
			}
			return true
		})
		r.Scan(keysPath, nil, 0, func(k, v []byte, _ uint64) bool {
			var key Key
			if decodeErr = json.Unmarshal(v, &key); decodeErr != nil {
				return false
			}
			key.Hash = ""
			if t, ok := used[key.ID]; ok {
				key.LastUsed = &t
			}
			out = append(out, key)
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apikeys: list: %w", err)
	}
	return out, decodeErr
}

// Get returns one key of tenant.
func (s *Service) Get(ctx context.Context, tenant, id string) (Key, error) {
	keys, err := s.List(ctx, tenant)
	if err != nil {
		return Key{}, err
	}
	for _, k := range keys {
		if k.ID == id {
			return k, nil
		}
	}
	return Key{}, ErrNotFound
}

// Delete revokes a key at once (every node refuses it from its next
// request on).
func (s *Service) Delete(ctx context.Context, caller audit.Principal, tenant, id string) error {
	entry, err := caller.Entry(s.now().UTC(), "apikey.delete", "apikey:"+id, audit.OutcomeSuccess, nil).Encode()
	if err != nil {
		return err
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: keysPath, Key: []byte(id)}},
		Ops: []raftstore.Op{
			{Kind: raftstore.OpDelete, Bucket: keysPath, Key: []byte(id)},
			{Kind: raftstore.OpDelete, Bucket: usedPath, Key: []byte(id)},
		},
		SystemOps: []raftstore.Op{index.Delete(id)},
		Audit:     [][]byte{entry},
	})
	if err != nil {
		return fmt.Errorf("apikeys: delete: %w", err)
	}
	if res.Err != nil {
		return fmt.Errorf("apikeys: delete: %w", res.Err)
	}
	if !res.Applied {
		return ErrNotFound
	}
	return nil
}

// IsToken tells an API key token from an operator token by its form.
func IsToken(token string) bool { return strings.HasPrefix(token, "ck_") }

// Authenticate returns the key a token belongs to, with its tenant's
// state (Key.TenantState) read in the same snapshot. A revoked key is
// refused on every node from the moment its deletion applied there (reads
// are linearizable, so also on a lagging follower); a suspension or a
// resumption, likewise, is seen by every request that arrives after it
// applied. A suspended tenant's key still authenticates: refusing it is
// the API's decision, per route: a suspended tenant's key is answered
// 403 tenant-suspended, not the 401 of a token that names nothing.
func (s *Service) Authenticate(ctx context.Context, token string) (Key, error) {
	rest, ok := strings.CutPrefix(token, "ck_")
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 16 || len(token) > 128 {
		return Key{}, ErrInvalidToken
	}
	var key Key
	var found bool
	var entry []byte
	err := s.tenancy.ViewSystem(ctx, raftstore.Linearizable, index, func(r tenancy.SystemRead) error {
		tenant, _, ok := r.Get(id)
		if !ok {
			return nil
		}
		tr := r.Tenant(string(tenant))
		v, _, ok := tr.Get(keysPath, []byte(id))
		if !ok {
			return nil
		}
		// The tenant's state in the same snapshot as its key: present
		// whenever the key is (the bucket and the entry go together).
		if entry, ok = tr.Entry(); !ok {
			return nil
		}
		found = json.Unmarshal(v, &key) == nil
		return nil
	})
	if err != nil {
		return Key{}, fmt.Errorf("apikeys: authenticate: %w", err)
	}
	want := raftstore.TokenHash(token)
	if !found || subtle.ConstantTimeCompare([]byte(want), []byte(key.Hash)) != 1 {
		return Key{}, ErrInvalidToken
	}
	if key.ExpiresAt != nil && !s.now().Before(*key.ExpiresAt) {
		return Key{}, ErrInvalidToken
	}
	t, err := tenants.Decode(entry)
	if err != nil {
		return Key{}, fmt.Errorf("apikeys: authenticate: %w", err)
	}
	key.Hash, key.TenantState = "", t.State
	s.touch(key)
	return key, nil
}

// touch records the key's use at most once a minute per node, off the
// request path.
func (s *Service) touch(k Key) {
	now := s.now().UTC()
	s.mu.Lock()
	last, ok := s.touched[k.ID]
	if ok && now.Sub(last) < touchEvery {
		s.mu.Unlock()
		return
	}
	s.touched[k.ID] = now
	s.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = s.tenancy.Scope(k.Tenant).Apply(ctx, &tenancy.Txn{
			Conds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: keysPath, Key: []byte(k.ID)}},
			Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: usedPath, Key: []byte(k.ID), Value: []byte(now.Format(time.RFC3339))}},
		})
	}()
}
