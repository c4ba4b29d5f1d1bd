package export

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/privacy/receipt"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// TestExportRange: a range keeps what existed or happened in it and says
// so in the manifest.
func TestExportRange(t *testing.T) {
	e := newEnv(t)
	start := e.clock.now()
	s := e.seed(t)
	// guest-1's records were created in the first seconds of the seeding
	// (one second apart): the range of the guest and the first stay.
	from, to := start.Add(time.Second), start.Add(2*time.Second)
	x, b := e.download(t, "guest-1", Options{From: from, To: to})
	files := unpack(t, PackageZip, b)
	m, err := receipt.VerifyExport([]byte(e.vkey), files)
	if err != nil {
		t.Fatal(err)
	}
	if !m.From.Equal(from) || !m.To.Equal(to) || x.From == nil || !x.From.Equal(from) {
		t.Fatalf("range %v..%v, export %v", m.From, m.To, x.From)
	}
	guests := readRows(t, FormatJSON, files["records/guests.json"].Data)
	stays := readRows(t, FormatJSON, files["records/stays.json"].Data)
	if len(guests) != 1 || len(stays) != 1 || stays[0]["_id"] != s.records["stays"][0] {
		t.Fatalf("in range: %v %v", guests, stays)
	}
	if _, ok := files["records/calls.json"]; ok {
		t.Fatal("calls, created after the range, are in the export")
	}
	bad := &Options{From: to, To: from}
	if err := bad.normalize(); !errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("a range that ends before it starts: %v", err)
	}
}

// TestBadOptions: unknown formats and packagings are field errors, and
// nothing is stored.
func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Format: "xml"}, {Packaging: "rar"}, {Format: "JSON"}} {
		if err := o.normalize(); !errors.Is(err, validation.ErrInvalid) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// TestTenantExport: every collection's records of every subject (and of
// none) and every blob, under a manifest naming the tenant.
func TestTenantExport(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t)
	c := ctx(t)
	x, err := e.svc.Tenant(c, owner, "acme", "", Options{Format: FormatCSV, Packaging: PackageGzip})
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := e.svc.Download(c, owner, "acme", x.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	files := unpack(t, PackageGzip, b)
	m, err := receipt.VerifyExport([]byte(e.vkey), files)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Subject, "tenant:h:") || m.Request != x.ID || x.Kind != KindTenant {
		t.Fatalf("manifest %+v", m)
	}
	guests := readRows(t, FormatCSV, files["records/guests.csv"].Data)
	if len(guests) != 4 || x.Counts["records"] != 3*6+1 || x.Counts["blobs"] != 6 {
		t.Fatalf("%d guests, counts %v", len(guests), x.Counts)
	}
	if !strings.Contains(string(files["records/guests.csv"].Data), s.canary+"-nobody") {
		t.Fatal("the record without a subject is missing")
	}
	if _, ok := files["consent.json"]; ok {
		t.Fatal("a tenant export holds subject files")
	}
}

// TestScopedRefused: a principal with attribute scopes cannot export.
func TestScopedRefused(t *testing.T) {
	e := newEnv(t)
	e.seed(t)
	scoped := owner
	scoped.Scopes = map[string][]string{"property": {"villa-a"}}
	if _, err := e.svc.Subject(ctx(t), scoped, "acme", "guest-1", "dsr-1", Options{}); !errors.Is(err, ErrScoped) {
		t.Fatalf("scoped export: %v", err)
	}
}

