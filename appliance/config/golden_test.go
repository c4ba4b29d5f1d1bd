package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// render loads a configuration file and returns what Dump prints, or the
// error, as the golden files record it.
func render(t testing.TB, path string) (out []byte, ok bool) {
	t.Helper()
	c, err := Load(Options{File: path})
	if err != nil {
		return []byte("error: " + err.Error() + "\n"), false
	}
	var b bytes.Buffer
	if err := Dump(&b, c); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return b.Bytes(), true
}

// TestGolden loads each testdata/*.toml and compares the Dump output (or
// the error) with testdata/*.golden. Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".toml")
		t.Run(name, func(t *testing.T) {
			got, ok := render(t, in)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			if !ok {
				return
			}
			// The dump is itself a configuration file that loads to the
			// same configuration.
			again, ok := render(t, writeTemp(t, got))
			if !ok || !bytes.Equal(again, got) {
				t.Errorf("dump does not load back to itself; got:\n%s", again)
			}
		})
	}
}

func TestDumpRedactsSecrets(t *testing.T) {
	got, ok := render(t, "testdata/secrets.toml")
	if !ok {
		t.Fatalf("load: %s", got)
	}
	if bytes.Contains(got, []byte("s3cr3t")) {
		t.Errorf("Dump shows a secret:\n%s", got)
	}
	for _, key := range []string{`dev_token = "[redacted]"`, `join_token = "[redacted]"`} {
		if !bytes.Contains(got, []byte(key)) {
			t.Errorf("Dump lacks %s:\n%s", key, got)
		}
	}
}

// writeTemp writes content to a file in a fresh temporary directory and
// returns its path.
func writeTemp(t testing.TB, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custos.toml")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FuzzLoad feeds arbitrary file content to Load. Nothing may panic, and a
// configuration that loads must dump to a file that loads to the same dump.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.toml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// One file per worker process, rewritten for each input: a fresh
	// t.TempDir per input would dominate the cost of an execution.
	path := filepath.Join(f.TempDir(), "custos.toml")
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(Options{File: path})
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load returned a config that does not validate: %v", err)
		}
		var dump bytes.Buffer
		if err := Dump(&dump, c); err != nil {
			t.Fatalf("Dump: %v", err)
		}
		if err := os.WriteFile(path, dump.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		again, ok := render(t, path)
		if !ok || !bytes.Equal(again, dump.Bytes()) {
			t.Fatalf("dump does not load back to itself\nfirst:\n%s\nthen:\n%s", dump.Bytes(), again)
		}
	})
}
