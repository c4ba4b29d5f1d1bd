package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/net/html"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/uitest"
)

// The operations pages: the cluster, tenants, a tenant's overview, keys
// and API keys, and the operator users. Each action goes through the
// form as a browser sends it; its effect is checked through the API.

func mustContain(t *testing.T, p *uitest.Page, wants ...string) {
	t.Helper()
	text := p.Text()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Fatalf("%s: %q not on the page:\n%s", p, w, opsClip(text))
		}
	}
}

func opsClip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}

// enabled reports whether the page has a form declaring the API route
// whose submit button is not disabled (an action that does not apply
// in the current state is shown disabled).
func enabled(p *uitest.Page, route string) bool {
	for _, f := range p.Elements("form") {
		if uitest.Attr(f, "data-api") != route {
			continue
		}
		for c := f.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "button" && !hasAttr(c, "disabled") {
				return true
			}
		}
	}
	return false
}

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

// refusedWithID checks that a refused form shows the problem and a
// request id.
func refusedWithID(t *testing.T, p *uitest.Page, status int, wants ...string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("%s: want HTTP %d:\n%s", p, status, opsClip(p.Text()))
	}
	mustContain(t, p, append(wants, "Request id")...)
}

func TestClusterPage(t *testing.T) {
	n := uitest.Start(t)
	b := n.SignInToken(t)
	p := b.Get(t, "/ui/cluster").Must(t, http.StatusOK)
	st, err := n.API().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, p, st.NodeID, "this node", "leader", "healthy", "unsealed", "Metrics at a glance", "Voters", "Keys in memory",
		"Recent membership changes", "cluster.init", "Backups", "No backup found")

	// A backup taken through the API appears with its age.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.API().SetBackupRecipients(context.Background(), []string{id.Recipient().String()}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.API().Backup(context.Background(), new(strings.Builder)); err != nil {
		t.Fatalf("backup: %v", err)
	}
	p = b.Get(t, "/ui/cluster").Must(t, http.StatusOK)
	mustContain(t, p, "tenants=", "operator:")
	if strings.Contains(p.Text(), "No backup found") {
		t.Fatalf("the backup is not listed:\n%s", opsClip(p.Text()))
	}
}

func TestTenantsPages(t *testing.T) {
	n := uitest.Start(t)
	b := n.SignInToken(t)
	ctx := context.Background()

	p := b.Get(t, "/ui/tenants").Must(t, http.StatusOK)
	mustContain(t, p, "No tenants yet", "Create a tenant")
	if !contains(p.Actions(), "POST /tenants") {
		t.Fatalf("actions: %v", p.Actions())
	}

	// Create through the form.
	p = b.Post(t, "/ui/tenants", url.Values{"id": {"villa-a"}, "display_name": {"Villa A"}, "key_provider": {"age"}}).Must(t, http.StatusOK)
	if p.Path != "/ui/t/villa-a/?done=Tenant+villa-a+created+in+region+"+n.N.Store().Region()+".+Create+its+first+API+key+or+Owner+next." {
		t.Logf("landed at %s", p.Path)
	}
	mustContain(t, p, "Tenant villa-a", "created", "Villa A", "active", "Privacy settings", "gdpr")
	tn, err := n.API().Tenant(ctx, "villa-a")
	if err != nil || tn.DisplayName != "Villa A" || tn.State != "active" {
		t.Fatalf("tenant after the form: %+v %v", tn, err)
	}

	// Refused by the API (a duplicate): the form again, the input kept,
	// the problem with its request id.
	p = b.Post(t, "/ui/tenants", url.Values{"id": {"villa-a"}, "display_name": {"Again"}, "key_provider": {"age"}})
	refusedWithID(t, p, http.StatusConflict, "Create a tenant")
	if !strings.Contains(p.Body, `value="Again"`) {
		t.Fatal("the refused form lost the display name")
	}
	// A Vault provider with no address: the API's field problems.
	p = b.Post(t, "/ui/tenants", url.Values{"id": {"villa-v"}, "key_provider": {"vault"}, "vault_auth_method": {"token"}, "vault_token": {"s.secret"}})
	if p.Status < 400 || strings.Contains(p.Body, "s.secret") {
		t.Fatalf("vault without address: %s (the token must never be echoed)", p)
	}
	mustContain(t, p, "Request id")

	// The list shows the tenant.
	p = b.Get(t, "/ui/tenants").Must(t, http.StatusOK)
	mustContain(t, p, "villa-a", "Villa A", "active", "age")

	// Suspend, resume.
	p = b.Post(t, "/ui/t/villa-a/suspend", nil).Must(t, http.StatusOK)
	mustContain(t, p, "suspended")
	if tn, _ := n.API().Tenant(ctx, "villa-a"); tn.State != "suspended" {
		t.Fatalf("state after suspend: %s", tn.State)
	}
	if !enabled(p, "POST /tenants/:id/resume") || enabled(p, "POST /tenants/:id/suspend") {
		t.Fatalf("a suspended tenant's actions: resume %v, suspend %v", enabled(p, "POST /tenants/:id/resume"), enabled(p, "POST /tenants/:id/suspend"))
	}
	refusedWithID(t, b.Post(t, "/ui/t/nope/suspend", nil), http.StatusNotFound)
	b.Post(t, "/ui/t/villa-a/resume", nil).Must(t, http.StatusOK)
	if tn, _ := n.API().Tenant(ctx, "villa-a"); tn.State != "active" {
		t.Fatalf("state after resume: %s", tn.State)
	}

	// Delete needs the typed id.
	p = b.Post(t, "/ui/t/villa-a/delete", url.Values{"confirm": {"villa-b"}})
	refusedWithID(t, p, http.StatusBadRequest, "Type the tenant id")
	if _, err := n.API().Tenant(ctx, "villa-a"); err != nil {
		t.Fatalf("deleted without the typed id: %v", err)
	}
	p = b.Post(t, "/ui/t/villa-a/delete", url.Values{"confirm": {"villa-a"}}).Must(t, http.StatusOK)
	mustContain(t, p, "deleted")
	if _, err := n.API().Tenant(ctx, "villa-a"); err == nil {
		t.Fatal("the tenant is still there")
	}
}

