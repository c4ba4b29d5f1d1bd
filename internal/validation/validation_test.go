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
