package roles_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/internal/validation"
)

const nightDesk = `{"name":"night-desk","title":"Night desk","permissions":["records:read","records:update","collections:read"],` +
	`"visibility":{"pii":"clear","sensitive":"masked","internal":"clear"}}`

func TestCustomRole(t *testing.T) {
	r, err := roles.ParseCustom([]byte(nightDesk))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "night-desk" || r.Title() != "Night desk" || r.IsBuiltin() || r.ClusterWide() || r.RequiresMFA() {
		t.Errorf("role = %s %q builtin=%v cluster=%v mfa=%v", r.Name(), r.Title(), r.IsBuiltin(), r.ClusterWide(), r.RequiresMFA())
	}
	if !r.Allows(roles.P(roles.Records, roles.Update)) || r.Allows(roles.P(roles.Records, roles.Delete)) {
		t.Errorf("permissions = %v", r.Permissions().List())
	}
	if r.Visibility(roles.Sensitive) != roles.Masked || r.Visibility(roles.PII) != roles.Clear {
		t.Error("visibility not as declared")
	}
	// The JSON form round-trips.
	b, err := json.Marshal(r.Custom())
	if err != nil {
		t.Fatal(err)
	}
	again, err := roles.ParseCustom(b)
	if err != nil || again != r {
		t.Errorf("round trip of %s: %v, %v", b, again, err)
	}
	// A role holding a privileged permission requires MFA, whatever it
	// says.
	c := r.Custom()
	c.Permissions = append(c.Permissions, "records:export")
	if exp, err := c.Role(); err != nil || !exp.RequiresMFA() {
		t.Errorf("a custom exporting role: MFA %v, %v", exp.RequiresMFA(), err)
	}
	c = r.Custom()
	c.MFA = true
	if m, err := c.Role(); err != nil || !m.RequiresMFA() {
		t.Errorf("mfa: true not honoured: %v", err)
	}
}

