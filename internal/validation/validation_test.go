package validation

import (
	"errors"
	"fmt"
	"testing"
)

// A FieldError, however deeply wrapped, is found with errors.As and is
// ErrInvalid, and its text names the field and the reason.
func TestFieldError(t *testing.T) {
	err := fmt.Errorf("records: create: %w", Field("fields.email", "is required"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "fields.email" || fe.Reason != "is required" {
		t.Fatalf("errors.As(%v) = %+v", err, fe)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("%v is not ErrInvalid", err)
	}
	if got, want := fe.Error(), "fields.email: is required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestPageLimit(t *testing.T) {
	for _, c := range []struct {
		in, def, want int
		ok            bool
	}{
		{0, 50, 50, true},
		{1, 50, 1, true},
		{MaxPage, 50, MaxPage, true},
		{MaxPage + 1, 50, 0, false},
		{-1, 50, 0, false},
	} {
		got, err := PageLimit(c.in, c.def)
		var fe *FieldError
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("PageLimit(%d, %d) = %d, %v; want %d", c.in, c.def, got, err, c.want)
		}
		if !c.ok && (!errors.As(err, &fe) || fe.Field != "limit" || !errors.Is(err, ErrInvalid)) {
			t.Errorf("PageLimit(%d, %d): want a FieldError naming limit, got %v", c.in, c.def, err)
		}
	}
}

func TestAttributesAndScopes(t *testing.T) {
	long := string(make([]byte, MaxAttributeValue+1))
	for _, c := range []struct {
		attrs map[string]string
		ok    bool
	}{
		{nil, true}, {map[string]string{"property": "villa-a", "floor": ""}, true},
		{map[string]string{"Property": "x"}, false}, {map[string]string{"1x": "x"}, false},
		{map[string]string{"p": long}, false}, {map[string]string{"p": "\xff"}, false},
	} {
		if err := Attributes(c.attrs); (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("Attributes(%q): %v", c.attrs, err)
		}
	}
	for _, c := range []struct {
		scopes map[string][]string
		ok     bool
	}{
		{nil, true}, {map[string][]string{"property": {"villa-a", "villa-b"}}, true},
		{map[string][]string{"property": nil}, false}, {map[string][]string{"property": {""}}, false},
		{map[string][]string{"property": {"a", "a"}}, false}, {map[string][]string{"Property": {"a"}}, false},
		{map[string][]string{"p": {long}}, false},
	} {
		if err := Scopes("scopes", c.scopes); (err == nil) != c.ok {
			t.Errorf("Scopes(%q): %v", c.scopes, err)
		}
	}
	if !Name("a_1") || Name("") || Name("_a") || Name(string(make([]byte, 64))) {
		t.Error("Name")
	}
}
