package requests_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/internal/validation"
)

// FuzzParse: the parsers of kinds, statuses and list filters accept
// exactly their names, spelled exactly, and refuse anything else with a
// field error naming the field.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"access", "opt-out", "in_progress", "open", "due-soon", "Access", "", "overdue ", "ERASURE", "completed\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := requests.ParseKind("kind", s)
		check(t, "kind", s, string(k), err, slices.Contains(requests.Kinds(), requests.Kind(s)))
		st, err := requests.ParseStatus("status", s)
		check(t, "status", s, string(st), err, slices.Contains(requests.Statuses(), requests.Status(s)))
		fs, err := requests.ParseFilterStatus("status", s)
		known := s == "" || s == requests.FilterOpen || s == requests.FilterOverdue || s == requests.FilterDueSoon || slices.Contains(requests.Statuses(), requests.Status(s))
		check(t, "status", s, fs, err, known)
	})
}

func check(t *testing.T, field, in, out string, err error, known bool) {
	t.Helper()
	var fe *validation.FieldError
	switch {
	case known && (err != nil || out != in):
		t.Errorf("%q: %q, %v", in, out, err)
	case !known && (!errors.As(err, &fe) || fe.Field != field || out != ""):
		t.Errorf("%q accepted as %q (%v)", in, out, err)
	}
}
