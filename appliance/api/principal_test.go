package api_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
)

// seenPrincipals records the principal every service call is handed, and
// counts authentications of API keys.
type seenPrincipals struct {
	mu    sync.Mutex
	who   []audit.Principal
	authn int
}

func (s *seenPrincipals) add(p audit.Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.who = append(s.who, p)
}

type principalTenants struct {
	api.Tenants
	seen *seenPrincipals
}

func (t principalTenants) Suspend(ctx context.Context, who audit.Principal, id string) (tenants.Tenant, error) {
	t.seen.add(who)
	return t.Tenants.Suspend(ctx, who, id)
}

type principalKeys struct {
	api.APIKeys
	seen *seenPrincipals
}

func (k principalKeys) Authenticate(ctx context.Context, token string) (apikeys.Key, error) {
	k.seen.mu.Lock()
	k.seen.authn++
	k.seen.mu.Unlock()
	return k.APIKeys.Authenticate(ctx, token)
}

type principalRecords struct {
	api.Records
	seen *seenPrincipals
}

func (r principalRecords) Create(ctx context.Context, who audit.Principal, tenant, collection string, in records.Input) (records.Record, error) {
	r.seen.add(who)
	return r.Records.Create(ctx, who, tenant, collection, in)
}

// TestOnePrincipal (issue 10, item 2): one authentication step builds the
// request's principal once — an API key is authenticated once per request
// however many checks use it — and services are handed it whole: who
// (kind and id), which tenant, which permissions, and the request's id
// and source, which the audit entry records.
func TestOnePrincipal(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	key := e.createKey(t, "acme", `{"name":"w","permissions":["write","read"]}`)
	seen := &seenPrincipals{}
	deps := e.deps()
	deps.Tenants = principalTenants{Tenants: deps.Tenants, seen: seen}
	deps.APIKeys = principalKeys{APIKeys: deps.APIKeys, seen: seen}
	deps.Records = principalRecords{Records: deps.Records, seen: seen}
	e.app = e.server(deps, api.Options{})

	// The operator: no tenant, no permission list (everything).
	if r := e.do("POST", "/v1/tenants/acme/suspend", "", withHeader("X-Request-Id", "req-op-1")); r.status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	if len(seen.who) != 1 {
		t.Fatalf("%d service calls saw a principal, want 1", len(seen.who))
	}
	op := seen.who[0]
	if op.Kind != audit.ActorOperator || op.ID != "operator" || op.Tenant != "" || op.Permissions != nil || op.RequestID != "req-op-1" || op.Source == "" {
		t.Errorf("operator principal %+v", op)
	}
	if seen.authn != 0 {
		t.Errorf("the operator token went through API key authentication %d times", seen.authn)
	}
	e.do("POST", "/v1/tenants/acme/resume", "")

	// An API key: its tenant and permissions, authenticated once for a
	// request that is authorized, checked for its tenant and audited.
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	seen.mu.Lock()
	seen.authn = 0 // the collection was put with the tenant's Owner key
	seen.mu.Unlock()
	r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","subject":"s1","fields":{"email":"a@b.c"}}`,
		withHeader("Authorization", "Bearer "+key.Token), withHeader("X-Request-Id", "req-key-1"))
	if r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	if seen.authn != 1 {
		t.Errorf("one request authenticated its API key %d times", seen.authn)
	}
	if len(seen.who) != 2 {
		t.Fatalf("%d service calls saw a principal, want 2", len(seen.who))
	}
	k := seen.who[1]
	if k.Kind != audit.ActorAPIKey || k.ID != key.ID || k.Tenant != "acme" || !slices.Equal(k.Permissions, []string{"read", "write"}) ||
		k.RequestID != "req-key-1" || k.Source == "" {
		t.Errorf("API key principal %+v", k)
	}
	var page struct {
		Entries []struct {
			Entry audit.Entry `json:"entry"`
		} `json:"entries"`
	}
	e.do("GET", "/v1/tenants/acme/audit?action=record.create", "").json(t, &page)
	if len(page.Entries) != 1 {
		t.Fatalf("%d record.create entries", len(page.Entries))
	}
	if got := page.Entries[0].Entry; got.Actor != (audit.Actor{Type: audit.ActorAPIKey, ID: key.ID}) || got.RequestID != "req-key-1" || got.Source != k.Source {
		t.Errorf("the entry records %+v, request %q from %q; want the key's principal", got.Actor, got.RequestID, got.Source)
	}
}