func TestTenantsPagination(t *testing.T) {
	n := uitest.Start(t)
	ctx := context.Background()
	for i := range 52 {
		id := "t" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		if _, err := n.API().CreateTenant(ctx, client.NewTenant{ID: id, DisplayName: id}); err != nil {
			t.Fatal(err)
		}
	}
	b := n.SignInToken(t)
	p := b.Get(t, "/ui/tenants").Must(t, http.StatusOK)
	var next string
	for _, l := range p.Links() {
		if strings.HasPrefix(l, "/ui/tenants?after=") {
			next = l
		}
	}
	if next == "" || strings.Contains(p.Text(), "tbz") {
		t.Fatalf("first page: next %q", next)
	}
	p = b.Get(t, next).Must(t, http.StatusOK)
	mustContain(t, p, "tby", "tbz", "First page")
	if strings.Contains(p.Text(), "taa") {
		t.Fatal("second page repeats the first")
	}
}

func TestTenantOverviewAsOwner(t *testing.T) {
	n := uitest.Start(t)
	n.Tenant(t, "villa-a")
	owner := n.User(t, "villa-a", "olivia", "owner", nil, true)
	b := n.SignIn(t, owner)
	p := b.Get(t, "/ui/t/villa-a/").Must(t, http.StatusOK)
	mustContain(t, p, "Tenant villa-a", "Privacy settings", "Retention settings", "Data-subject requests", "Consent")
	// The lifecycle is the operator's: an Owner sees none of it.
	if acts := p.Actions(); len(acts) != 0 {
		t.Fatalf("an Owner's actions on the overview: %v", acts)
	}
	// And posting anyway is refused by the API, shown with its id.
	p = b.Post(t, "/ui/t/villa-a/suspend", nil)
	refusedWithID(t, p, http.StatusForbidden)
}

