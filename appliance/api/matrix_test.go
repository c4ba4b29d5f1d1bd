package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
)

// matrixPrincipal is one principal of the role × route matrix: how it
// authenticates, and what the permission table says it may do.
type matrixPrincipal struct {
	name  string
	token string
	kind  string // audit.Actor*
	role  roles.Role
}

// authzRefusals are the details authorization refuses with (auth.go):
// a 403 forbidden with another detail comes from a service's own rule
// (such as "nobody changes their own role"), after authorization
// admitted the request.
var authzRefusals = []string{"This principal's role", "This API key", "Operators do not read", "This endpoint acts on"}

// refusedByAuthz reports whether r is authorization's refusal (401 of
// the token, 403 forbidden or tenant-suspended from authorize).
func refusedByAuthz(r response) bool {
	var p api.Problem
	_ = json.Unmarshal(r.body, &p)
	switch {
	case r.status == http.StatusUnauthorized:
		return !strings.Contains(p.Detail, "second-factor") // a wrong TOTP code is the service's answer
	case r.status != http.StatusForbidden:
		return false
	case len(r.body) == 0: // HEAD: headers only
		return true
	}
	return slices.ContainsFunc(authzRefusals, func(s string) bool { return strings.HasPrefix(p.Detail, s) })
}

// TestRoleRouteMatrix is acceptance 1 of issue 12, generated from the
// permission table (roles.Builtins) and openapi.json: every operation of
// the description is sent by every principal kind bound to every
// built-in role — an API key of each tenant role, a user of each tenant
// role (enrolled in MFA where the role requires it), and the root
// operator token (the Operator role) — and is admitted iff the table
// says so: a tenant's principal in its own tenant's routes iff its role
// holds the operation's permission (x-custos-permission), never on the
// cluster's; an operator on the cluster's and the tenants' routes iff the
// Operator role holds it (the tenant has an Owner user, so bootstrap is
// over: the operator mints no keys; no break-glass grant is active, so it
// reads no data); a user on its own session's routes. Admitted means
// authorization let the request through (whatever the service then
// answered); refused means authorization's 401 or 403. A route without a
// permission in the table, or a role the matrix does not walk, fails it.
func TestRoleRouteMatrix(t *testing.T) {
	e := newEnv(t, api.Options{})
	s := &suspendEnv{t: t, e: e}
	_, ops := loadSpecOps(t)
	walk := newOperationWalk()
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	s.grant = s.requestGrant()

	// The principals: keys first (the operator mints them while acme has
	// no Owner user), then the users (the first Owner by the operator,
	// the others by it).
	var ps []matrixPrincipal
	tenantRoles := 0
	for _, r := range roles.Builtins() {
		if r.ClusterWide() {
			ps = append(ps, matrixPrincipal{name: "the root operator token", token: goodToken, kind: audit.ActorOperator, role: r})
			continue
		}
		tenantRoles++
		if !slices.Contains(apikeys.Roles(), r.Name()) {
			t.Fatalf("built-in role %s cannot be bound to an API key: the matrix cannot walk it", r.Name())
		}
		k := e.createKey(t, "acme", `{"name":"`+r.Name()+`","role":"`+r.Name()+`"}`)
		ps = append(ps, matrixPrincipal{name: "a " + r.Name() + " key", token: k.Token, kind: audit.ActorAPIKey, role: r})
	}
	ownerKey := e.ownerKey("acme")
	owner := e.user(t, operatorPrincipal, "acme", "olivia", "owner")
	ownerP := audit.Principal{Kind: audit.ActorUser, ID: owner.ID, Tenant: "acme", Role: "owner"}
	for _, r := range roles.Builtins() {
		if r.ClusterWide() {
			continue
		}
		name := "user-" + r.Name()
		if r.Name() == "owner" {
			name = "olivia"
		} else {
			e.user(t, ownerP, "acme", name, r.Name())
		}
		var access string
		if r.RequiresMFA() {
			g, _ := e.enrolled(t, "acme", name)
			access = g.AccessToken
		} else {
			access = e.session(t, "acme", name).AccessToken
		}
		ps = append(ps, matrixPrincipal{name: "a " + r.Name() + " user", token: access, kind: audit.ActorUser, role: r})
	}
	// Every role of the table is walked by every kind that may hold it.
	if len(ps) != 2*tenantRoles+1 || tenantRoles != len(roles.Builtins())-1 {
		t.Fatalf("%d principals for %d roles", len(ps), len(roles.Builtins()))
	}
	// A user the people's routes name (not a principal of the matrix),
	// and one of its sessions.
	uma := e.user(t, ownerP, "acme", "uma", "foh")
	s.user = uma.ID
	refill := func() {
		t.Helper()
		if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"`+aRecord+`","subject":"`+aSubject+`","fields":{"email":"a@acme.test"}}`); r.status != http.StatusCreated && r.status != http.StatusConflict {
			t.Fatalf("record: %d %s", r.status, r.body)
		}
		var bl struct{ ID string }
		e.do("POST", "/v1/tenants/acme/blobs?subject="+aSubject, "RIFF\x24\x00\x00\x00WAVEfmt acme", withHeader("Content-Type", "audio/wav")).json(t, &bl)
		s.blob = bl.ID
		var k createdKey
		if r := e.do("POST", "/v1/tenants/acme/apikeys", `{"name":"other","permissions":["read"]}`, withHeader("Authorization", "Bearer "+ownerKey)); r.status != http.StatusCreated {
			t.Fatalf("key: %d %s", r.status, r.body)
		} else {
			r.json(t, &k)
		}
		s.keyOther = k.ID
		s.session = e.session(t, "acme", "uma").Session.ID
	}
	// Deletions, then the principal's own logout, last; the tenant itself
	// is deleted by the last principal only (the operator).
	last := func(op *specOp) int {
		switch {
		case op.String() == "DELETE /v1/tenants/{id}":
			return 3
		case op.String() == "POST /v1/auth/logout":
			return 2
		case op.method == http.MethodDelete:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(ops, func(a, b *specOp) int { return last(a) - last(b) })
	slices.SortStableFunc(ps, func(a, b matrixPrincipal) int {
		return cmpBool(a.kind == audit.ActorOperator, b.kind == audit.ActorOperator)
	})

	s.calls = e.withCallLog()
	admitted, refused := 0, 0
	for _, p := range ps {
		refill()
		// A HEAD's refusal has no body to tell authorization's from a
		// service's (withheld blob content): it is the GET's.
		getRefused := map[string]bool{}
		for _, op := range ops {
			o := walk.operation(t, op)
			if o.Public {
				continue
			}
			if !o.Session {
				if _, err := roles.ParsePermission(o.Need.String()); err != nil {
					t.Fatalf("%s needs no permission of the table", op)
				}
			}
			var want bool
			switch {
			case o.Session:
				want = p.kind == audit.ActorUser
			case o.Cluster:
				want = p.kind == audit.ActorOperator && p.role.Allows(o.Need)
			default:
				want = p.role.Allows(o.Need)
			}
			r, _ := s.asKey(op, p.token)
			got := !refusedByAuthz(r)
			switch {
			case op.method == http.MethodGet:
				getRefused[op.path] = !got
			case op.method == http.MethodHead && r.status == http.StatusForbidden:
				refusedGet, ok := getRefused[op.path]
				if !ok {
					t.Fatalf("%s walked before its GET", op)
				}
				got = !refusedGet
			}
			if got != want {
				t.Errorf("%s by %s (role %s, %s): %d %s; the table says admitted=%v", op, p.name, p.role.Name(), o.Need, r.status, clipBody(r.body), want)
			}
			if want {
				admitted++
			} else {
				refused++
			}
		}
	}
	walk.checkAllWalked(t)
	t.Logf("%d principals × %d operations: %d admitted, %d refused as the table says", len(ps), len(ops), admitted, refused)
	if admitted < 300 || refused < 300 {
		t.Fatalf("only %d admitted and %d refused requests checked", admitted, refused)
	}
}
