package browser

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/e2e"
	"github.com/custos/custos/internal/testkit/uitest"
)

// Node is the node the browser tests run against: the real custos binary,
// a one-node cluster initialized with `custos operator init` and serving
// its API and UI over TLS from its cluster CA — a production node, so the
// session cookie is the __Host- Secure one and the operator token cannot
// sign in to the UI.
type Node struct {
	C   *e2e.Cluster
	N   *e2e.Node
	URL string         // https://127.0.0.1:port, the UI's origin
	API *client.Client // as the operator token
	Bin string         // the custos binary (for the CLI)
}

// StartNode builds the binary (once per test binary) and starts the node;
// it is killed when t ends.
func StartNode(t *testing.T) *Node {
	t.Helper()
	bin := e2e.Binary(t)
	c := e2e.StartClusterOpts(t, bin, e2e.Options{Single: true, Extra: "[log]\nlevel = \"warn\"\n"})
	n := c.Nodes[0]
	return &Node{C: c, N: n, URL: n.URL(), API: n.API, Bin: bin}
}

// Owner is the API client of tenant's bootstrap Owner key.
func (n *Node) Owner(tenant string) *client.Client { return n.C.TenantAPI(n.N, tenant) }

// As is an API client of the node with token.
func (n *Node) As(t testing.TB, token string) *client.Client {
	return e2e.NewAPIClient(t, n.URL, token, 30*time.Second, nil)
}

// HTTPClient trusts the node's cluster CA.
func (n *Node) HTTPClient() *http.Client { return n.C.HTTPClient(30 * time.Second) }

// CLI runs the custos CLI against the node with the operator token.
func (n *Node) CLI(args ...string) e2e.CLIResult { return n.C.CLI(n.N, args...) }

// Operator creates an operator user (as the operator token) with an
// enrolled authenticator.
func (n *Node) Operator(t testing.TB, username string) *uitest.User {
	t.Helper()
	if _, err := n.API.CreateOperator(context.Background(), client.NewOperator{Username: username, Password: uitest.Password}); err != nil {
		t.Fatalf("create operator %s: %v", username, err)
	}
	return n.enrol(t, &uitest.User{Username: username, Role: "operator"})
}

// TenantUser creates a user of tenant (as its Owner key) with a role and
// scopes and an enrolled authenticator.
func (n *Node) TenantUser(t testing.TB, tenant, username, role string, scopes map[string][]string) *uitest.User {
	t.Helper()
	if _, err := n.Owner(tenant).CreateUser(context.Background(), tenant, client.NewUser{Username: username, Password: uitest.Password, Role: role, Scopes: scopes}); err != nil {
		t.Fatalf("create user %s/%s: %v", tenant, username, err)
	}
	return n.enrol(t, &uitest.User{Tenant: tenant, Username: username, Role: role})
}

// enrol signs u in through the API and enrols a TOTP authenticator.
func (n *Node) enrol(t testing.TB, u *uitest.User) *uitest.User {
	t.Helper()
	ctx := context.Background()
	g, err := n.As(t, "").Login(ctx, client.Login{Tenant: u.Tenant, Username: u.Username, Password: uitest.Password})
	if err != nil {
		t.Fatalf("login %s/%s: %v", u.Tenant, u.Username, err)
	}
	api := n.As(t, g.AccessToken)
	en, err := api.EnrolMFA(ctx)
	if err != nil {
		t.Fatalf("enrol %s: %v", u.Username, err)
	}
	u.URI = en.URI
	if u.Recovery, err = api.ConfirmMFA(ctx, u.Code(t)); err != nil {
		t.Fatalf("confirm %s: %v", u.Username, err)
	}
	return u
}

// loginForm is the login page's password form.
const loginForm = `main form[action="/ui/login"]:has(input[name="username"])`

// SignIn signs u in through the login page — the password, then the
// authentication code step — and returns the page it lands on (whose
// status the caller checks: a start page may not exist yet).
func (s *Session) SignIn(t testing.TB, u *uitest.User) *Page {
	t.Helper()
	s.Open(t, "/ui/login")
	p := s.Submit(t, loginForm, "tenant", u.Tenant, "username", u.Username, "password", uitest.Password)
	if !strings.Contains(s.Text(t), "Authentication code") {
		t.Fatalf("%s: sign in %s/%s: no code step after the password (HTTP %d at %s): %s", s.name, u.Tenant, u.Username, p.Status, p.Path, clip(s.Text(t), 600))
	}
	p = s.Submit(t, loginForm, "code", u.Code(t))
	if strings.HasPrefix(p.Path, "/ui/login") || p.Status == http.StatusUnauthorized {
		t.Fatalf("%s: sign in %s/%s: HTTP %d at %s: %s", s.name, u.Tenant, u.Username, p.Status, p.Path, clip(s.Text(t), 600))
	}
	return p
}