func TestKeysPage(t *testing.T) {
	n := uitest.Start(t)
	ctx := context.Background()
	owner := n.Tenant(t, "villa-a")
	if _, err := owner.PutCollection(ctx, "villa-a", "guests", map[string]any{
		"fields": []map[string]any{{"name": "name", "type": "string", "classification": "pii"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.CreateRecord(ctx, "villa-a", "guests", map[string]any{"id": "r1", "subject": "s1", "fields": map[string]any{"name": "Ada"}}); err != nil {
		t.Fatal(err)
	}
	b := n.SignInToken(t)
	p := b.Get(t, "/ui/t/villa-a/keys").Must(t, http.StatusOK)
	mustContain(t, p, "Key provider", "age", "Current KEK", "v1", "current", "Rotate KEK", "Purge key cache")
	for _, a := range []string{"POST /tenants/:id/keys/rotate", "POST /tenants/:id/keys/purge-cache", "PUT /tenants/:id/keys/provider"} {
		if !contains(p.Actions(), a) {
			t.Fatalf("actions %v lack %s", p.Actions(), a)
		}
	}

	p = b.Post(t, "/ui/t/villa-a/keys/rotate", nil).Must(t, http.StatusOK)
	mustContain(t, p, "KEK version 2 is current", "v2", "retired")
	if st, err := n.API().KeyStatus(ctx, "villa-a"); err != nil || st.CurrentKEK != 2 {
		t.Fatalf("after rotate: %+v %v", st, err)
	}
	p = b.Post(t, "/ui/t/villa-a/keys/purge-cache", nil).Must(t, http.StatusOK)
	mustContain(t, p, "Key cache purged")

	// A Vault provider the node cannot reach: refused, shown with the id,
	// the address kept and the token not.
	p = b.Post(t, "/ui/t/villa-a/keys/provider", url.Values{"key_provider": {"vault"}, "vault_address": {"http://127.0.0.1:1"},
		"vault_mount": {"transit"}, "vault_key": {"k"}, "vault_auth_method": {"token"}, "vault_token": {"s.topsecret"}})
	if p.Status < 400 {
		t.Fatalf("unreachable vault: %s", p)
	}
	mustContain(t, p, "Request id", "Change the key provider")
	if strings.Contains(p.Body, "s.topsecret") || !strings.Contains(p.Body, `value="http://127.0.0.1:1"`) {
		t.Fatal("the refused provider form: token echoed or address lost")
	}
	if st, _ := n.API().KeyStatus(ctx, "villa-a"); st.Provider.Kind != "age" {
		t.Fatalf("provider after a refusal: %s", st.Provider.Kind)
	}

	// A tenant's Owner reads the keys but changes nothing (keys:update is
	// the operator's).
	ob := n.SignIn(t, n.User(t, "villa-a", "olivia", "owner", nil, true))
	p = ob.Get(t, "/ui/t/villa-a/keys").Must(t, http.StatusOK)
	if len(p.Actions()) != 0 {
		t.Fatalf("an Owner's key actions: %v", p.Actions())
	}
	refusedWithID(t, ob.Post(t, "/ui/t/villa-a/keys/rotate", nil), http.StatusForbidden)
}

func TestAPIKeysPage(t *testing.T) {
	n := uitest.Start(t)
	ctx := context.Background()
	if _, err := n.API().CreateTenant(ctx, client.NewTenant{ID: "villa-e", DisplayName: "E"}); err != nil {
		t.Fatal(err)
	}
	n.Tenant(t, "villa-a")
	// The operator bootstraps a tenant: the form is offered, the API
	// accepts.
	b := n.SignInToken(t)
	p := b.Get(t, "/ui/t/villa-e/apikeys").Must(t, http.StatusOK)
	mustContain(t, p, "No API keys", "Create an API key", "has no Owner user yet")
	p = b.Get(t, "/ui/t/villa-a/apikeys").Must(t, http.StatusOK)
	mustContain(t, p, "uitest-owner", "owner")
	p = b.Post(t, "/ui/t/villa-a/apikeys", url.Values{"name": {"pms"}, "role": {"owner"}}).Must(t, http.StatusOK)
	mustContain(t, p, "API key pms created", "shown only this once")
	var token string
	for _, in := range p.Elements("input") {
		if v := uitest.Attr(in, "value"); strings.HasPrefix(v, "ck_") || (uitest.Attr(in, "readonly") != "" && v != "") {
			token = v
		}
	}
	if token == "" {
		t.Fatal("no token on the page")
	}
	ownerAPI := n.APIAs(token)
	if _, err := ownerAPI.APIKeys(ctx, "villa-a"); err != nil {
		t.Fatalf("the shown token does not work: %v", err)
	}
	// Shown once: the list does not show it again.
	if p = b.Get(t, "/ui/t/villa-a/apikeys").Must(t, http.StatusOK); strings.Contains(p.Body, token) {
		t.Fatal("the token is shown again")
	}

	// An Owner user creates a scoped key with a client certificate CN.
	owner := n.User(t, "villa-a", "olivia", "owner", nil, true)
	ob := n.SignIn(t, owner)
	expires := time.Now().UTC().AddDate(1, 0, 0).Format(time.DateOnly)
	p = ob.Post(t, "/ui/t/villa-a/apikeys", url.Values{"name": {"front desk"}, "role": {"concierge"},
		"scopes": {"villa: villa-a, villa-b\n"}, "client_cert_cn": {"desk.villa-a"}, "expires": {expires}}).Must(t, http.StatusOK)
	mustContain(t, p, "API key front desk created", "villa: villa-a, villa-b", "desk.villa-a", expires)
	list, err := ownerAPI.APIKeys(ctx, "villa-a")
	if err != nil {
		t.Fatal(err)
	}
	var desk client.APIKey
	for _, k := range list.APIKeys {
		if k.Name == "front desk" {
			desk = k
		}
	}
	if desk.Role != "concierge" || strings.Join(desk.Scopes["villa"], ",") != "villa-a,villa-b" || desk.ClientCertCN != "desk.villa-a" || desk.ExpiresAt == nil {
		t.Fatalf("the key made by the form: %+v", desk)
	}

	// The UI's own check (a scope line without values) and the API's (an
	// unknown role): the form again, the problem with its id.
	p = ob.Post(t, "/ui/t/villa-a/apikeys", url.Values{"name": {"x"}, "role": {"concierge"}, "scopes": {"villa:"}})
	refusedWithID(t, p, http.StatusBadRequest, "has no value")
	p = ob.Post(t, "/ui/t/villa-a/apikeys", url.Values{"name": {"x"}, "role": {"emperor"}})
	if p.Status < 400 {
		t.Fatalf("unknown role: %s", p)
	}
	mustContain(t, p, "Request id", "Create an API key")

	// Now that the tenant has an Owner, the operator's bootstrap is over:
	// the form is gone, and a post anyway is refused with the API's
	// problem.
	if p = b.Get(t, "/ui/t/villa-a/apikeys").Must(t, http.StatusOK); contains(p.Actions(), "POST /tenants/:id/apikeys") {
		t.Fatal("the operator is offered the create form after the bootstrap")
	}
	p = b.Post(t, "/ui/t/villa-a/apikeys", url.Values{"name": {"late"}, "role": {"owner"}})
	refusedWithID(t, p, http.StatusForbidden)

	// Delete.
	p = ob.Post(t, "/ui/t/villa-a/apikeys/"+url.PathEscape(desk.ID)+"/delete", nil).Must(t, http.StatusOK)
	mustContain(t, p, "deleted")
	list, _ = ownerAPI.APIKeys(ctx, "villa-a")
	for _, k := range list.APIKeys {
		if k.ID == desk.ID {
			t.Fatal("the key is still there")
		}
	}
	refusedWithID(t, ob.Post(t, "/ui/t/villa-a/apikeys/"+url.PathEscape(desk.ID)+"/delete", nil), http.StatusNotFound)
}

func TestOperatorsPage(t *testing.T) {
	n := uitest.Start(t)
	ctx := context.Background()
	b := n.SignInToken(t)
	p := b.Get(t, "/ui/operators").Must(t, http.StatusOK)
	mustContain(t, p, "No operator users yet", "Create an operator")

	p = b.Post(t, "/ui/operators", url.Values{"username": {"grace"}, "password": {uitest.Password}}).Must(t, http.StatusOK)
	mustContain(t, p, "Operator grace created", "grace", "enabled", "none")
	ops, err := n.API().Operators(ctx)
	if err != nil || len(ops) != 1 || ops[0].Username != "grace" {
		t.Fatalf("operators: %+v %v", ops, err)
	}
	uid := url.PathEscape(ops[0].ID)

	// A short password: the API refuses, the username is kept.
	p = b.Post(t, "/ui/operators", url.Values{"username": {"hopper"}, "password": {"short"}})
	if p.Status < 400 || !strings.Contains(p.Body, `value="hopper"`) {
		t.Fatalf("short password: %s", p)
	}
	mustContain(t, p, "Request id")

	if !enabled(p, "POST /sys/operators/:uid/disable") || enabled(p, "POST /sys/operators/:uid/enable") {
		t.Fatal("an enabled operator's row: disable should be offered, enable not")
	}
	for _, step := range []struct {
		action string
		check  func(client.User) bool
	}{
		{"disable", func(u client.User) bool { return u.Disabled }},
		{"enable", func(u client.User) bool { return !u.Disabled }},
		{"reset-mfa", func(u client.User) bool { return u.MFA == "none" }},
		{"unlock", func(u client.User) bool { return !u.Disabled }},
	} {
		p = b.Post(t, "/ui/operators/"+uid+"/"+step.action, nil).Must(t, http.StatusOK)
		mustContain(t, p, "Operator grace")
		u, err := n.API().Operator(ctx, ops[0].ID)
		if err != nil || !step.check(u) {
			t.Fatalf("after %s: %+v %v", step.action, u, err)
		}
	}
	refusedWithID(t, b.Post(t, "/ui/operators/nobody/disable", nil), http.StatusNotFound)
	if p := b.Post(t, "/ui/operators/"+uid+"/promote", nil); p.Status != http.StatusNotFound {
		t.Fatalf("unknown action: %s", p)
	}
}
