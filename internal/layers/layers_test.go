package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/custos/custos/"

// rank places each production package in a layer; a package may import
// only packages of a strictly lower rank. Within the domain layer the
// ranks order the services by what they build on (blobs on records,
// records on collections, everything on the registry).
var rank = map[string]int{
	"raftstore":           0,
	"internal/validation": 0,
	"internal/firstbyte":  0,

	"internal/tenancy": 1,

	// The API's TLS: standard library only, below config, which
	// validates with its parsers.
	"appliance/apitls": 1,

	"keyring":          2,
	"appliance/audit":  2,
	"appliance/config": 2,

	"appliance/ratelimit": 2,
	"appliance/logging":   2,
	"appliance/sweep":     2,
	"appliance/notify":    2,

	"appliance/privacy/deadline": 2,

	"appliance/identity/password": 2,
	"appliance/identity/roles":    2,
	"appliance/identity/token":    2,
	"appliance/identity/totp":     2,

	"appliance/tenants":             3,
	"appliance/identity/visibility": 3,
	"appliance/cluster":             3,
	"appliance/identity/signing":    3,
	"appliance/identity/sso":        3,
	"appliance/identity/breakglass": 3,
	"appliance/privacy/consent":     4,
	"appliance/privacy/receipt":     3,
	"appliance/apikeys":             4,
	"appliance/privacy/requests":    4,
	"appliance/identity/accounts":   4,
	"appliance/collections":         4,
	"appliance/records":             5,

	"appliance/blobs":           6,
	"appliance/privacy/erasure": 6,

	// Retention erases records (and, on withdrawal, what a purpose
	// covers) through the services that own them.
	"appliance/privacy/retention": 7,

	// backup dumps the state and reads the erasure ledgers of a
	// restored one.
	"appliance/backup": 7,

	// export reads records, blobs, consent and audit.
	"appliance/privacy/export": 7,

	// The client defines the API's wire types (the problem body among
	// them), which the API encodes: it sits just below the API.
	"appliance/client": 6,
	"appliance/api":    8,
	// Metrics read the services' counters and the API reports to them
	// through an interface of its own: neither imports the other.
	"appliance/metrics": 8,

	// The web UI is an adapter on top of the API: it reads the API's
	// route table and calls the API in process through the client.
	"ui": 9,

	"appliance/node": 10,

	"cmd/custos": 11,
}

// testSupport are imported only by tests (and by each other).
var testSupport = map[string]bool{
	"internal/testkit":             true,
	"internal/testkit/storetest":   true,
	"internal/testkit/auditverify": true,
	"internal/testkit/e2e":         true,
	"internal/testkit/oidcop":      true,
	"internal/testkit/sealtest":    true,
	"internal/testkit/uitest":      true,
	"internal/testkit/browser":     true,
	"internal/apispec":             true,
	"internal/tenancy/tenancytest": true,
	"keyring/vaulttest":            true,
	"internal/layers":              true,
	// Tests of what ships beside the binary: the systemd unit and the
	// packages.
	"systemd":   true,
	"packaging": true,
}

type pkg struct {
	ImportPath string
	Imports    []string
}

func modulePackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// violations lists what breaks the layering in pkgs.
func violations(pkgs []pkg) []string {
	var bad []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.ImportPath] = true
		r, placed := rank[p.ImportPath]
		if !placed && !testSupport[p.ImportPath] {
			bad = append(bad, p.ImportPath+" is not placed in a layer (add it to docs/architecture.md and this test's table)")
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			switch {
			case testSupport[dep] && !testSupport[p.ImportPath]:
				bad = append(bad, p.ImportPath+" imports test support "+dep)
			case testSupport[p.ImportPath]:
				// Test support may use anything it is a harness for.
			case rank[dep] >= r:
				bad = append(bad, p.ImportPath+" imports "+dep+", which is not below it")
			}
		}
	}
	for p := range rank {
		if !seen[p] {
			bad = append(bad, p+" is in the table but not in the module")
		}
	}
	sort.Strings(bad)
	return bad
}

func TestDependenciesPointDown(t *testing.T) {
	for _, v := range violations(modulePackages(t)) {
		t.Error(v)
	}
}

// TestTheCheckCatchesViolations shows the check is not blind: each case
// plants one violation in an otherwise valid graph.
func TestTheCheckCatchesViolations(t *testing.T) {
	valid := func() []pkg {
		var ps []pkg
		for p := range rank {
			ps = append(ps, pkg{ImportPath: p})
		}
		return ps
	}
	with := func(importer, imported string) []pkg {
		ps := valid()
		for i := range ps {
			if ps[i].ImportPath == importer {
				ps[i].Imports = append(ps[i].Imports, module+imported)
			}
		}
		return ps
	}
	if v := violations(valid()); len(v) != 0 {
		t.Fatalf("the valid graph has violations: %v", v)
	}
	if v := violations(with("appliance/api", "raftstore")); len(v) != 0 {
		t.Fatalf("a downward import is a violation: %v", v)
	}
	cases := []struct {
		name string
		pkgs []pkg
		want string
	}{
		{"keyring imports the appliance", with("keyring", "appliance/audit"), "keyring imports appliance/audit"},
		{"raftstore imports the boundary", with("raftstore", "internal/tenancy"), "raftstore imports internal/tenancy"},
		{"a service imports the API", with("appliance/records", "appliance/api"), "appliance/records imports appliance/api"},
		{"records imports blobs", with("appliance/records", "appliance/blobs"), "appliance/records imports appliance/blobs"},
		{"production imports test support", with("appliance/node", "internal/testkit"), "imports test support"},
		{"an unplaced package", append(valid(), pkg{ImportPath: "appliance/ui"}), "appliance/ui is not placed"},
		{"a stale table entry", func() []pkg {
			var ps []pkg
			for _, p := range valid() {
				if p.ImportPath != "appliance/blobs" {
					ps = append(ps, p)
				}
			}
			return ps
		}(), "appliance/blobs is in the table but not in the module"},
	}
	for _, c := range cases {
		v := violations(c.pkgs)
		if len(v) != 1 || !strings.Contains(v[0], c.want) {
			t.Errorf("%s: got %v, want one violation containing %q", c.name, v, c.want)
		}
	}
}