// TestExpiry: an export is listed and downloadable until its TTL, then
// gone; the sweeper removes its metadata and chunks and shreds its key,
// audited; every export and download is an entry in the tenant's chain.
func TestExpiry(t *testing.T) {
	e := newEnv(t)
	e.seed(t)
	c := ctx(t)
	x, _ := e.download(t, "guest-1", Options{})
	if !x.ExpiresAt.Equal(x.CreatedAt.Add(DefaultTTL)) {
		t.Fatalf("expires %v, created %v", x.ExpiresAt, x.CreatedAt)
	}
	list, err := e.svc.List(c, owner, "acme")
	if err != nil || len(list) != 1 || list[0].ID != x.ID {
		t.Fatalf("list: %v %v", list, err)
	}
	if n, err := e.svc.Sweep(c, []string{"acme"}); err != nil || n != 0 {
		t.Fatalf("early sweep: %d %v", n, err)
	}
	e.clock.add(DefaultTTL)
	if _, err := e.svc.Get(c, owner, "acme", x.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired get: %v", err)
	}
	if _, _, err := e.svc.Download(c, owner, "acme", x.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired download: %v", err)
	}
	if list, _ := e.svc.List(c, owner, "acme"); len(list) != 0 {
		t.Fatalf("expired listed: %v", list)
	}
	if n, err := e.svc.Sweep(c, []string{"acme"}); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	left := 0
	if err := e.b.Scope("acme").View(c, raftstore.Linearizable, func(r tenancy.Read) error {
		left = r.Count(metaPath) + r.Count(pendingPath) + r.Count(chunksPath(x.ID))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d rows left after the sweep", left)
	}
	items, _, err := e.aud.List(c, raftstore.Linearizable, tenancy.ChainOf("acme"), audit.Filter{}, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, it := range items {
		if strings.HasPrefix(it.Entry.Action, "export.") || it.Entry.Action == "subject.export" || it.Entry.Action == "key.shred" {
			actions = append(actions, it.Entry.Action)
		}
	}
	for _, want := range []string{"subject.export", "export.download", "export.expire", "key.shred"} {
		if !slices.Contains(actions, want) {
			t.Errorf("no %s entry in the chain (%v)", want, actions)
		}
	}
}

// TestForRequest: an export for a verified access request takes it up,
// exports its subject and completes it with the export's id; a request
// of another kind, or not verified, is refused and nothing is stored.
func TestForRequest(t *testing.T) {
	e := newEnv(t)
	s := e.seed(t)
	c := ctx(t)
	x, err := e.svc.ForRequest(c, owner, "acme", s.request, Options{Format: FormatParquet})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.reqs.Get(c, owner, "acme", s.request)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != requests.Completed || r.Result == nil || r.Result.Export != x.ID || x.Request != s.request || x.Counts["records"] != 6 {
		t.Fatalf("request %+v after export %+v", r, x)
	}
	if _, err := e.svc.ForRequest(c, owner, "acme", s.request, Options{}); err == nil {
		t.Fatal("a completed request exported again")
	}
	er, err := e.reqs.Create(c, owner, "acme", requests.Input{Kind: requests.Erasure, Subject: "guest-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ForRequest(c, owner, "acme", er.ID, Options{}); err == nil {
		t.Fatal("an erasure request exported")
	}
	if list, _ := e.svc.List(c, owner, "acme"); len(list) != 1 {
		t.Fatalf("%d exports stored", len(list))
	}
}

// TestLargeExport: an archive of more than one chunk transaction (a
// 2.5 MiB incompressible recording) is stored through its build marker
// and reads back byte for byte; none of the marker is left.
func TestLargeExport(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	data := make([]byte, 5<<19)
	_, _ = rand.NewChaCha8([32]byte{9}).Read(data)
	if _, err := e.blobs.Put(c, owner, "acme", blobs.Input{Subject: "guest-9", ContentType: "audio/wav", Length: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	x, b := e.download(t, "guest-9", Options{Packaging: PackageGzip})
	if x.Size < 2<<20 {
		t.Fatalf("archive of %d bytes", x.Size)
	}
	files := unpack(t, PackageGzip, b)
	if _, err := receipt.VerifyExport([]byte(e.vkey), files); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range files {
		found = found || bytes.Equal(f.Data, data)
	}
	if !found {
		t.Fatal("the recording is not in the export")
	}
	if err := e.b.Scope("acme").View(c, raftstore.Linearizable, func(r tenancy.Read) error {
		if n := r.Count(pendingPath); n != 0 {
			t.Errorf("%d build markers left", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
