package roles_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/roles"
)

func builtin(t *testing.T, name string) roles.Role {
	t.Helper()
	r, ok := roles.Builtin(name)
	if !ok {
		t.Fatalf("no built-in role %q", name)
	}
	return r
}

// The 11 roles the issue names, in a stable order, each found by name.
func TestBuiltins(t *testing.T) {
	want := []string{"owner", "manager", "reservations", "concierge", "foh", "marketing", "compliance", "qa", "coach", "read-only", "operator"}
	var got []string
	for _, r := range roles.Builtins() {
		got = append(got, r.Name())
		if b, ok := roles.Builtin(r.Name()); !ok || b.Name() != r.Name() || !b.IsBuiltin() || b.Title() == "" {
			t.Errorf("Builtin(%q) = %v, %v", r.Name(), b.Name(), ok)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Builtins() = %v, want %v", got, want)
	}
	if _, ok := roles.Builtin("Owner"); ok {
		t.Error(`Builtin("Owner") found a role: names are lower case`)
	}
	if _, ok := roles.Builtin("root"); ok {
		t.Error(`Builtin("root") found a role`)
	}
	// Builtins returns a copy: changing it changes nothing.
	roles.Builtins()[0] = roles.Role{}
	if roles.Builtins()[0].Name() != "owner" {
		t.Error("Builtins() shares its array")
	}
}

// The classifications are collections' own.
func TestClassificationsAreCollections(t *testing.T) {
	got := roles.Classifications()
	want := []roles.Classification{collections.ClassPII, collections.ClassSensitive, collections.ClassInternal}
	if !slices.Equal(got, want) {
		t.Errorf("Classifications() = %v, want collections' %v", got, want)
	}
}

// Selected cells the issue states in words, so that a golden file
// regenerated carelessly cannot silently drop them.
func TestTheIssuesRules(t *testing.T) {
	for _, c := range []struct {
		role string
		cl   roles.Classification
		max  roles.Visibility // the most the role may see
	}{
		{"marketing", roles.PII, roles.Masked},
		{"coach", roles.PII, roles.Masked},
		{"read-only", roles.PII, roles.Masked},
		{"operator", roles.PII, roles.None},
		{"operator", roles.Sensitive, roles.None},
		{"operator", roles.Internal, roles.None},
		{"marketing", roles.Sensitive, roles.None},
		{"coach", roles.Sensitive, roles.None},
	} {
		if v := roles.VisibilityOf(builtin(t, c.role), c.cl); v != c.max && !(c.max == roles.Masked && v == roles.None) {
			t.Errorf("%s reads %s %s; at most %s", c.role, c.cl, v, c.max)
		}
	}
	compliance := builtin(t, "compliance")
	for _, p := range []roles.Permission{roles.P(roles.Audit, roles.Read), roles.P(roles.Audit, roles.Export), roles.P(roles.Subjects, roles.Export), roles.P(roles.Records, roles.Export)} {
		if !compliance.Allows(p) {
			t.Errorf("compliance cannot %s", p)
		}
	}
	var mfa []string
	for _, r := range roles.Builtins() {
		if r.RequiresMFA() {
			mfa = append(mfa, r.Name())
		}
	}
	if want := []string{"owner", "compliance", "operator"}; !slices.Equal(mfa, want) {
		t.Errorf("roles requiring MFA: %v, want %v", mfa, want)
	}
}

// changes are the permissions that change tenant data or access.
func changes() []roles.Permission {
	var ps []roles.Permission
	for _, p := range roles.Permissions() {
		if p.Action != roles.Read && p.Action != roles.Export {
			ps = append(ps, p)
		}
	}
	return ps
}

func TestInvariants(t *testing.T) {
	operator := builtin(t, "operator")
	for _, r := range roles.Builtins() {
		// Every role reads something.
		reads := false
		for _, p := range r.Permissions().List() {
			reads = reads || p.Action == roles.Read
		}
		if !reads {
			t.Errorf("%s reads nothing", r.Name())
		}
		// Only the Operator is cluster-wide, and tenant roles hold none of
		// its permissions.
		if r.ClusterWide() != (r.Name() == "operator") {
			t.Errorf("%s: ClusterWide() = %v", r.Name(), r.ClusterWide())
		}
		for _, p := range []roles.Permission{roles.P(roles.Cluster, roles.Read), roles.P(roles.Tenants, roles.Create), roles.P(roles.BreakGlass, roles.Create), roles.P(roles.Keys, roles.Update)} {
			if r.Name() != "operator" && r.Allows(p) {
				t.Errorf("tenant role %s holds the operator's %s", r.Name(), p)
			}
		}
		// Only the Owner changes who has access.
		for _, p := range []roles.Permission{
			roles.P(roles.Users, roles.Create), roles.P(roles.Users, roles.Update), roles.P(roles.Users, roles.Delete),
			roles.P(roles.Roles, roles.Create), roles.P(roles.Roles, roles.Update), roles.P(roles.Roles, roles.Delete),
			roles.P(roles.APIKeys, roles.Create), roles.P(roles.BreakGlass, roles.Update),
		} {
			if r.Allows(p) != (r.Name() == "owner") {
				t.Errorf("%s: Allows(%s) = %v; only the owner changes access", r.Name(), p, r.Allows(p))
			}
		}
		// A role exporting anything requires MFA.
		for _, p := range r.Permissions().List() {
			if p.Action == roles.Export && !r.RequiresMFA() {
				t.Errorf("%s exports (%s) without MFA", r.Name(), p)
			}
		}
		// Blob bytes only for roles that read pii in clear.
		if r.ReadsBlobContent() && r.Visibility(roles.PII) != roles.Clear {
			t.Errorf("%s downloads blobs without reading pii in clear", r.Name())
		}
		// Unknown classifications are not seen.
		if v := r.Visibility("secret"); v != roles.None {
			t.Errorf("%s reads an unknown classification %s", r.Name(), v)
		}
	}
	// The Operator never reads a tenant's data.
	for _, p := range []roles.Permission{roles.P(roles.Records, roles.Read), roles.P(roles.Blobs, roles.Read), roles.P(roles.Subjects, roles.Read),
		roles.P(roles.Records, roles.Export), roles.P(roles.Blobs, roles.Export), roles.P(roles.Subjects, roles.Export), roles.P(roles.Users, roles.Read)} {
		if operator.Allows(p) {
			t.Errorf("operator holds %s", p)
		}
	}
	if operator.ReadsBlobContent() {
		t.Error("operator reads blob content")
	}
	// Read-only and Compliance change nothing; Compliance no record. The
	// one exception is Compliance's handling of data-subject requests
	// (a request is the record of the process it runs, not the tenant's
	// data).
	for _, name := range []string{"read-only", "compliance", "qa", "coach", "marketing"} {
		r := builtin(t, name)
		for _, p := range changes() {
			if name == "compliance" && (p.Resource == roles.Requests || p == roles.P(roles.Consent, roles.Update)) {
				continue // requests, and purposes: policy, not data
			}
			if r.Allows(p) {
				t.Errorf("%s may %s", name, p)
			}
		}
	}
}

// The viewer / admin / owner model: Read-only ⊆ Manager ⊆ Owner in
// permissions and in what each reads; the viewer reads everything there
// is to read (masked), the admin manages data but not access, the owner
// everything.
func TestViewerAdminOwner(t *testing.T) {
	viewer, admin, owner := builtin(t, "read-only"), builtin(t, "manager"), builtin(t, "owner")
	chain := []roles.Role{viewer, admin, owner}
	for i := 1; i < len(chain); i++ {
		lo, hi := chain[i-1], chain[i]
		if extra := lo.Permissions().Without(hi.Permissions()); extra != 0 {
			t.Errorf("%s holds %v that %s does not", lo.Name(), extra.List(), hi.Name())
		}
		for _, c := range roles.Classifications() {
			if order(lo.Visibility(c)) > order(hi.Visibility(c)) {
				t.Errorf("%s reads %s more than %s", lo.Name(), c, hi.Name())
			}
		}
	}
	for _, p := range roles.Permissions() {
		// Requests are not the viewer's: a request names its subject and
		// holds identity evidence in clear (table.go).
		if p.Action == roles.Read && p.Resource != roles.Cluster && p.Resource != roles.Requests && !viewer.Allows(p) {
			t.Errorf("the viewer cannot %s", p)
		}
	}
	for _, p := range []roles.Permission{roles.P(roles.Records, roles.Create), roles.P(roles.Collections, roles.Update), roles.P(roles.Blobs, roles.Delete)} {
		if !admin.Allows(p) {
			t.Errorf("the admin cannot %s", p)
		}
	}
	for _, p := range roles.Permissions() {
		if !owner.Allows(p) && !builtin(t, "operator").Allows(p) {
			t.Errorf("nobody holds %s", p)
		}
	}
}

func order(v roles.Visibility) int {
	return slices.Index([]roles.Visibility{roles.None, roles.Masked, roles.Clear}, v)
}

func TestPermissionText(t *testing.T) {
	for _, p := range roles.Permissions() {
		q, err := roles.ParsePermission(p.String())
		if err != nil || q != p {
			t.Errorf("ParsePermission(%q) = %v, %v", p, q, err)
		}
		b, err := json.Marshal(p)
		if err != nil || string(b) != `"`+p.String()+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v", p, b, err)
		}
	}
	for _, s := range []string{"", "records", "records:", ":read", "records:READ", "Records:read", "cluster:create", "records:read ", "records:read:x"} {
		if _, err := roles.ParsePermission(s); !errors.Is(err, roles.ErrUnknownPermission) {
			t.Errorf("ParsePermission(%q): %v, want ErrUnknownPermission", s, err)
		}
	}
	if _, err := json.Marshal(roles.P(roles.Cluster, roles.Create)); err == nil {
		t.Error("marshalled a permission that does not exist")
	}
	var p roles.Permission
	if err := json.Unmarshal([]byte(`"audit:export"`), &p); err != nil || p != roles.P(roles.Audit, roles.Export) {
		t.Errorf("unmarshal: %v, %v", p, err)
	}
	if roles.SetOf().List() != nil || roles.SetOf().Has(roles.P(roles.Records, roles.Read)) {
		t.Error("the empty set is not empty")
	}
	// The zero Role allows nothing and sees nothing.
	var zero roles.Role
	for _, p := range roles.Permissions() {
		if roles.Allows(zero, p.Resource, p.Action) {
			t.Errorf("the zero role allows %s", p)
		}
	}
	for _, c := range roles.Classifications() {
		if zero.Visibility(c) != roles.None {
			t.Errorf("the zero role reads %s", c)
		}
	}
}
