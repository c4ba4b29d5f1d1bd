package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/apispec"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2ESuspendedTenant (issue 12, acceptance 8, last clause) on a real
// three-node cluster: a tenant suspended through one node (the CLI) has
// its API key refused, 403 tenant-suspended, through every node — reads
// and writes, and the write changes nothing — while the operator still
// manages it through every node; resumed through another node, the key
// works again through every node. The suspension is a replicated write
// and the key's authentication a linearizable read, so each node is
// polled with a deadline, not slept on.
func TestE2ESuspendedTenant(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	if _, err := n1.API.CreateTenant(ctx, client.NewTenant{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TenantAPI(n1, "acme").PutCollection(ctx, "acme", "guests", map[string]any{"fields": []map[string]any{
		{"name": "email", "type": "string", "required": true, "classification": "pii", "index": true}}}); err != nil {
		t.Fatal(err)
	}
	key, err := n2.API.CreateAPIKey(ctx, "acme", client.NewAPIKey{Name: "app", Permissions: []string{"read", "write"}})
	if err != nil {
		t.Fatal(err)
	}
	spec := apispec.New(t)
	keyOn := map[*e2e.Node]*client.Client{}
	for _, n := range c.Nodes {
		keyOn[n] = e2e.NewAPIClient(t, n.APIAddr, key.Token, 10*time.Second, spec)
	}
	if _, err := keyOn[n3].CreateRecord(ctx, "acme", "guests", map[string]any{"id": "g1", "fields": map[string]any{"email": "a@acme.test"}}); err != nil {
		t.Fatal(err)
	}
	read := func(n *e2e.Node) error {
		_, err := keyOn[n].Record(ctx, "acme", "guests", "g1", false)
		return err
	}
	suspended := func(err error) error {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 403 || ce.Problem == nil || ce.Problem.Slug() != "tenant-suspended" {
			return fmt.Errorf("not refused as suspended: %v", err)
		}
		return nil
	}
	for _, n := range c.Nodes {
		testkit.Poll(t, 10*time.Second, n.ID+": the key reads before the suspension", func() error { return read(n) })
	}

	if r := c.CLI(n2, "tenant", "suspend", "acme"); r.Code != 0 {
		t.Fatalf("tenant suspend: %v", r)
	}
	for _, n := range c.Nodes {
		testkit.Poll(t, 10*time.Second, n.ID+": the key refused once suspended", func() error { return suspended(read(n)) })
		_, err := keyOn[n].CreateRecord(ctx, "acme", "guests", map[string]any{"id": "w-" + n.ID, "fields": map[string]any{"email": "b@acme.test"}})
		if err := suspended(err); err != nil {
			t.Errorf("%s: a write with acme suspended: %v", n.ID, err)
		}
		// The operator still manages the tenant through every node.
		if tn, err := n.API.Tenant(ctx, "acme"); err != nil || tn.State != "suspended" {
			t.Errorf("%s: the operator reads the suspended tenant: %+v %v", n.ID, tn, err)
		}
		if keys, err := n.API.APIKeys(ctx, "acme"); err != nil || len(keys.APIKeys) != 2 { // the app's and the Owner key that put the collection
			t.Errorf("%s: the operator lists the suspended tenant's keys: %+v %v", n.ID, keys, err)
		}
	}

	if r := c.CLI(n3, "tenant", "resume", "acme"); r.Code != 0 {
		t.Fatalf("tenant resume: %v", r)
	}
	for _, n := range c.Nodes {
		testkit.Poll(t, 10*time.Second, n.ID+": the key reads again once resumed", func() error { return read(n) })
	}
	// The refused writes left nothing; the data was kept throughout.
	for _, id := range []string{"w-n1", "w-n2", "w-n3"} {
		var ce *client.Error
		if _, err := keyOn[n1].Record(ctx, "acme", "guests", id, false); !errors.As(err, &ce) || ce.Status != 404 {
			t.Errorf("record %s, written while acme was suspended: %v (want 404)", id, err)
		}
	}
	if _, err := keyOn[n2].CreateRecord(ctx, "acme", "guests", map[string]any{"id": "g2", "fields": map[string]any{"email": "c@acme.test"}}); err != nil {
		t.Errorf("a write once resumed: %v", err)
	}
}
