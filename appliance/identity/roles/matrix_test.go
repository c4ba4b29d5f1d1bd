package roles_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/custos/custos/appliance/identity/roles"
)

var update = flag.Bool("update", false, "rewrite testdata/matrix.golden from the table")

// matrix renders every role × permission, visibility and MFA as text.
func matrix() []byte {
	var buf bytes.Buffer
	fmt.Fprintln(&buf, "# The permission table (appliance/identity/roles/table.go): x allowed, . denied.")
	fmt.Fprintln(&buf, "# Regenerate: go test ./appliance/identity/roles -run TestMatrixGolden -update")
	w := tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	rs := roles.Builtins()
	row := func(head string, cell func(roles.Role) string) {
		cells := []string{head}
		for _, r := range rs {
			cells = append(cells, cell(r))
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	row("", func(r roles.Role) string { return r.Name() })
	for _, p := range roles.Permissions() {
		row(p.String(), func(r roles.Role) string {
			if r.Allows(p) {
				return "x"
			}
			return "."
		})
	}
	for _, c := range roles.Classifications() {
		row("visibility:"+string(c), func(r roles.Role) string { return string(r.Visibility(c)) })
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	row("blob-content", func(r roles.Role) string { return yes(r.ReadsBlobContent()) })
	row("mfa", func(r roles.Role) string { return yes(r.RequiresMFA()) })
	row("cluster-wide", func(r roles.Role) string { return yes(r.ClusterWide()) })
	w.Flush()
	return buf.Bytes()
}

// TestMatrixGolden pins the whole table: a change to it changes
// testdata/matrix.golden, which a reviewer reads.
func TestMatrixGolden(t *testing.T) {
	path := filepath.Join("testdata", "matrix.golden")
	got := matrix()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(g), len(w)) {
			if i >= len(g) || i >= len(w) || g[i] != w[i] {
				t.Errorf("the permission table differs from %s at line %d (run with -update and review the diff):\n got: %s\nwant: %s",
					path, i+1, at(g, i), at(w, i))
				return
			}
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(end of file)"
}
