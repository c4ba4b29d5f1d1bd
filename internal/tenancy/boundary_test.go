package tenancy_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The boundary holds only if nothing goes around it. These tests read the
// module's sources (no type checking: the rules are about spelling and
// imports, which the parser sees) and fail when:
//
//   - a package other than this one spells a tenant's bucket or chain name:
//     a string literal, or a concatenation of literals, in a non-test file
//     that holds "tenant:" followed by anything but a space (an id, a
//     format verb, or the end of the literal, where an id is appended) —
//     "create tenant: %w" is prose, "tenant:%s" and "tenant:"+id are not;
//   - a package that is not storage infrastructure reaches the raw store:
//     names raftstore.Txn, raftstore.Append or raftstore.ReadTx in a
//     non-test file (domain code has only the boundary's Scope, so its
//     paths are necessarily relative to its own tenant);
//   - storage infrastructure builds a raw bucket path outside "sys";
//   - keyring, raftstore or this package imports the appliance, this
//     package imports anything but raftstore and the standard library, or
//     a non-test file imports tenancytest (which spells raw names, for
//     tests only);
//   - two packages declare the same component system bucket (SystemOf),
//     or one declares it with a name that is not a literal.

const module = "github.com/custos/custos"

// boundaryDirs may name tenants' buckets and chains: the boundary, and its
// test helper.
var boundaryDirs = []string{"internal/tenancy"}

// rawStoreDirs may reach the raw store (raftstore.Txn, Append, ReadTx):
// raftstore itself, the boundary, and the infrastructure that works on the
// cluster's own records and on chains as such — the audit service
// (checkpoints, proofs, exports, retention, the system chain) and the
// cluster service (the cluster record and token hashes below "sys", the
// genesis transaction), and the tests' sealtest, which writes what a
// node's first start writes below "sys" (the sealed audit key, the seal's
// recipients). A package added here must write only below "sys"
// (checked) and name chains only as given to it by the boundary.
var rawStoreDirs = []string{"raftstore", "internal/tenancy", "appliance/audit", "appliance/cluster", "internal/testkit/sealtest"}

// noApplianceDirs import nothing under appliance/.
var noApplianceDirs = []string{"keyring", "raftstore", "internal/tenancy"}

type source struct {
	rel  string // slash path relative to the module root
	dir  string // its directory, slash, relative
	test bool
	file *ast.File
}

func within(dir string, roots []string) bool {
	for _, r := range roots {
		if dir == r || strings.HasPrefix(dir, r+"/") {
			return true
		}
	}
	return false
}

// moduleSources parses every .go file of the module (other modules below
// it, testdata and hidden directories excluded).
func moduleSources(t *testing.T) []source {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.Contains(string(b), "module "+module+"\n") {
		t.Fatalf("module root %s: %v", root, err)
	}
	fset := token.NewFileSet()
	var out []source
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); path != root && err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		out = append(out, source{rel: rel, dir: filepath.ToSlash(filepath.Dir(rel)), test: strings.HasSuffix(rel, "_test.go"), file: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("only %d Go files under %s: the scan is blind", len(out), root)
	}
	return out
}

// literal is the value of a string literal, or of a + of string literals;
// ok is false for anything else.
func literal(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.ParenExpr:
		return literal(e.X)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		x, ok1 := literal(e.X)
		y, ok2 := literal(e.Y)
		return x + y, ok1 && ok2
	}
	return "", false
}

// namesTenant reports whether v holds "tenant:" not followed by a space.
func namesTenant(v string) bool {
	for i := 0; ; {
		j := strings.Index(v[i:], "tenant:")
		if j < 0 {
			return false
		}
		end := i + j + len("tenant:")
		if end == len(v) || v[end] != ' ' {
			return true
		}
		i = end
	}
}

