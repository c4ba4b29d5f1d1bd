package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// chainActions lists the actions of a tenant's chain, with their actors.
func chainActions(t *testing.T, e *env, tenant string) []string {
	t.Helper()
	var out []string
	err := e.store.View(context.Background(), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		seq, _ := tx.ChainHead([]byte("tenant:" + tenant))
		for i := uint64(1); i <= seq; i++ {
			data, _, _ := tx.ChainEntry([]byte("tenant:"+tenant), i)
			rec, err := audit.Decode(data)
			if err != nil {
				return err
			}
			out = append(out, rec.Actor.ID+":"+rec.Action)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTenantKeysLifecycle(t *testing.T) {
	e := newEnv(t, api.Options{})
	r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var ten tenants.Tenant
	r.json(t, &ten)
	if ten.KeyProvider != keyring.ProviderAge {
		t.Fatalf("key_provider %q", ten.KeyProvider)
	}
	// The keys were created with the tenant.
	var st keyring.KeyStatus
	r = e.do("GET", "/v1/tenants/acme/keys", "")
	if r.status != http.StatusOK {
		t.Fatalf("keys: %d %s", r.status, r.body)
	}
	r.json(t, &st)
	if st.CurrentKEK != 1 || st.DataKeys != 1 || st.Provider.Kind != "age" || st.Pending != 0 {
		t.Fatalf("fresh keys: %+v", st)
	}
	// Subject keys appear on first use.
	ctx := context.Background()
	for _, s := range []string{"guest-1", "guest-2", "guest-3"} {
		if _, err := e.keys.DataKey(ctx, "acme", s); err != nil {
			t.Fatal(err)
		}
	}
	// Rotation answers 202 with the rewrap pending; the janitor finishes it.
	r = e.do("POST", "/v1/tenants/acme/keys/rotate", "")
	if r.status != http.StatusAccepted || r.header.Get("Location") != "/v1/tenants/acme/keys" {
		t.Fatalf("rotate: %d %v %s", r.status, r.header, r.body)
	}
	var rot struct {
		CurrentKEK uint32            `json:"current_kek"`
		Status     keyring.KeyStatus `json:"status"`
	}
	r.json(t, &rot)
	if rot.CurrentKEK != 2 || rot.Status.Pending != 4 || !rot.Status.Rewrapping {
		t.Fatalf("after rotate: %+v", rot)
	}
	jctx, stop := context.WithCancel(ctx)
	defer stop()
	j := keyring.NewJanitor(e.keys, keyring.JanitorConfig{Tick: 20 * time.Millisecond, IsLeader: e.store.IsLeader})
	go j.Run(jctx)
	testkit.Poll(t, testkit.Timeout, "the rewrap", func() error {
		r = e.do("GET", "/v1/tenants/acme/keys", "")
		st = keyring.KeyStatus{}
		r.json(t, &st)
		if st.Pending != 0 || st.Rewrapping {
			return fmt.Errorf("not finished: %+v", st)
		}
		return nil
	})
	if st.ByKEK[2] != 4 || len(st.KEKs) != 2 {
		t.Fatalf("after rewrap: %+v", st)
	}
	// Purge drops this node's cached keys.
	r = e.do("POST", "/v1/tenants/acme/keys/purge-cache", "")
	var pr struct{ Purged int }
	r.json(t, &pr)
	if r.status != http.StatusOK || pr.Purged == 0 {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	if e.keys.Cache().Len() != 0 {
		t.Fatalf("%d keys still cached", e.keys.Cache().Len())
	}
	// Every key operation is in the tenant's chain, with its actor.
	got := strings.Join(chainActions(t, e, "acme"), " ")
	for _, want := range []string{"operator:key.provision", "system:key.create", "operator:key.rotate", "system:key.rewrap", "operator:key.purge_cache"} {
		if !strings.Contains(got, want) {
			t.Errorf("chain lacks %s: %s", want, got)
		}
	}
	// Unknown tenants are 404 on every key route; no token is 401.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tenants/nope/keys"}, {"POST", "/v1/tenants/nope/keys/rotate"}, {"POST", "/v1/tenants/nope/keys/purge-cache"},
	} {
		checkProblem(t, e.do(c.method, c.path, ""), http.StatusNotFound, "not-found", c.path)
		checkProblem(t, e.do(c.method, c.path, "", withoutHeader("Authorization")), http.StatusUnauthorized, "unauthorized", c.path)
	}
	// Deleting the tenant destroys its keys.
	if r := e.do("DELETE", "/v1/tenants/acme", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if _, err := e.keys.Status(ctx, "acme"); err == nil {
		t.Fatal("keys survived the tenant")
	}
}

func TestTenantKeyProviderValidation(t *testing.T) {
	e := newEnv(t, api.Options{})
	before := e.state()
	for name, c := range map[string]struct {
		body, slug, field string
		status            int
	}{
		"unknown provider":       {`{"id":"a1","display_name":"A","key_provider":"kms"}`, "validation", "key_provider", 422},
		"vault settings for age": {`{"id":"a1","display_name":"A","vault":{"address":"http://127.0.0.1:1"}}`, "validation", "vault", 422},
		"vault without settings": {`{"id":"a1","display_name":"A","key_provider":"vault"}`, "validation", "vault", 422},
		"bad address":            {`{"id":"a1","display_name":"A","key_provider":"vault","vault":{"address":"ftp://x","mount":"transit","key":"k","token":"t"}}`, "validation", "vault.address", 422},
		"bad mount":              {`{"id":"a1","display_name":"A","key_provider":"vault","vault":{"address":"http://127.0.0.1:1","mount":"../x","key":"k","token":"t"}}`, "validation", "vault.mount", 422},
		"no token":               {`{"id":"a1","display_name":"A","key_provider":"vault","vault":{"address":"http://127.0.0.1:1","mount":"transit","key":"k"}}`, "validation", "vault.token", 422},
		"approle without secret": {`{"id":"a1","display_name":"A","key_provider":"vault","vault":{"address":"http://127.0.0.1:1","mount":"transit","key":"k","auth_method":"approle","role_id":"r"}}`, "validation", "vault.role_id", 422},
		"bad auth method":        {`{"id":"a1","display_name":"A","key_provider":"vault","vault":{"address":"http://127.0.0.1:1","mount":"transit","key":"k","auth_method":"ldap"}}`, "validation", "vault.auth_method", 422},
		"bad ca":                 {`{"id":"a1","display_name":"A","key_provider":"vault","vault":{"address":"https://127.0.0.1:1","mount":"transit","key":"k","token":"t","ca_cert_pem":"nope"}}`, "validation", "vault.ca_cert_pem", 422},
		"unknown vault field":    {`{"id":"a1","display_name":"A","key_provider":"vault","vault":{"adress":"http://x"}}`, "unknown-field", "", 400},
	} {
		t.Run(name, func(t *testing.T) {
			p := checkProblem(t, e.do("POST", "/v1/tenants", c.body), c.status, c.slug, "/v1/tenants")
			if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
				t.Errorf("errors %+v, want field %s", p.Errors, c.field)
			}
		})
	}
	if after := e.state(); after != before {
		t.Fatalf("refused creations changed the state: %+v -> %+v", before, after)
	}
}

// A Vault tenant whose Vault cannot be reached is not created: 503
// key-unavailable naming the tenant, nothing written, the token not echoed.
func TestVaultTenantUnreachable(t *testing.T) {
	e := newEnv(t, api.Options{RequestTimeout: 5 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused from now on
	before := e.state()
	r := e.do("POST", "/v1/tenants", `{"id":"byok","display_name":"B","key_provider":"vault","vault":{"address":"http://`+addr+`","mount":"transit","key":"byok","token":"s.very-secret-token"}}`)
	p := checkProblem(t, r, http.StatusServiceUnavailable, "key-unavailable", "/v1/tenants")
	if !strings.Contains(p.Detail, `"byok"`) || r.header.Get("Retry-After") == "" {
		t.Errorf("detail %q / Retry-After %q", p.Detail, r.header.Get("Retry-After"))
	}
	if strings.Contains(string(r.body), "very-secret-token") || strings.Contains(e.logBuf.String(), "very-secret-token") {
		t.Error("the Vault token leaked into the response or the log")
	}
	if after := e.state(); after != before {
		t.Fatalf("a refused creation changed the state: %+v -> %+v", before, after)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/byok", ""), http.StatusNotFound, "not-found", "/v1/tenants/byok")
}

// A node without the seal identity says so in its health check and
// answers key operations with key-unavailable.
func TestSealedNode(t *testing.T) {
	e := newEnv(t, api.Options{})
	if r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	sealed := keyring.NewHierarchy(tenancy.New(e.store), keyring.HierarchyOptions{System: audit.System(), Pseudonym: audit.Pseudonym})
	app := e.server(without(e.deps(), func(d *api.Deps) { d.Keys = sealed }), api.Options{})
	r := doOn(t, app, "GET", "/v1/sys/health", "", withoutHeader("Authorization"))
	var h struct {
		Status string
		Sealed bool
	}
	r.json(t, &h)
	if r.status != http.StatusServiceUnavailable || !h.Sealed || h.Status != "sealed" {
		t.Fatalf("sealed health: %d %s", r.status, r.body)
	}
	p := checkProblem(t, doOn(t, app, "POST", "/v1/tenants/acme/keys/rotate", ""), http.StatusServiceUnavailable, "key-unavailable", "")
	if !strings.Contains(p.Detail, `"acme"`) || !strings.Contains(p.Detail, "sealed") {
		t.Errorf("detail %q", p.Detail)
	}
	// A listing of blobs by subject is audited under the tenant's audit
	// key, so it cannot be answered; a listing naming no subject can.
	allSealed := e.server(e.depsWith(sealed), api.Options{})
	owner := e.asOwner("acme")
	checkProblem(t, doOn(t, allSealed, "GET", "/v1/tenants/acme/blobs?subject=guest-1", "", owner), http.StatusServiceUnavailable, "key-unavailable", "")
	if r := doOn(t, allSealed, "GET", "/v1/tenants/acme/blobs", "", owner); r.status != http.StatusOK {
		t.Fatalf("blobs without subject on a sealed node: %d %s", r.status, r.body)
	}
	// Reading the status needs no key.
	if r := doOn(t, app, "GET", "/v1/tenants/acme/keys", ""); r.status != http.StatusOK {
		t.Fatalf("status on a sealed node: %d %s", r.status, r.body)
	}
	// The unsealed node is healthy.
	if r := e.do("GET", "/v1/sys/health", ""); r.status != http.StatusOK {
		t.Fatalf("health: %d %s", r.status, r.body)
	}
}
