package collections

import (
	"errors"
	"testing"

	"github.com/custos/custos/internal/validation"
)

func TestRefFields(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       Field
		field   string // the failing field; "" valid
		onErase string // after validation
	}{
		{"default detach", Field{Name: "g", Type: TypeRef, Collection: "guests", Classification: ClassInternal}, "", OnEraseDetach},
		{"erase", Field{Name: "g", Type: TypeRef, Collection: "guests", OnErase: "erase", Required: true, Classification: ClassInternal}, "", OnEraseErase},
		{"no collection", Field{Name: "g", Type: TypeRef, Classification: ClassInternal}, "fields[0].collection", ""},
		{"bad collection", Field{Name: "g", Type: TypeRef, Collection: "Guests!", Classification: ClassInternal}, "fields[0].collection", ""},
		{"bad on_erase", Field{Name: "g", Type: TypeRef, Collection: "guests", OnErase: "cascade", Classification: ClassInternal}, "fields[0].on_erase", ""},
		{"required detach", Field{Name: "g", Type: TypeRef, Collection: "guests", Required: true, Classification: ClassInternal}, "fields[0].on_erase", ""},
		{"collection on a string", Field{Name: "g", Type: TypeString, Collection: "guests", Classification: ClassInternal}, "fields[0].collection", ""},
		{"values on a ref", Field{Name: "g", Type: TypeRef, Collection: "guests", Values: []string{"a"}, Classification: ClassInternal}, "fields[0].values", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Definition{Fields: []Field{tc.f}}
			err := validate(&d)
			var fe *validation.FieldError
			switch {
			case tc.field == "" && err != nil:
				t.Fatal(err)
			case tc.field == "" && d.Fields[0].OnErase != tc.onErase:
				t.Fatalf("on_erase %q, want %q", d.Fields[0].OnErase, tc.onErase)
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
				t.Fatalf("%v, want an error of %s", err, tc.field)
			}
		})
	}
	prev := &Schema{Fields: []Field{{Name: "g", Type: TypeRef, Collection: "guests", OnErase: OnEraseDetach, Classification: ClassInternal}}}
	next := &Definition{Fields: []Field{{Name: "g", Type: TypeRef, Collection: "hosts", OnErase: OnEraseDetach, Classification: ClassInternal}}}
	if err := compatible(prev, next); err == nil {
		t.Fatal("a ref's collection changed")
	}
}