// A built-in role's JSON form, renamed, makes an equivalent custom role
// — except the Operator's, whose permissions no tenant may hold.
func TestBuiltinsAsCustom(t *testing.T) {
	for _, b := range roles.Builtins() {
		c := b.Custom()
		c.Name = "copy-of-" + b.Name()
		r, err := c.Role()
		if b.ClusterWide() {
			var fe *validation.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "permissions[") {
				t.Errorf("a copy of the operator: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("a copy of %s: %v", b.Name(), err)
			continue
		}
		if r.Permissions() != b.Permissions() || r.RequiresMFA() != b.RequiresMFA() {
			t.Errorf("a copy of %s differs", b.Name())
		}
		for _, cl := range roles.Classifications() {
			if r.Visibility(cl) != b.Visibility(cl) {
				t.Errorf("a copy of %s reads %s differently", b.Name(), cl)
			}
		}
	}
}

func TestCustomValidation(t *testing.T) {
	vis := `"visibility":{"pii":"masked","sensitive":"none","internal":"clear"}`
	for _, c := range []struct {
		name, json, field string
	}{
		{"name missing", `{"permissions":["records:read"],` + vis + `}`, "name"},
		{"name upper case", `{"name":"Night","permissions":["records:read"],` + vis + `}`, "name"},
		{"name one letter", `{"name":"n","permissions":["records:read"],` + vis + `}`, "name"},
		{"name starts with digit", `{"name":"1desk","permissions":["records:read"],` + vis + `}`, "name"},
		{"name too long", `{"name":"` + strings.Repeat("a", 41) + `","permissions":["records:read"],` + vis + `}`, "name"},
		{"name with space", `{"name":"night desk","permissions":["records:read"],` + vis + `}`, "name"},
		{"name of a built-in role", `{"name":"owner","permissions":["records:read"],` + vis + `}`, "name"},
		{"name of the operator", `{"name":"operator","permissions":["records:read"],` + vis + `}`, "name"},
		{"title too long", `{"name":"desk","title":"` + strings.Repeat("t", 101) + `","permissions":["records:read"],` + vis + `}`, "title"},
		{"title padded", `{"name":"desk","title":" Desk","permissions":["records:read"],` + vis + `}`, "title"},
		{"no permissions", `{"name":"desk","permissions":[],` + vis + `}`, "permissions"},
		{"permissions missing", `{"name":"desk",` + vis + `}`, "permissions"},
		{"unknown permission", `{"name":"desk","permissions":["records:read","records:burn"],` + vis + `}`, "permissions[1]"},
		{"pair that is no permission", `{"name":"desk","permissions":["cluster:create"],` + vis + `}`, "permissions[0]"},
		{"operator's permission", `{"name":"desk","permissions":["records:read","cluster:read"],` + vis + `}`, "permissions[1]"},
		{"operator's break-glass request", `{"name":"desk","permissions":["breakglass:create"],` + vis + `}`, "permissions[0]"},
		{"operator's tenant suspension", `{"name":"desk","permissions":["tenants:update"],` + vis + `}`, "permissions[0]"},
		{"repeated permission", `{"name":"desk","permissions":["records:read","records:read"],` + vis + `}`, "permissions[1]"},
		{"visibility missing", `{"name":"desk","permissions":["records:read"]}`, "visibility.pii"},
		{"a classification missing", `{"name":"desk","permissions":["records:read"],"visibility":{"pii":"masked","internal":"clear"}}`, "visibility.sensitive"},
		{"unknown visibility", `{"name":"desk","permissions":["records:read"],"visibility":{"pii":"partial","sensitive":"none","internal":"clear"}}`, "visibility.pii"},
		{"upper-case visibility", `{"name":"desk","permissions":["records:read"],"visibility":{"pii":"Clear","sensitive":"none","internal":"clear"}}`, "visibility.pii"},
		{"unknown classification", `{"name":"desk","permissions":["records:read"],"visibility":{"pii":"masked","sensitive":"none","internal":"clear","secret":"clear"}}`, "visibility"},
		{"unknown field", `{"name":"desk","permissions":["records:read"],` + vis + `,"cluster":true}`, "role"},
		{"not an object", `["desk"]`, "role"},
		{"trailing data", `{"name":"desk","permissions":["records:read"],` + vis + `} {}`, "role"},
		{"trailing bracket", `{"name":"desk","permissions":["records:read"],` + vis + `}]`, "role"},
		{"empty", ``, "role"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := roles.ParseCustom([]byte(c.json))
			var fe *validation.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, validation.ErrInvalid) {
				t.Fatalf("ParseCustom: %v; want a FieldError on %s", err, c.field)
			}
		})
	}
}

// FuzzParseCustom: any input either fails with a FieldError or gives a
// role that holds only tenant permissions, reads only what it declared,
// and round-trips through its JSON form.
func FuzzParseCustom(f *testing.F) {
	f.Add([]byte(nightDesk))
	f.Add([]byte(`{"name":"x1","permissions":["users:create"],"visibility":{"pii":"none","sensitive":"none","internal":"none"},"mfa":true}`))
	f.Add([]byte(`{"name":"owner"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := roles.ParseCustom(data)
		if err != nil {
			var fe *validation.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		if r.ClusterWide() || r.IsBuiltin() {
			t.Fatal("a custom role is cluster-wide or built in")
		}
		operator, _ := roles.Builtin("operator")
		owner, _ := roles.Builtin("owner")
		for _, p := range r.Permissions().List() {
			if !owner.Allows(p) {
				t.Fatalf("custom role holds %s, which is the operator's (%v)", p, operator.Allows(p))
			}
		}
		b, err := json.Marshal(r.Custom())
		if err != nil {
			t.Fatal(err)
		}
		if again, err := roles.ParseCustom(b); err != nil || again != r {
			t.Fatalf("round trip: %v", err)
		}
	})
}
