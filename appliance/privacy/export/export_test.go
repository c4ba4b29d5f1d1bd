package export

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"filippo.io/age"
	"github.com/apache/arrow-go/v18/arrow/memory"
	apq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/receipt"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/sealtest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// clock is a test's clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func (c *clock) tick()               { c.add(time.Second) }

// owner is the tenant's Owner (an API key bound to the role): it holds
// subjects:export and reads blob content.
var owner = audit.Principal{Kind: audit.ActorAPIKey, ID: "k-owner", Tenant: "acme", Role: "owner"}

type env struct {
	cluster *storetest.Cluster
	store   *raftstore.Store // the node the services run on: a follower
	b       *tenancy.Boundary
	keys    *keyring.Hierarchy
	colls   *collections.Service
	recs    *records.Service
	blobs   *blobs.Service
	consent *consent.Service
	aud     *audit.Service
	reqs    *requests.Service
	svc     *Service
	vkey    string
	clock   *clock
}

// newEnv is tenant acme on a 3-node cluster, the services on a follower.
func newEnv(t testing.TB) *env {
	t.Helper()
	c := storetest.NewCluster(t, 3)
	leader := c.Leader(t)
	var store *raftstore.Store
	for _, n := range c.Nodes {
		if n != leader {
			store = n
			break
		}
	}
	seal := sealtest.Bootstrap(t, store, "custos-audit-test")
	id, vkey := seal.Identity, seal.VerifierKey
	e := &env{cluster: c, store: store, vkey: vkey, clock: &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}}
	e.b = tenancy.New(store)
	e.keys = seal.Hierarchy(e.b)
	ten := tenants.New(e.b, storetest.Region, tenants.WithKeys(e.keys))
	if _, err := ten.Create(context.Background(), audit.Principal{Kind: audit.ActorOperator, ID: "operator"}, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	e.colls = collections.New(e.b, e.clock.now)
	e.recs = records.New(e.b, e.keys, e.colls, e.clock.now)
	e.blobs = blobs.New(e.b, e.keys, e.recs, blobs.Config{}, e.clock.now)
	e.consent = consent.New(e.b, e.keys, e.clock.now)
	e.aud = audit.New(store, []age.Identity{id}, e.clock.now)
	e.reqs = requests.New(e.b, e.keys, requests.WithClock(e.clock.now))
	e.svc = New(e.b, e.keys, Sources{Records: e.recs, Collections: e.colls, Blobs: e.blobs, Consent: e.consent, Audit: e.aud, Requests: e.reqs},
		Config{SpoolDir: t.TempDir()}, e.clock.now)
	return e
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// seeded is what seed stored: the subject's values the export must hold,
// and the others' canaries it must not.
type seeded struct {
	records map[string][]string // collection -> the subject's record ids
	values  []string            // every string value of the subject's data
	blobs   map[string][]byte   // the subject's blobs by id
	canary  string              // in every other subject's value
	request string              // the subject's access request, verified
}

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// seed defines guests, stays and calls (stays and calls refer to a guest
// and a stay by id: plain string fields), and stores for guest-1 one
// guest, two stays, three calls, two blobs and consent history, and the
// same for guest-2 and guest-3, whose every value holds the canary, and
// records of no subject.
func (e *env) seed(t testing.TB) seeded {
	t.Helper()
	c := ctx(t)
	defs := map[string][]collections.Field{
		"guests": {{Name: "name", Type: "string", Classification: "pii", Index: true}, {Name: "email", Type: "string", Classification: "pii"},
			{Name: "vip", Type: "bool", Classification: "internal"}, {Name: "score", Type: "number", Classification: "internal"}},
		"stays": {{Name: "guest", Type: "string", Classification: "internal"}, {Name: "room", Type: "string", Classification: "internal"},
			{Name: "nights", Type: "number", Classification: "internal"}, {Name: "prefs", Type: "json", Classification: "sensitive"}},
		"calls": {{Name: "stay", Type: "string", Classification: "internal"}, {Name: "transcript", Type: "string", Classification: "sensitive"},
			{Name: "at", Type: "time", Classification: "internal"}},
	}
	for _, name := range []string{"guests", "stays", "calls"} {
		if _, _, err := e.colls.Put(c, owner, "acme", name, collections.Definition{Fields: defs[name]}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []consent.PurposeInput{
		{ID: "call-recording", Description: "Record calls", Basis: "consent"},
		{ID: "analytics", Description: "Product analytics", Basis: "consent"},
	} {
		if _, err := e.consent.CreatePurpose(c, owner, "acme", p); err != nil {
			t.Fatal(err)
		}
	}
	s := seeded{records: map[string][]string{}, blobs: map[string][]byte{}, canary: "CANARY-OTHER"}
	put := func(subject, col, id string, fields map[string]json.RawMessage) {
		t.Helper()
		e.clock.tick()
		if _, err := e.recs.Create(c, owner, "acme", col, records.Input{ID: id, Subject: subject, Fields: fields}); err != nil {
			t.Fatalf("create %s/%s: %v", col, id, err)
		}
	}
	for _, subj := range []string{"guest-1", "guest-2", "guest-3"} {
		mark := "MINE-" + subj
		mine := subj == "guest-1"
		if !mine {
			mark = s.canary + "-" + subj
		}
		g := "g-" + subj
		put(subj, "guests", g, map[string]json.RawMessage{"name": raw(mark + "-name"), "email": raw(mark + "@example.com"), "vip": raw(true), "score": raw(4.5)})
		ids := map[string][]string{"guests": {g}}
		for i := 1; i <= 2; i++ {
			st := fmt.Sprintf("s-%s-%d", subj, i)
			put(subj, "stays", st, map[string]json.RawMessage{"guest": raw(g), "room": raw(fmt.Sprintf("%s-room-%d", mark, i)), "nights": raw(i),
				"prefs": raw(map[string]string{"pillow": mark + "-pillow"})})
			ids["stays"] = append(ids["stays"], st)
		}
		for i := 1; i <= 3; i++ {
			cl := fmt.Sprintf("c-%s-%d", subj, i)
			put(subj, "calls", cl, map[string]json.RawMessage{"stay": raw(ids["stays"][i%2]), "transcript": raw(fmt.Sprintf("%s-said-%d", mark, i)),
				"at": raw("2026-11-0" + fmt.Sprint(i) + "T10:00:00Z")})
			ids["calls"] = append(ids["calls"], cl)
		}
		for i, ct := range []string{"audio/wav", "application/pdf"} {
			data := bytes.Repeat([]byte(fmt.Sprintf("%s-blob-%d|", mark, i)), 9000) // more than one chunk
			e.clock.tick()
			b, err := e.blobs.Put(c, owner, "acme", blobs.Input{Subject: subj, ContentType: ct, Length: int64(len(data))}, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if mine {
				s.blobs[b.ID] = data
			}
		}
		e.clock.tick()
		if _, err := e.consent.Grant(c, owner, "acme", consent.Input{Subject: subj, Purposes: []string{"call-recording", "analytics"}, Source: "ivr",
			Evidence: consent.Evidence{Text: mark + "-said-yes"}}); err != nil {
			t.Fatal(err)
		}
		e.clock.tick()
		if _, err := e.consent.Withdraw(c, owner, "acme", consent.Input{Subject: subj, Purposes: []string{"analytics"}, Source: "web",
			Evidence: consent.Evidence{Text: mark + "-said-no"}}); err != nil {
			t.Fatal(err)
		}
		e.clock.tick()
		r, err := e.reqs.Create(c, owner, "acme", requests.Input{Kind: requests.Access, Subject: subj})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.reqs.Transition(c, owner, "acme", r.ID, requests.TransitionInput{To: requests.Verified,
			Evidence: &requests.Evidence{Method: "document", Text: mark + "-passport"}}); err != nil {
			t.Fatal(err)
		}
		if mine {
			s.request = r.ID
			s.records = ids
			s.values = []string{mark + "-name", mark + "@example.com", mark + "-room-1", mark + "-room-2", mark + "-pillow",
				mark + "-said-1", mark + "-said-2", mark + "-said-3", mark + "-said-yes", mark + "-said-no", mark + "-passport"}
		}
	}
	put("", "guests", "g-nobody", map[string]json.RawMessage{"name": raw(s.canary + "-nobody")})
	return s
}

// unpack reads an archive into its files (the manifest included).
func unpack(t testing.TB, pkg Packaging, b []byte) fstest.MapFS {
	t.Helper()
	files := fstest.MapFS{}
	if pkg == PackageZip {
		zfs, err := receipt.ZipFS(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.WalkDir(zfs, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(zfs, p)
			files[p] = &fstest.MapFile{Data: data, Mode: 0o644}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return files
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := files[h.Name]; dup {
			t.Fatalf("%s twice in the tar", h.Name)
		}
		files[h.Name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return files
}

// download stores and downloads the subject's export.
func (e *env) download(t testing.TB, subject string, opt Options) (Export, []byte) {
	t.Helper()
	c := ctx(t)
	x, err := e.svc.Subject(c, owner, "acme", subject, "dsr-42", opt)
	if err != nil {
		t.Fatalf("export %+v: %v", opt, err)
	}
	got, r, err := e.svc.Download(c, owner, "acme", x.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != x.ID || int64(len(b)) != x.Size {
		t.Fatalf("downloaded %d bytes of %s, want %d of %s", len(b), got.ID, x.Size, x.ID)
	}
	return x, b
}

// TestSubjectExportComplete: in every format and packaging, the export
// holds every item of guest-1 and no byte of anyone else's, its manifest
// verifies, and any change to the files fails the verification.
func TestSubjectExportComplete(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t)
	for _, f := range []Format{FormatJSON, FormatCSV, FormatParquet} {
		for _, pkg := range []Packaging{PackageZip, PackageGzip} {
			t.Run(string(f)+"/"+string(pkg), func(t *testing.T) {
				x, archive := e.download(t, "guest-1", Options{Format: f, Packaging: pkg})
				files := unpack(t, pkg, archive)
				m, err := receipt.VerifyExport([]byte(e.vkey), files)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if m.Tenant != "acme" || m.Request != "dsr-42" || !strings.HasPrefix(m.Subject, "subject:h:") || string(files[receipt.ManifestName].Data) != x.Manifest {
					t.Fatalf("manifest %+v", m)
				}
				checkNoCanary(t, files, s.canary)
				checkHolds(t, f, files, s)
				checkTamper(t, e.vkey, files)
			})
		}
	}
}

// checkNoCanary: no file holds any byte sequence of the other subjects.
func checkNoCanary(t *testing.T, files fstest.MapFS, canary string) {
	t.Helper()
	for p, f := range files {
		if bytes.Contains(f.Data, []byte(canary)) || bytes.Contains(f.Data, []byte("guest-2")) || bytes.Contains(f.Data, []byte("guest-3")) ||
			bytes.Contains(f.Data, []byte("nobody")) {
			t.Errorf("%s holds another subject's data", p)
		}
	}
}

// checkHolds: every record (with its values), blob, consent event,
// request and audit entry about the subject is in the files.
func checkHolds(t *testing.T, f Format, files fstest.MapFS, s seeded) {
	t.Helper()
	var all bytes.Buffer
	for col, ids := range s.records {
		p := "records/" + col + extension(f)
		file, ok := files[p]
		if !ok {
			t.Fatalf("no %s", p)
		}
		rows := readRows(t, f, file.Data)
		if len(rows) != len(ids) {
			t.Fatalf("%s: %d rows, want %d", p, len(rows), len(ids))
		}
		for i, id := range ids {
			if rows[i]["_id"] != id {
				t.Errorf("%s row %d: id %q, want %q", p, i, rows[i]["_id"], id)
			}
			if rows[i]["_subject"] != "guest-1" {
				t.Errorf("%s row %d: subject %q", p, i, rows[i]["_subject"])
			}
			for k, v := range rows[i] {
				all.WriteString(k + "=" + v + "\n")
			}
		}
		if col == "guests" && !strings.HasPrefix(rows[0]["score"], "4.5") || col == "guests" && rows[0]["vip"] != "true" {
			t.Errorf("%s: typed values %q %q", p, rows[0]["score"], rows[0]["vip"])
		}
	}
	for _, name := range []string{"consent.json", "requests.json", "audit.json"} {
		if _, ok := files[name]; !ok {
			t.Fatalf("no %s", name)
		}
		all.Write(files[name].Data)
	}
	for _, v := range s.values {
		if !strings.Contains(all.String(), v) {
			t.Errorf("the export lacks %q", v)
		}
	}
	var events []consent.Event
	if err := json.Unmarshal(files["consent.json"].Data, &events); err != nil || len(events) != 2 {
		t.Errorf("consent.json: %d events, %v", len(events), err)
	}
	var entries []struct{ Entry audit.Entry }
	if err := json.Unmarshal(files["audit.json"].Data, &entries); err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, en := range entries {
		actions[en.Entry.Action] = true
	}
	for _, a := range []string{"consent.grant", "consent.withdraw", "blob.list"} {
		if !actions[a] {
			t.Errorf("audit.json lacks a %s entry (has %v)", a, actions)
		}
	}
	var metas []struct {
		ID   string `json:"id"`
		File string `json:"file"`
	}
	if err := json.Unmarshal(files["blobs.json"].Data, &metas); err != nil || len(metas) != len(s.blobs) {
		t.Fatalf("blobs.json: %d blobs, %v", len(metas), err)
	}
	for _, m := range metas {
		want, ok := s.blobs[m.ID]
		if !ok || files[m.File] == nil || !bytes.Equal(files[m.File].Data, want) {
			t.Errorf("blob %s: file %s does not hold its bytes", m.ID, m.File)
		}
	}
}

// readRows reads a record file as rows of column -> text.
func readRows(t *testing.T, f Format, data []byte) []map[string]string {
	t.Helper()
	var out []map[string]string
	switch f {
	case FormatJSON:
		var recs []jsonRecord
		if err := json.Unmarshal(data, &recs); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			row := map[string]string{"_id": r.ID, "_subject": r.Subject}
			for k, v := range r.Fields {
				row[k] = text(v)
			}
			out = append(out, row)
		}
	case FormatCSV:
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows[1:] {
			row := map[string]string{}
			for i, h := range rows[0] {
				row[h] = r[i]
			}
			out = append(out, row)
		}
	case FormatParquet:
		out = readParquet(t, data)
	}
	return out
}

// readParquet reads a Parquet file with Apache Arrow's reader — not the
// writer's library.
func readParquet(t *testing.T, data []byte) []map[string]string {
	t.Helper()
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), apq.NewReaderProperties(memory.DefaultAllocator),
		pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("arrow reads the parquet file: %v", err)
	}
	defer tbl.Release()
	out := make([]map[string]string, tbl.NumRows())
	for i := range out {
		out[i] = map[string]string{}
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		col := tbl.Column(c)
		row := 0
		for _, chunk := range col.Data().Chunks() {
			for i := 0; i < chunk.Len(); i++ {
				if !chunk.IsNull(i) {
					out[row][col.Name()] = chunk.ValueStr(i)
				}
				row++
			}
		}
	}
	return out
}

// checkTamper: a flipped byte, a removed file and an added file each fail
// the verification.
func checkTamper(t *testing.T, vkey string, files fstest.MapFS) {
	t.Helper()
	for p := range files {
		if p == receipt.ManifestName {
			continue
		}
		flipped := clone(files)
		d := bytes.Clone(flipped[p].Data)
		d[len(d)/2] ^= 1
		flipped[p] = &fstest.MapFile{Data: d}
		if _, err := receipt.VerifyExport([]byte(vkey), flipped); !errors.Is(err, receipt.ErrFileMismatch) {
			t.Errorf("%s with a byte flipped: %v", p, err)
		}
		removed := clone(files)
		delete(removed, p)
		if _, err := receipt.VerifyExport([]byte(vkey), removed); !errors.Is(err, receipt.ErrFileMissing) {
			t.Errorf("without %s: %v", p, err)
		}
	}
	added := clone(files)
	added["records/extra.json"] = &fstest.MapFile{Data: []byte("[]\n")}
	if _, err := receipt.VerifyExport([]byte(vkey), added); !errors.Is(err, receipt.ErrFileUnlisted) {
		t.Errorf("with a file added: %v", err)
	}
}

func clone(m fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range m {
		out[k] = &fstest.MapFile{Data: bytes.Clone(v.Data), Mode: v.Mode}
	}
	return out
}
