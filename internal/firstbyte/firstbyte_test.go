package firstbyte_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/custos/custos/internal/firstbyte"
)

// An error before the first byte is Start's; after it, the reader's and
// Pump's; a producer that writes nothing and succeeds is an empty body.
func TestStart(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name    string
		produce func(io.Writer) error
		early   error
		body    string
		late    error
	}{
		{"fails at once", func(io.Writer) error { return boom }, boom, "", nil},
		{"empty", func(io.Writer) error { return nil }, nil, "", nil},
		{"whole", func(w io.Writer) error { _, err := io.WriteString(w, "abc"); return err }, nil, "abc", nil},
		{"cut short", func(w io.Writer) error { _, _ = io.WriteString(w, "ab"); return boom }, nil, "ab", boom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := firstbyte.Start(c.produce)
			if !errors.Is(err, c.early) || (err != nil) != (c.early != nil) {
				t.Fatalf("Start: %v, want %v", err, c.early)
			}
			if err != nil {
				return
			}
			defer r.Close()
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := firstbyte.Pump(w, r); !errors.Is(err, c.late) || (err != nil) != (c.late != nil) {
				t.Fatalf("Pump: %v, want %v", err, c.late)
			}
			if out.String() != c.body {
				t.Fatalf("body %q, want %q", out.String(), c.body)
			}
		})
	}
}
