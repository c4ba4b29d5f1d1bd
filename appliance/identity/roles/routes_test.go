package roles_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/identity/roles"
)

// operation is one route of appliance/api/routes.go as the table
// authorizes it: the permission it needs (none: public), whether it acts
// on the cluster (only a cluster-wide role may call it) or on the path's
// tenant, and who may call it before roles (the operator, or also an API
// key holding key).
type operation struct {
	method, path string
	public       bool
	perm         roles.Permission
	cluster      bool
	key          string // "": the operator only
	// session: the route acts on the caller's own login session; no
	// permission applies (like public, for the table).
	session bool
}

var (
	p = roles.P
	// operations is every operation of the API, with the permission each
	// declares in routes.go (the one place routes are mapped onto the
	// table). A route added to routes.go without a permission of the
	// table does not register; TestEveryOperationIsExpressible checks
	// the list is routes.go's.
	operations = func() []operation {
		var out []operation
		for _, o := range api.Operations() {
			out = append(out, operation{method: o.Method, path: o.Path, public: o.Public, perm: o.Need, cluster: o.Cluster, key: o.Key, session: o.Session})
		}
		return out
	}()
	// operatorLoses are the operator-only routes the Operator role no
	// longer calls: minting an API key would let the operator read the
	// tenant's data through it, so creating keys is the tenant Owner's
	// (the operator still lists and revokes them). A tenant's people
	// (users, their sessions, its roles) are its own: the Operator holds
	// no users:* or roles:* (the accounts service lets the operator create
	// a tenant's first Owner only, the bootstrap rule, and change
	// nothing).
	operatorLoses = []string{"POST /tenants/:id/apikeys",
		"POST /tenants/:id/users", "GET /tenants/:id/users", "GET /tenants/:id/users/:uid", "PATCH /tenants/:id/users/:uid",
		"POST /tenants/:id/users/:uid/disable", "POST /tenants/:id/users/:uid/enable", "POST /tenants/:id/users/:uid/reset-mfa",
		"POST /tenants/:id/users/:uid/unlock", "GET /tenants/:id/users/:uid/sessions", "DELETE /tenants/:id/users/:uid/sessions",
		"DELETE /tenants/:id/users/:uid/sessions/:session", "GET /tenants/:id/roles", "GET /tenants/:id/roles/:role", "POST /tenants/:id/roles"}
	// tenantDecides are the routes of a tenant's decisions about
	// operators, which no API key reached before roles and the Operator
	// must not make: approving, revoking break-glass, and its policy.
	tenantDecides = []string{"POST /tenants/:id/breakglass/:gid/approve", "POST /tenants/:id/breakglass/:gid/revoke", "PUT /tenants/:id/breakglass-policy"}
	// tenantData are the routes of data subjects' requests and of
	// exports, added since roles (every route under /tenants/:id/requests,
	// and /tenants/:id/export[s]): they carry a tenant's data — a request
	// names its subject, an export holds the data — so never the
	// Operator's.
	tenantData = func(path string) bool {
		return path == "/tenants/:id/requests" || strings.HasPrefix(path, "/tenants/:id/requests/") || path == "/tenants/:id/requests-summary" ||
			path == "/tenants/:id/export" || path == "/tenants/:id/exports" || strings.HasPrefix(path, "/tenants/:id/exports/")
	}
)

