package requests_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// clock is a test's clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

var (
	operator   = audit.Principal{Kind: audit.ActorOperator, ID: "operator", RequestID: "req-1"}
	compliance = audit.Principal{Kind: audit.ActorAPIKey, ID: "k-compliance", Tenant: "acme", Role: "compliance", RequestID: "req-2"}
	stranger   = audit.Principal{Kind: audit.ActorAPIKey, ID: "k2", Tenant: "other", Role: "owner"}
	// villaA is scoped to property villa-a.
	villaA = audit.Principal{Kind: audit.ActorAPIKey, ID: "k-villa", Tenant: "acme", Role: "foh", Scopes: map[string][]string{"property": {"villa-a"}}}
	march3 = time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
)

type env struct {
	cluster *storetest.Cluster
	// svcs is one service per node, svc the first (the leader's).
	svcs    []*requests.Service
	svc     *requests.Service
	tenants *tenants.Service
	keys    *keyring.Hierarchy
	clock   *clock
	store   *raftstore.Store
}

// newEnv is tenant acme on a 3-node cluster, a service on every node
// sharing one clock, the tenant's settings as patch sets them.
func newEnv(t *testing.T, patch tenants.Patch, opts ...requests.Option) *env {
	t.Helper()
	c := storetest.NewCluster(t, 3)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cluster: c, clock: &clock{t: march3}, store: c.Leader(t)}
	for i, n := range c.Nodes {
		b := tenancy.New(n)
		keys := keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id},
			System: audit.System(), Pseudonym: audit.Pseudonym})
		svc := requests.New(b, keys, append([]requests.Option{requests.WithClock(e.clock.now), requests.WithRandom(&counter{})}, opts...)...)
		e.svcs = append(e.svcs, svc)
		if i == 0 {
			e.svc, e.keys = svc, keys
			e.tenants = tenants.New(b, storetest.Region, tenants.WithKeys(keys))
		}
	}
	if _, err := e.tenants.Create(ctx(t), operator, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if patch != (tenants.Patch{}) {
		if _, err := e.tenants.Update(ctx(t), operator, "acme", patch); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// counter is a deterministic random source (ids differ by their time and
// this count).
type counter struct {
	mu sync.Mutex
	n  uint32
}

func (c *counter) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	for i := range p {
		p[i] = byte(c.n >> (8 * (i % 4)))
	}
	return len(p), nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func ptr[T any](v T) *T { return &v }

// chain returns the tenant's audit entries from seq on (decoded).
func (e *env) chain(t *testing.T, from uint64) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := e.store.View(ctx(t), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		chain := []byte(tenancy.ChainOf("acme"))
		head, _ := tx.ChainHead(chain)
		for seq := from; seq <= head; seq++ {
			data, _, ok := tx.ChainEntry(chain, seq)
			if !ok {
				return fmt.Errorf("no entry %d", seq)
			}
			en, err := audit.Decode(data)
			if err != nil {
				return err
			}
			out = append(out, en)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// head is the tenant chain's head sequence.
func (e *env) head(t *testing.T) uint64 {
	t.Helper()
	var head uint64
	err := e.store.View(ctx(t), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		head, _ = tx.ChainHead([]byte(tenancy.ChainOf("acme")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return head
}
