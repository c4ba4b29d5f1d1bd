package keyring

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

func TestAgeRootSealUnwrap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.age")
	rcpt, err := NewSealIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seal identity mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	if _, err := NewSealIdentity(path); err == nil {
		t.Fatal("overwrote an existing seal identity")
	}
	ids, err := LoadSealIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	root, sealed, err := NewAgeRoot("acme", rcpt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("AGE-SECRET-KEY")) {
		t.Fatal("sealed root holds the identity in the clear")
	}
	kek := mustKey(t, 4)
	wrapped, err := root.WrapKEK(context.Background(), "acme", kek)
	if err != nil {
		t.Fatal(err)
	}
	// Another node: unseal with the seal identity, then unwrap.
	again, err := OpenAgeRoot("acme", sealed, ids...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := again.UnwrapKEK(context.Background(), "acme", wrapped)
	if err != nil || got.raw != kek.raw || got.Version() != 4 {
		t.Fatalf("unwrap: %v", err)
	}
	// A node without the seal identity stays sealed.
	stranger, _ := age.GenerateX25519Identity()
	if _, err := OpenAgeRoot("acme", sealed, stranger); !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("opened with a foreign identity: %v", err)
	}
	// A sealed root or wrapped KEK moved to another tenant does not open.
	if _, err := OpenAgeRoot("globex", sealed, ids...); !errors.Is(err, ErrOpen) {
		t.Fatalf("root opened for another tenant: %v", err)
	}
	if _, err := again.UnwrapKEK(context.Background(), "globex", wrapped); !errors.Is(err, ErrOpen) {
		t.Fatalf("KEK unwrapped for another tenant: %v", err)
	}
	other, _, _ := NewAgeRoot("acme", rcpt)
	if _, err := other.UnwrapKEK(context.Background(), "acme", wrapped); !errors.Is(err, ErrOpen) {
		t.Fatalf("another tenant root unwrapped the KEK: %v", err)
	}
}

func BenchmarkAgeUnwrapKEK(b *testing.B) {
	rcpt, _ := age.GenerateX25519Identity()
	root, _, _ := NewAgeRoot("acme", rcpt.Recipient())
	w, _ := root.WrapKEK(context.Background(), "acme", mustKey(b, 1))
	for b.Loop() {
		if _, err := root.UnwrapKEK(context.Background(), "acme", w); err != nil {
			b.Fatal(err)
		}
	}
}