// routesInAPI reads the operations declared in appliance/api's route
// table (routes.go, and the files of route groups it appends, such as
// sso.go): literal paths, and the audit routes under both prefixes.
func routesInAPI(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "api", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var src []byte
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	methods := map[string]string{"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "del": "DELETE"}
	var got []string
	for _, m := range regexp.MustCompile(`method: (\w+), path: "([^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		got = append(got, methods[m[1]]+" "+m[2])
	}
	prefixes := regexp.MustCompile(`auditRoutes\("([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	suffixes := regexp.MustCompile(`method: (\w+), path: prefix(?: \+ "([^"]+)")?`).FindAllStringSubmatch(string(src), -1)
	if len(prefixes) == 0 || len(suffixes) == 0 {
		t.Fatal("found no audit routes in routes.go: update routesInAPI")
	}
	for _, pre := range prefixes {
		for _, s := range suffixes {
			got = append(got, methods[s[1]]+" "+pre[1]+s[2])
		}
	}
	return got
}

// Every operation of the API is in the table above, and the table has
// none the API lacks.
func TestEveryOperationIsExpressible(t *testing.T) {
	var table []string
	for _, o := range operations {
		table = append(table, o.method+" "+o.path)
		if !o.public && !o.session && !slices.Contains(roles.Permissions(), o.perm) {
			t.Errorf("%s %s needs %s, which is no permission", o.method, o.path, o.perm)
		}
	}
	api := routesInAPI(t)
	slices.Sort(table)
	slices.Sort(api)
	if !slices.Equal(table, api) {
		t.Errorf("operations differ from appliance/api/routes.go:\n table: %v\n api:   %v", table, api)
	}
}

// The Operator keeps every operator-only operation it had, except those
// operatorLoses lists, and gains none of a tenant's data.
func TestOperatorOperations(t *testing.T) {
	operator, _ := roles.Builtin("operator")
	for _, o := range operations {
		if o.public || o.session {
			continue
		}
		name := o.method + " " + o.path
		if want := !slices.Contains(operatorLoses, name) && !slices.Contains(tenantDecides, name) && !tenantData(o.path); o.key == "" && operator.Allows(o.perm) != want {
			t.Errorf("operator: %s allowed %v, want %v", name, operator.Allows(o.perm), want)
		}
		if o.cluster {
			for _, r := range roles.Builtins() {
				if !r.ClusterWide() && r.Allows(o.perm) && o.perm.Resource == roles.Cluster {
					t.Errorf("tenant role %s may call cluster operation %s", r.Name(), name)
				}
			}
		}
	}
}

// The old API-key permissions map onto exactly what their routes
// allowed: each key reaches every route it reached, and its role holds
// no permission beyond those routes'.
func TestFromAPIKey(t *testing.T) {
	if got, want := []string{apikeys.PermRead, apikeys.PermWrite, apikeys.PermDelete, apikeys.PermExport, apikeys.PermAdmin},
		[]string{"read", "write", "delete", "export", "admin"}; !slices.Equal(got, want) {
		t.Fatalf("apikeys' permissions are %v; roles spells %v", got, want)
	}
	for _, perm := range []string{apikeys.PermRead, apikeys.PermWrite, apikeys.PermDelete, apikeys.PermExport, apikeys.PermAdmin} {
		r, err := roles.FromAPIKey([]string{perm})
		if err != nil {
			t.Fatal(err)
		}
		var want roles.Set
		for _, o := range operations {
			if o.key != "" && apikeys.Allows([]string{perm}, o.key) {
				want = want.Union(roles.SetOf(o.perm))
			}
		}
		if r.Permissions() != want {
			t.Errorf("a %s key: %v, want %v", perm, r.Permissions().List(), want.List())
		}
		for _, c := range roles.Classifications() {
			if r.Visibility(c) != roles.Clear {
				t.Errorf("a %s key reads %s %s; old keys read in clear", perm, c, r.Visibility(c))
			}
		}
	}
	// A key of several permissions holds their union; read reaches blob
	// content as it did.
	r, err := roles.FromAPIKey([]string{apikeys.PermRead, apikeys.PermWrite})
	if err != nil || !r.Allows(p(roles.Records, roles.Create)) || !r.Allows(p(roles.Records, roles.Read)) || r.Allows(p(roles.Records, roles.Delete)) || !r.ReadsBlobContent() {
		t.Errorf("read+write key: %v, %v", r.Permissions().List(), err)
	}
	// admin is not Owner: it never managed access.
	admin, _ := roles.FromAPIKey([]string{apikeys.PermAdmin})
	for _, q := range []roles.Permission{p(roles.Users, roles.Create), p(roles.APIKeys, roles.Create), p(roles.Settings, roles.Update), p(roles.Subjects, roles.Delete)} {
		if admin.Allows(q) {
			t.Errorf("an admin key may %s", q)
		}
	}
	if _, err := roles.FromAPIKey([]string{"read", "superuser"}); !errors.Is(err, roles.ErrUnknownAPIKeyPermission) {
		t.Error("an unknown key permission was mapped")
	}
	if none, err := roles.FromAPIKey(nil); err != nil || none.Permissions() != 0 {
		t.Errorf("no permissions: %v, %v", none.Permissions().List(), err)
	}
}
