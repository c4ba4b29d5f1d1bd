package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
)

// owners holds the bootstrap Owner keys of a cluster's (or a dev node's)
// tenants: the principals tests read and write a tenant's data with,
// since the operator token reads none (issue 12).
type owners struct {
	mu   sync.Mutex
	keys map[string]string // tenant → token
}

// key returns tenant's Owner key, creating it on first use with create
// (which runs `custos apikey create TENANT --role owner` with the operator
// token: the bootstrap path, while the tenant has no Owner user).
func (o *owners) key(t testing.TB, tenant string, create func(args ...string) CLIResult) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if tok, ok := o.keys[tenant]; ok {
		return tok
	}
	r := create("apikey", "create", tenant, "--name", "bootstrap owner", "--role", "owner", "--format", "json")
	var k struct {
		Token string `json:"token"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &k) != nil || !strings.HasPrefix(k.Token, "ck_") {
		t.Fatalf("bootstrap Owner key of %s: %s", tenant, r)
	}
	if o.keys == nil {
		o.keys = map[string]string{}
	}
	o.keys[tenant] = k.Token
	return k.Token
}

// tokens are the Owner keys made so far.
func (o *owners) tokens() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.keys))
	for _, tok := range o.keys {
		out = append(out, tok)
	}
	return out
}

// OwnerKey returns the token of tenant's bootstrap Owner key: an API key
// bound to the Owner role, created by the operator (the bootstrap path)
// on first use and kept for the cluster's life. Tests read and write a
// tenant's data with it, as the operator token reads none.
func (c *Cluster) OwnerKey(tenant string) string {
	c.t.Helper()
	return c.owners.key(c.t, tenant, func(args ...string) CLIResult { return c.CLI(c.Nodes[0], args...) })
}

// TenantCLI runs a CLI command against node n as tenant's Owner (see
// OwnerKey).
func (c *Cluster) TenantCLI(n *Node, tenant string, args ...string) CLIResult {
	c.t.Helper()
	return RunCLI(c.t, c.Bin, append([]string{"--addr", n.URL(), "--ca-cert", c.ca.file, "--token", c.OwnerKey(tenant)}, args...)...)
}

// TenantAPI is an API client of node n as tenant's Owner (see OwnerKey),
// checked against openapi.json as the nodes' clients are.
func (c *Cluster) TenantAPI(n *Node, tenant string) *client.Client {
	c.t.Helper()
	return NewAPIClient(c.t, n.URL(), c.OwnerKey(tenant), 10*time.Second, c.spec)
}

// OwnerKey is Cluster.OwnerKey for the dev node.
func (d *DevNode) OwnerKey(t *testing.T, tenant string) string {
	t.Helper()
	return d.owners.key(t, tenant, func(args ...string) CLIResult { return d.CLI(t, args...) })
}

// TenantCLI runs the CLI against the dev node as tenant's Owner.
func (d *DevNode) TenantCLI(t *testing.T, tenant string, args ...string) CLIResult {
	t.Helper()
	return RunCLI(t, d.Bin, append([]string{"--addr", "http://" + d.Addr, "--token", d.OwnerKey(t, tenant)}, args...)...)
}
