package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseMapping: a --map flag either is refused or splits into a
// claim without '=', a non-empty value and role, and scopes whose names
// and values are non-empty; the value is everything between the first
// '=' and the last " -> ", so it may itself hold "=" or "->".
func FuzzParseMapping(f *testing.F) {
	for _, s := range []string{"groups=custos-owners -> owner", "email_domain=example.org -> read-only",
		"groups=villa-a -> concierge property=villa-a,villa-b tier=gold", "roles=a=b -> qa", "groups=x -> y -> owner",
		"=x -> owner", "groups= -> owner", "groups=x ->", "groups=x -> owner property=", " -> ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMapping(s)
		if err != nil {
			return
		}
		if m.Claim == "" || strings.Contains(m.Claim, "=") || m.Value == "" || m.Role == "" || strings.ContainsAny(m.Role, " \t\n") {
			t.Fatalf("parseMapping(%q) = %+v", s, m)
		}
		for name, vals := range m.Scopes {
			if name == "" || strings.ContainsAny(name, "= \t\n") || len(vals) == 0 {
				t.Fatalf("parseMapping(%q) scopes %v", s, m.Scopes)
			}
			for _, v := range vals {
				if strings.ContainsAny(v, ", \t\n") {
					t.Fatalf("parseMapping(%q) scope value %q", s, v)
				}
			}
		}
	})
}

// The kept credentials: written 0600 in a 0700 directory, read back, and
// refused (not used) once readable by others.
func TestCredentialsFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	var stderr bytes.Buffer
	e := &env{stderr: &stderr, environ: []string{"CUSTOS_CONFIG_DIR=" + dir}}
	c := credentials{Address: "http://127.0.0.1:8200", Tenant: "acme", Method: "oidc", AccessToken: "a", RefreshToken: "r"}
	path, err := saveCredentials(e, c)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want mode %v", p, fi.Mode(), err, want)
		}
	}
	got, ok, err := loadCredentials(e)
	if err != nil || !ok || got != c {
		t.Fatalf("load: %+v %v %v", got, ok, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := loadCredentials(e); ok || err == nil {
		t.Fatalf("a file readable by others: %v %v", ok, err)
	}
}
