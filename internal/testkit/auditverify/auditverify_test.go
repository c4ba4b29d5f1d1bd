package auditverify

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// vectorKey is the verifier key of the golden vectors, as
// docs/audit-format.md §8 prints it.
const vectorKey = "custos-audit-test-vectors+6339bc4a+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs\n"

// The golden vectors (appliance/audit/testdata/vectors.golden, a fixture
// of the reference implementation) check out with this verifier: each
// entry parsed and re-encoded by §2.1 gives its bytes, and the leaf
// hashes, links, roots and the checkpoint are as §3 and §4 compute them,
// with the key the document prints.
func TestGoldenVectors(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "..", "appliance", "audit", "testdata", "vectors.golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := NewVerifier(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	tree := NewTree()
	var link [32]byte
	var last []byte // the latest entry's bytes
	var checkpoint strings.Builder
	inCheckpoint := false
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if inCheckpoint {
			checkpoint.WriteString(line + "\n")
			continue
		}
		if line == "checkpoint:" {
			inCheckpoint = true
			continue
		}
		label, value, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("line %q", line)
		}
		kind, num, _ := strings.Cut(label, " ")
		i, _ := strconv.Atoi(num)
		switch kind {
		case "entry":
			n++
			if i != n {
				t.Fatalf("entry %d out of order", i)
			}
			var e Entry
			if err := json.Unmarshal([]byte(value), &e); err != nil {
				t.Fatal(err)
			}
			enc, err := Encode(e)
			if err != nil || string(enc) != value {
				t.Fatalf("entry %d re-encodes to %s (%v), want %s", i, enc, err, value)
			}
			if _, err := Decode(enc); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			last = enc
			leaf := Leaf(enc)
			if err := tree.Add(leaf); err != nil {
				t.Fatal(err)
			}
			link = Link(link, leaf)
		case "leaf":
			if got := Leaf(last).String(); got != value {
				t.Fatalf("leaf %d: %s, want %s", i, got, value)
			}
		case "link":
			if got := hex.EncodeToString(link[:]); got != value {
				t.Fatalf("link %d: %s, want %s", i, got, value)
			}
		case "root":
			root, err := tree.Root(int64(i))
			if err != nil || root.String() != value {
				t.Fatalf("root %d: %v %v, want %s", i, root, err, value)
			}
		default:
			t.Fatalf("line %q", line)
		}
	}
	if n != 5 {
		t.Fatalf("%d entries", n)
	}
	c, err := v.OpenCheckpoint([]byte(checkpoint.String()))
	if err != nil {
		t.Fatalf("checkpoint: %v\n%s", err, checkpoint.String())
	}
	root, _ := tree.Root(5)
	if c.Origin != v.Origin("system") || c.Size != 5 || c.Root != root || c.Link != link {
		t.Fatalf("checkpoint %+v", c)
	}
}

// §3's stored hash numbering, as the document writes it, is tlog's.
func TestStoredHashIndexIsTlogs(t *testing.T) {
	for level := 0; level < 8; level++ {
		for n := int64(0); n < 300; n++ {
			if got, want := StoredHashIndex(level, n), tlog.StoredHashIndex(level, n); got != want {
				t.Fatalf("StoredHashIndex(%d, %d) = %d, tlog says %d", level, n, got, want)
			}
		}
	}
	for n := int64(0); n < 1000; n++ {
		if got, want := StoredHashCount(n), tlog.StoredHashCount(n); got != want {
			t.Fatalf("StoredHashCount(%d) = %d, tlog says %d", n, got, want)
		}
	}
}

// The verifier is written against the specification only: it imports
// nothing of the module.
func TestImportsNothingOfTheProject(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(path, "github.com/custos/") {
				t.Errorf("%s imports %s: the independent verifier may use only the standard library, tlog and note", name, path)
			}
		}
	}
}
