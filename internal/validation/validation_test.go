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
