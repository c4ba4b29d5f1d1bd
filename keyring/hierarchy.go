package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/custos/custos/raftstore"
)

// Store is the replicated store the key hierarchy lives in (raftstore).
type Store interface {
	Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error)
	View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error
}

// ErrNoKeys: the tenant has no key hierarchy (not provisioned, or deleted).
var ErrNoKeys = errors.New("keyring: tenant has no keys")

// Hierarchy manages the age-rooted key hierarchy of tenants, stored below
// each tenant's bucket (["tenant:<id>", "keys"]):
//
//	root          the tenant root identity, age-encrypted to the seal recipients
//	kek/<v>       KEK version v, age-encrypted to the tenant root
//	kek_current   the current KEK version (decimal)
//	dek/<subject> the subject's data key ("" subject: "dek/" is the tenant's),
//	              wrapped by a KEK (Wrap format: names its KEK version)
//
// Every key operation appends an entry to the tenant's chain
// ("tenant:<id>") in the same transaction. Nothing unwrapped is stored; the
// unwrapped keys live in the Cache. Reads of key material are linearizable,
// so a shredded key cannot come back through a lagging follower.
type Hierarchy struct {
	store Store
	seal  []age.Recipient
	ids   []age.Identity // nil on a sealed node
	cache *Cache
	now   func() time.Time

	mu    sync.Mutex
	roots map[string]*AgeRoot
}

// NewHierarchy makes a Hierarchy. seal are the recipients new tenant roots
// are sealed to; ids unseal them (nil: this node is sealed and fails closed
// with ErrRootUnavailable).
func NewHierarchy(store Store, seal []age.Recipient, ids []age.Identity, cache *Cache, now func() time.Time) *Hierarchy {
	if now == nil {
		now = time.Now
	}
	return &Hierarchy{store: store, seal: seal, ids: ids, cache: cache, now: now, roots: map[string]*AgeRoot{}}
}

func keysPath(tenant string) [][]byte { return raftstore.Path("tenant:"+tenant, "keys") }

func chainOf(tenant string) []byte { return []byte("tenant:" + tenant) }

func (h *Hierarchy) audit(tenant, action, target string) raftstore.Append {
	b, _ := json.Marshal(map[string]string{
		"time": h.now().UTC().Format(time.RFC3339Nano), "actor": "system",
		"action": action, "target": target, "outcome": "success",
	})
	return raftstore.Append{Chain: chainOf(tenant), Data: b}
}

// Provision creates the tenant's root, KEK version 1 and tenant data key.
// It is idempotent: an already provisioned tenant is left alone.
func (h *Hierarchy) Provision(ctx context.Context, tenant string) error {
	root, sealed, err := NewAgeRoot(tenant, h.seal...)
	if err != nil {
		return err
	}
	kek, err := NewKey(1)
	if err != nil {
		return err
	}
	wkek, err := root.WrapKEK(ctx, tenant, kek)
	if err != nil {
		return err
	}
	dek, err := NewKey(1)
	if err != nil {
		return err
	}
	wdek, err := Wrap(kek, KeyContext{Tenant: tenant}, dek)
	if err != nil {
		return err
	}
	p := keysPath(tenant)
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: p, Key: []byte("root")}},
		Ops: []raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: p, Key: []byte("root"), Value: sealed},
			{Kind: raftstore.OpPut, Bucket: p, Key: []byte("kek/1"), Value: wkek},
			{Kind: raftstore.OpPut, Bucket: p, Key: []byte("kek_current"), Value: []byte("1")},
			{Kind: raftstore.OpPut, Bucket: p, Key: []byte("dek/"), Value: wdek},
		},
		Appends: []raftstore.Append{h.audit(tenant, "key.provision", "tenant:"+tenant)},
	})
	if err != nil {
		return fmt.Errorf("keyring: provision %s: %w", tenant, err)
	}
	if res.Err != nil {
		return fmt.Errorf("keyring: provision %s: %w", tenant, res.Err)
	}
	return nil
}

// root returns the tenant's unsealed root.
func (h *Hierarchy) root(ctx context.Context, tenant string) (*AgeRoot, error) {
	h.mu.Lock()
	r, ok := h.roots[tenant]
	h.mu.Unlock()
	if ok {
		return r, nil
	}
	if h.ids == nil {
		return nil, fmt.Errorf("%w: node is sealed (no seal identity)", ErrRootUnavailable)
	}
	sealed, err := h.read(ctx, tenant, "root")
	if err != nil {
		return nil, err
	}
	r, err = OpenAgeRoot(tenant, sealed, h.ids...)
	if err != nil {
		return nil, err
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
func (h *Hierarchy) DataKey(ctx context.Context, tenant, subject string) (*Key, error) {
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
	p := keysPath(tenant)
	res, err := h.store.Apply(ctx, &raftstore.Txn{
		Conds:   []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: p, Key: []byte("dek/" + subject)}},
		Ops:     []raftstore.Op{{Kind: raftstore.OpPut, Bucket: p, Key: []byte("dek/" + subject), Value: w}},
		Appends: []raftstore.Append{h.audit(tenant, "key.create", "subject:"+subject)},
	})
	if err != nil {
		return nil, fmt.Errorf("keyring: create key of %s/%s: %w", tenant, subject, err)
	}
	if !res.Applied {
		// Someone else created it first: use theirs.
		w, err := h.read(ctx, tenant, "dek/"+subject)
		if err != nil {
			return nil, err
		}
		return Unwrap(kek, KeyContext{Tenant: tenant, Subject: subject}, w)
	}
	return dek, nil
}

// ShredOps are the operations that destroy subject's data key; the erasure
// puts them in the same transaction that deletes the subject's rows, and
// then calls Forget.
func ShredOps(tenant, subject string) []raftstore.Op {
	return []raftstore.Op{{Kind: raftstore.OpDelete, Bucket: keysPath(tenant), Key: []byte("dek/" + subject)}}
}

// Forget drops the subject's cached key on this node.
func (h *Hierarchy) Forget(tenant, subject string) {
	h.cache.Delete(CacheKey{Tenant: tenant, Subject: subject})
}

// parseVersion reads a stored key version (decimal).
func parseVersion(b []byte) (uint32, error) {
	n, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: key version %q", ErrFormat, b)
	}
	return uint32(n), nil
}
