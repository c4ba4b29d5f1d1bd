//go:build ignore

// gen_common writes common_passwords.txt, the list Policy refuses, from
// the password frequency list that the zxcvbn password-strength estimator
// ships (data/passwords.txt of the Go module github.com/trustelem/zxcvbn
// v1.0.1, MIT licence; the list itself is zxcvbn's: the 47,023 most
// frequent passwords of Xato's corpus of ten million leaked passwords).
//
// It takes the first column of each line, folds it as Policy does (NFC,
// then lower case), drops entries that are not valid UTF-8, hold a space
// or a control character, or are longer than MaxLength, then writes the
// set sorted, one a line. Run it with `go generate` in this directory;
// it reaches the module through `go mod download`, so the module is not a
// dependency of the build.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const source = "github.com/trustelem/zxcvbn@v1.0.1"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen_common:", err)
		os.Exit(1)
	}
}

func run() error {
	out, err := exec.Command("go", "mod", "download", "-json", source).Output()
	if err != nil {
		return fmt.Errorf("download %s: %w", source, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("download %s: no directory in %q", source, out)
	}
	data, err := os.ReadFile(filepath.Join(mod.Dir, "data", "passwords.txt"))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		w := fields[0]
		if !utf8.ValidString(w) || strings.IndexFunc(w, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			continue
		}
		w = strings.ToLower(norm.NFC.String(w))
		if utf8.RuneCountInString(w) > 128 {
			continue
		}
		seen[w] = true
	}
	if err := sc.Err(); err != nil {
		return err
	}
	words := make([]string, 0, len(seen))
	for w := range seen {
		words = append(words, w)
	}
	slices.Sort(words)
	return os.WriteFile("common_passwords.txt", []byte(strings.Join(words, "\n")+"\n"), 0o644)
}