// importName is the name f uses for package path ("" if not imported).
func importName(f *ast.File, path string) string {
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == path {
			if im.Name != nil {
				return im.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return ""
}

// check reports the boundary's violations in srcs.
func check(srcs []source) []string {
	var bad []string
	report := func(s source, format string, args ...any) {
		bad = append(bad, s.rel+": "+fmt.Sprintf(format, args...))
	}
	systems := map[string]string{} // component -> the dir declaring it
	for _, s := range srcs {
		for _, im := range s.file.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if within(s.dir, noApplianceDirs) && strings.HasPrefix(p, module+"/appliance") {
				report(s, "imports %s: it is below the appliance", p)
			}
			if !s.test && s.dir == "internal/tenancy" && strings.Contains(p, ".") && p != module+"/raftstore" {
				report(s, "the boundary imports %s: only raftstore and the standard library", p)
			}
			if !s.test && p == module+"/internal/tenancy/tenancytest" {
				report(s, "imports tenancytest outside a test")
			}
		}
		if s.test {
			continue
		}
		boundary := within(s.dir, boundaryDirs)
		raw := within(s.dir, rawStoreDirs)
		rs := importName(s.file, module+"/raftstore")
		tn := importName(s.file, module+"/internal/tenancy")
		ast.Inspect(s.file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr, *ast.BasicLit:
				if v, ok := literal(n.(ast.Expr)); ok {
					if !boundary && namesTenant(v) {
						report(s, "spells a tenant bucket or chain name (%q): only the tenancy boundary names them", v)
					}
					return false // its parts are reported with it
				}
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && rs != "" && x.Name == rs && !raw {
					switch n.Sel.Name {
					case "Txn", "Append", "ReadTx":
						report(s, "reaches the raw store (raftstore.%s): tenant storage is reached through the tenancy boundary", n.Sel.Name)
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				x, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case rs != "" && x.Name == rs && sel.Sel.Name == "Path" && raw && !boundary && s.dir != "raftstore":
					if len(n.Args) == 0 {
						break
					}
					if v, ok := literal(n.Args[0]); !ok || v != "sys" {
						report(s, "builds a raw bucket path outside \"sys\"")
					}
				case tn != "" && x.Name == tn && sel.Sel.Name == "SystemOf":
					v, ok := "", len(n.Args) == 1
					if ok {
						v, ok = literal(n.Args[0])
					}
					if !ok {
						report(s, "declares a system bucket whose name is not a literal")
						break
					}
					if d, dup := systems[v]; dup && d != s.dir {
						report(s, "declares system bucket %q, which %s declares", v, d)
					}
					systems[v] = s.dir
				}
			}
			return true
		})
	}
	sort.Strings(bad)
	return bad
}

// TestNothingGoesAroundTheBoundary checks the module as it is.
func TestNothingGoesAroundTheBoundary(t *testing.T) {
	srcs := moduleSources(t)
	for _, v := range check(srcs) {
		t.Error(v)
	}
	// The scan sees what it must: the packages it guards are there.
	seen := map[string]bool{}
	for _, s := range srcs {
		seen[s.dir] = true
	}
	for _, d := range []string{"keyring", "raftstore", "internal/tenancy", "appliance/records", "appliance/apikeys", "appliance/audit"} {
		if !seen[d] {
			t.Errorf("no sources of %s: the scan is blind", d)
		}
	}
}

// TestTheCheckCatchesViolations plants each kind of violation in a copy of
// a real file and sees the check report it: a check that reports nothing
// proves nothing.
func TestTheCheckCatchesViolations(t *testing.T) {
	all := moduleSources(t)
	for name, c := range map[string]struct {
		dir, src, want string
		test           bool
	}{
		"tenant literal": {"appliance/records", `package records
func p() string { return "tenant:" + "acme" }`, "spells a tenant bucket", false},
		"tenant literal split": {"keyring", `package keyring
const x = "ten" + ("ant" + ":")`, "spells a tenant bucket", false},
		"tenant format": {"appliance/node", `package node
import "fmt"
var x = fmt.Sprintf("error: tenant: %v; tenant:%s", 1, "acme")`, "spells a tenant bucket", false},
		"raw txn": {"appliance/apikeys", `package apikeys
import "github.com/custos/custos/raftstore"
var t raftstore.Txn`, "reaches the raw store", false},
		"raw read": {"keyring", `package keyring
import rs "github.com/custos/custos/raftstore"
func f(r *rs.ReadTx) {}`, "reaches the raw store", false},
		"infra path": {"appliance/audit", `package audit
import "github.com/custos/custos/raftstore"
var p = raftstore.Path("records", "x")`, "outside \"sys\"", false},
		"keyring imports appliance": {"keyring", `package keyring
import _ "github.com/custos/custos/appliance/audit"`, "below the appliance", false},
		"keyring test imports appliance": {"keyring", `package keyring_test
import _ "github.com/custos/custos/appliance/audit"`, "below the appliance", true},
		"raftstore imports appliance": {"raftstore", `package raftstore
import _ "github.com/custos/custos/appliance/tenants"`, "below the appliance", false},
		"boundary imports more": {"internal/tenancy", `package tenancy
import _ "github.com/custos/custos/keyring"`, "only raftstore", false},
		"tenancytest outside tests": {"appliance/blobs", `package blobs
import _ "github.com/custos/custos/internal/tenancy/tenancytest"`, "tenancytest outside a test", false},
		"system bucket twice": {"appliance/blobs", `package blobs
import "github.com/custos/custos/internal/tenancy"
var s = tenancy.SystemOf("keyring")`, "which keyring declares", false},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := parser.ParseFile(token.NewFileSet(), "planted.go", c.src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			planted := source{rel: c.dir + "/planted.go", dir: c.dir, test: c.test, file: f}
			srcs := append(all[:len(all):len(all)], planted)
			var got []string
			for _, v := range check(srcs) {
				if strings.HasPrefix(v, planted.rel+": ") {
					got = append(got, v)
				}
			}
			if len(got) != 1 || !strings.Contains(got[0], c.want) {
				t.Fatalf("planted %s: reported %q, want one report containing %q", name, got, c.want)
			}
		})
	}
}
