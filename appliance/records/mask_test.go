package records

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/visibility"
)

func TestMaskJSON(t *testing.T) {
	for _, tc := range []struct{ typ, in, want string }{
		{collections.TypeString, `"jane@example.com"`, `"j***@e******.c**"`},
		{collections.TypeString, `"Jane Doe"`, `"J*** D**"`},
		{collections.TypeString, `"+41 79 555 01 23"`, `"*** ** *** ** **"`},
		{collections.TypeString, `"A7"`, `"A*"`},
		{collections.TypeTime, `"2026-12-03T15:00:00Z"`, `"********************"`},
		{collections.TypeNumber, `1250.5`, `"****.*"`},
		{collections.TypeNumber, `-3e7`, `"-*e*"`},
		{collections.TypeEnum, `"vegan"`, `"*"`},
		{collections.TypeBool, `true`, `"*"`},
		{collections.TypeJSON, `{"a":"b"}`, `"*"`},
		{"", `"orphan value"`, `"o***** v****"`},
		{"", `not json`, `"*"`},
	} {
		got := maskJSON(tc.typ, []byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("maskJSON(%s, %s) = %s, want %s", tc.typ, tc.in, got, tc.want)
		}
		var s string
		if json.Unmarshal(got, &s) != nil {
			t.Errorf("maskJSON(%s, %s) = %s: not a JSON string", tc.typ, tc.in, got)
		}
	}
}

// shown follows the sight per classification; a field the schema no
// longer names reads as pii; withheld lists the schema's fields of
// classifications not read, valued or not.
func TestShown(t *testing.T) {
	sc := &collections.Schema{Fields: []collections.Field{
		{Name: "email", Type: collections.TypeString, Classification: collections.ClassPII},
		{Name: "diet", Type: collections.TypeEnum, Classification: collections.ClassSensitive},
		{Name: "allergy", Type: collections.TypeString, Classification: collections.ClassSensitive},
		{Name: "room", Type: collections.TypeString, Classification: collections.ClassInternal},
	}}
	rec := Record{ID: "g1", Fields: map[string]json.RawMessage{
		"email": json.RawMessage(`"jane@example.com"`), "diet": json.RawMessage(`"vegan"`),
		"room": json.RawMessage(`"A-12"`), "dropped": json.RawMessage(`"Jane"`),
	}}
	marketing, _ := roles.Builtin("marketing")
	got := shown(rec, sc, visibility.FromRole(marketing))
	want := map[string]string{"email": `"j***@e******.c**"`, "room": `"A-12"`, "dropped": `"J***"`}
	if len(got.Fields) != len(want) {
		t.Errorf("marketing reads %v", got.Fields)
	}
	for k, v := range want {
		if string(got.Fields[k]) != v {
			t.Errorf("marketing reads %s as %s, want %s", k, got.Fields[k], v)
		}
	}
	if !slices.Equal(got.Masked, []string{"dropped", "email"}) || !slices.Equal(got.Withheld, []string{"allergy", "diet"}) {
		t.Errorf("masked %v withheld %v", got.Masked, got.Withheld)
	}
	if string(rec.Fields["email"]) != `"jane@example.com"` {
		t.Error("shown changed its input")
	}
	owner, _ := roles.Builtin("owner")
	if got := shown(rec, sc, visibility.FromRole(owner)); len(got.Fields) != 4 || got.Masked != nil || got.Withheld != nil {
		t.Errorf("owner reads %+v", got)
	}
	if got := shown(rec, sc, visibility.Sight{}); len(got.Fields) != 0 || len(got.Withheld) != 4 {
		t.Errorf("the zero sight reads %+v", got)
	}
}
