package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EOperatorUsers (issue 12: operators are people too) on a real
// three-node cluster, through the CLI: the root token creates an operator
// user (`custos operator user create`); it logs in without a tenant
// (`custos login`) to a session that can only enrol, enrols TOTP with
// `custos mfa` (the test computes the code from the secret) on other
// nodes, and its session then reaches the cluster's routes on every node
// (the cluster key that seals operators' usernames is opened by each);
// a later login needs a code; the root token disables it and its token is
// refused on all three nodes (polled; the elapsed time is logged).
func TestE2EOperatorUsers(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	root := func(typed string, args ...string) e2e.CLIResult {
		return e2e.RunCLIWith(t, bin, e2e.CLIInput{Stdin: typed}, append([]string{"--addr", n1.URL(), "--token", c.Token}, args...)...)
	}
	r := root(ownerPass+"\n", "--format", "json", "operator", "user", "create", "--username", "Ada")
	var ada client.User
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ada) != nil || !strings.HasPrefix(ada.ID, "op_") || ada.Role != "operator" {
		t.Fatalf("operator user create: %v", r)
	}
	if r := root(ownerPass+"\n", "operator", "user", "create", "--username", "ada"); r.Code == 0 {
		t.Fatalf("a second operator of the same username: %v", r)
	}

	op := person{t: t, bin: bin, dir: t.TempDir()}
	r = op.run(n1, ownerPass+"\n", "login", "--username", "ada")
	if r.Code != 0 || !strings.Contains(r.Stdout, "as an operator") || !strings.Contains(r.Stdout, "requires MFA") {
		t.Fatalf("operator login: %v", r)
	}
	if r := op.run(n1, "", "operator", "raft", "list-peers"); r.Code == 0 || !strings.Contains(r.Stderr, "enrol") {
		t.Fatalf("an enrolment-only operator session lists peers: %v", r)
	}
	r = op.run(n2, "", "mfa", "enrol")
	uri := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Fatalf("mfa enrol: %v", r)
	}
	r = op.run(n3, "", "mfa", "confirm", totpNow(t, uri))
	if r.Code != 0 || len(strings.Fields(r.Stdout)) != 10 {
		t.Fatalf("mfa confirm: %v", r)
	}
	for _, n := range c.Nodes {
		if r := op.run(n, "", "operator", "raft", "list-peers"); r.Code != 0 || !strings.Contains(r.Stdout, n1.ID) {
			t.Fatalf("%s: the enrolled operator lists peers: %v", n.ID, r)
		}
		if r := op.run(n, "", "operator", "user", "list"); r.Code != 0 || !strings.Contains(r.Stdout, "Ada") || !strings.Contains(r.Stdout, "active") {
			t.Fatalf("%s: operator user list: %v", n.ID, r)
		}
	}
	r = op.run(n1, "", "--format", "json", "whoami")
	var who client.SessionInfo
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &who) != nil || who.Kind != "operator" || who.ID != ada.ID || who.Tenant != "" {
		t.Fatalf("whoami: %v", r)
	}
	if r := op.run(n1, "", "whoami"); r.Code != 0 || !strings.Contains(r.Stdout, "of the cluster") {
		t.Fatalf("whoami: %v", r)
	}
	// A later login needs a code: none is refused, the next step's works.
	later := person{t: t, bin: bin, dir: t.TempDir()}
	if r := later.run(n2, ownerPass+"\n\n", "login", "--username", "ADA"); r.Code == 0 {
		t.Fatalf("a login without a code: %v", r)
	}
	next := totpAt(t, uri, time.Now().Add(30*time.Second))
	if r := later.run(n2, ownerPass+"\n"+next+"\n", "login", "--username", "ADA"); r.Code != 0 || strings.Contains(r.Stdout, "requires MFA") {
		t.Fatalf("a login with a code: %v", r)
	}

	// Disabled by the root token: refused on every node at once.
	start := time.Now()
	if r := root("", "operator", "user", "disable", ada.ID); r.Code != 0 {
		t.Fatalf("disable: %v", r)
	}
	for _, n := range c.Nodes {
		testkit.Poll(t, 10*time.Second, n.ID+": the disabled operator is refused", func() error {
			if r := op.run(n, "", "whoami"); r.Code == 0 {
				return errors.New("still admitted")
			}
			return nil
		})
	}
	t.Logf("disable effective on all three nodes %v after the request was sent", time.Since(start))
	if r := root("", "--format", "json", "operator", "user", "get", ada.ID); r.Code != 0 || !strings.Contains(r.Stdout, `"disabled": true`) && !strings.Contains(r.Stdout, `"disabled":true`) {
		t.Fatalf("get: %v", r)
	}
	for _, action := range []string{"enable", "reset-mfa"} {
		if r := root("", "operator", "user", action, ada.ID); r.Code != 0 {
			t.Fatalf("%s: %v", action, r)
		}
	}
	if r := op.run(n1, ownerPass+"\n", "login", "--username", "ada"); r.Code != 0 || !strings.Contains(r.Stdout, "requires MFA") {
		t.Fatalf("after a reset the operator enrols again: %v", r)
	}
}
