package blobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// custos is the principal the tests read and write as: Custos itself, which
// reads every tenant's data in clear (operators read none; see
// appliance/identity/visibility).
var custos = audit.System()

// noRecords: no record exists (uploads here link none).
type noRecords struct{}

func (noRecords) Attributes(context.Context, audit.Principal, string, string, string) (map[string]string, bool, error) {
	return nil, false, nil
}

type env struct {
	store *raftstore.Store
	b     *tenancy.Boundary
	keys  *keyring.Hierarchy
	clock time.Time
	svc   *Service
}

func newEnv(t *testing.T, tenantIDs ...string) *env {
	t.Helper()
	store := storetest.Start(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	b := tenancy.New(store)
	keys := keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, System: audit.System(), Pseudonym: audit.Pseudonym})
	ten := tenants.New(b, storetest.Region, tenants.WithKeys(keys))
	for _, tid := range tenantIDs {
		if _, err := ten.Create(context.Background(), audit.Principal{Kind: audit.ActorOperator, ID: "operator"}, tenants.CreateInput{ID: tid, DisplayName: tid}); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{store: store, b: b, keys: keys, clock: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	e.svc = New(b, keys, noRecords{}, Config{}, func() time.Time { return e.clock })
	return e
}

func data(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

func (e *env) put(t *testing.T, tenant, subject string, b []byte) Blob {
	t.Helper()
	bl, err := e.svc.Put(context.Background(), custos, tenant, Input{Subject: subject, ContentType: "audio/wav", Length: int64(len(b))}, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return bl
}

func (e *env) readAll(tenant, id string) ([]byte, error) {
	c, err := e.svc.Open(context.Background(), custos, tenant, id)
	if err != nil {
		return nil, err
	}
	r, err := c.Reader(context.Background(), custos, 0, c.Size, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (e *env) leftovers(t *testing.T, tenant string) (pendingN, chunkBuckets int) {
	t.Helper()
	if err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		pendingN = r.Count(tenancytest.Path(tenant, "blob_uploads"))
		chunkBuckets = r.BucketCount(tenancytest.Path(tenant, "blob_chunks"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return
}

// failingReader yields n good bytes, then an error (a client gone away).
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

// TestFailedUploadsLeaveNothing: a body that breaks off, ends early or
// grows past the limit, after several chunk transactions were stored,
// leaves no marker, no chunk and no blob.
func TestFailedUploadsLeaveNothing(t *testing.T) {
	e := newEnv(t, "acme")
	e.svc.cfg.MaxSize = 2 << 20
	big := data(1, 5<<20)
	cases := []struct {
		name string
		in   Input
		body io.Reader
		want error
	}{
		{"reader error", Input{ContentType: "audio/wav", Length: -1}, &failingReader{bytes.NewReader(big), 1500 << 10}, nil},
		{"short body", Input{ContentType: "audio/wav", Length: 2 << 20}, bytes.NewReader(big[:1<<20]), ErrTruncated},
		{"over the limit", Input{ContentType: "audio/wav", Length: -1}, bytes.NewReader(big), ErrTooLarge},
		{"announced over the limit", Input{ContentType: "audio/wav", Length: 5 << 20}, bytes.NewReader(big), ErrTooLarge},
		{"wrong digest", Input{ContentType: "audio/wav", Length: 1 << 20, SHA256: "00" + string(bytes.Repeat([]byte("ab"), 31))}, bytes.NewReader(big[:1<<20]), ErrDigest},
		{"type not accepted", Input{ContentType: "application/x-sh", Length: 10}, bytes.NewReader(big[:10]), ErrMediaType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.svc.Put(context.Background(), custos, "acme", c.in, c.body)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Put: %v, want %v", err, c.want)
			}
			if p, cb := e.leftovers(t, "acme"); p != 0 || cb != 0 {
				t.Fatalf("left behind: %d markers, %d chunk buckets", p, cb)
			}
		})
	}
	list, _, err := e.svc.List(context.Background(), custos, "acme", "", "", 0)
	if err != nil || len(list) != 0 {
		t.Fatalf("failed uploads listed: %v %v", list, err)
	}
}

// TestSweep: an upload whose node died (marker and chunks written, never
// finished) is deleted once its marker is older than StaleAfter, and not
// before; a finished blob is never touched.
func TestSweep(t *testing.T) {
	e := newEnv(t, "acme")
	kept := e.put(t, "acme", "g1", data(2, 100_000))
	now := e.clock
	if err := e.svc.apply(context.Background(), e.b.Scope("acme"), &tenancy.Txn{Ops: []raftstore.Op{
		e.svc.markerOp("bdead", "g1", now, now),
		{Kind: raftstore.OpPut, Bucket: chunksPath("bdead"), Key: chunkKey(0), Value: []byte("sealed bytes")},
	}}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.Sweep(context.Background(), []string{"acme", "nobody"}); err != nil || n != 0 {
		t.Fatalf("a fresh upload was swept: %d %v", n, err)
	}
	e.clock = now.Add(DefaultStaleAfter + time.Second)
	if n, err := e.svc.Sweep(context.Background(), []string{"acme"}); err != nil || n != 1 {
		t.Fatalf("stale upload: swept %d, %v", n, err)
	}
	if p, cb := e.leftovers(t, "acme"); p != 0 || cb != 1 {
		t.Fatalf("after the sweep: %d markers, %d chunk buckets (want 0 and the finished blob's 1)", p, cb)
	}
	if got, err := e.readAll("acme", kept.ID); err != nil || !bytes.Equal(got, data(2, 100_000)) {
		t.Fatalf("the finished blob after a sweep: %v", err)
	}
}

// TestMovedChunksAreIntegrityErrors: a chunk copied to another index, to
// another blob of the same tenant, or to a blob of another tenant does not
// open: ErrIntegrity, and nothing of it is returned.
func TestMovedChunksAreIntegrityErrors(t *testing.T) {
	e := newEnv(t, "acme", "globex")
	a := e.put(t, "acme", "g1", data(3, 200_000))
	a2 := e.put(t, "acme", "g1", data(4, 200_000))
	g := e.put(t, "globex", "g1", data(5, 200_000))
	chunk := func(tenant, id string, i uint64) []byte {
		var v []byte
		_ = e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
			raw, _, _ := r.Get(tenancytest.Path(tenant, "blob_chunks", id), chunkKey(i))
			v = bytes.Clone(raw)
			return nil
		})
		return v
	}
	overwrite := func(tenant, id string, i uint64, v []byte) {
		if err := e.svc.apply(context.Background(), e.b.Scope(tenant), &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: chunksPath(id), Key: chunkKey(i), Value: v}}}); err != nil {
			t.Fatal(err)
		}
	}
	overwrite("acme", a.ID, 1, chunk("acme", a.ID, 0))   // another index
	overwrite("acme", a2.ID, 0, chunk("acme", a.ID, 0))  // another blob
	overwrite("globex", g.ID, 2, chunk("acme", a.ID, 2)) // another tenant
	for _, c := range []struct{ tenant, id string }{{"acme", a.ID}, {"acme", a2.ID}, {"globex", g.ID}} {
		got, err := e.readAll(c.tenant, c.id)
		if !errors.Is(err, ErrIntegrity) {
			t.Errorf("%s/%s: %v, want ErrIntegrity", c.tenant, c.id, err)
		}
		if len(got) > 2*keyring.ChunkSize {
			t.Errorf("%s/%s: %d bytes served past the moved chunk", c.tenant, c.id, len(got))
		}
	}
	// Each failure is on record in its tenant's chain (the part, no data).
	for _, c := range []struct {
		tenant string
		want   int
	}{{"acme", 2}, {"globex", 1}} {
		if n := countActions(t, e.store, c.tenant, "blob.integrity_failure"); n != c.want {
			t.Errorf("%s: %d integrity failures on record, want %d", c.tenant, n, c.want)
		}
	}
	// The first chunk is checked before anything is served.
	c, err := e.svc.Open(context.Background(), custos, "acme", a2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reader(context.Background(), custos, 0, c.Size, nil); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("Open of a blob whose first chunk moved: %v", err)
	}
	// One tenant never sees another's blob by id.
	if _, err := e.svc.Open(context.Background(), custos, "globex", a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("globex stat of acme's blob: %v", err)
	}
}

// FuzzMediaType: MediaType never panics, and what it accepts it returns
// in a form it accepts again unchanged.
func FuzzMediaType(f *testing.F) {
	for _, s := range []string{"audio/wav", "audio/ogg; codecs=opus", "AUDIO/WAV", "image/png", "", "audio/", "a/b; x=\"y\"", "text/plain;charset=utf-8"} {
		f.Add(s)
	}
	s := New(nil, nil, nil, Config{}, nil)
	f.Fuzz(func(t *testing.T, ct string) {
		got, err := s.MediaType(ct)
		if err != nil {
			return
		}
		again, err := s.MediaType(got)
		if err != nil || again != got {
			t.Fatalf("%q -> %q -> %q, %v", ct, got, again, err)
		}
	})
}

// countActions counts the entries of tenant's chain with action.
func countActions(t *testing.T, store *raftstore.Store, tenant, action string) int {
	t.Helper()
	n := 0
	if err := store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries(tenancytest.Chain(tenant), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			e, err := audit.Decode(data)
			if err == nil && e.Action == action {
				n++
			}
			return true
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// chainText is the tenant's whole audit chain, entry after entry.
func (e *env) chainText(t *testing.T, tenant string) string {
	t.Helper()
	var sb strings.Builder
	if err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries([]byte(tenancy.ChainOf(tenant)), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			sb.Write(data)
			sb.WriteByte('\n')
			return true
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestCreateEntryHoldsNoPlainDigest (issue 11): the blob.create entry of a
// known content holds its digest keyed under the tenant's audit key, and
// neither its SHA-256 in hex (either case) nor in base64 — so nobody
// holding the log can confirm a guessed content.
func TestCreateEntryHoldsNoPlainDigest(t *testing.T) {
	e := newEnv(t, "acme")
	content := []byte("a recording everybody could guess\n")
	b := e.put(t, "acme", "guest-1", content)
	sum := sha256.Sum256(content)
	if b.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the blob's own metadata: sha256 %s", b.SHA256)
	}
	log := e.chainText(t, "acme")
	for _, leak := range []string{hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])),
		base64.StdEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:]), base64.RawStdEncoding.EncodeToString(sum[:])} {
		if strings.Contains(log, leak) {
			t.Fatalf("the chain holds the content's plain SHA-256 (%s):\n%s", leak, log)
		}
	}
	akey, err := e.keys.AuditKey(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := `"digest":"` + audit.Pseudonym(akey, "sha256", b.SHA256) + `"`
	if !strings.Contains(log, `"action":"blob.create"`) || !strings.Contains(log, want) || !strings.Contains(want, `"sha256:h:`) {
		t.Fatalf("the blob.create entry lacks %s:\n%s", want, log)
	}
}

// chainEntries are the encoded entries of tenant's chain, in order.
func (e *env) chainEntries(t *testing.T, tenant string) [][]byte {
	t.Helper()
	var out [][]byte
	if err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries([]byte(tenancy.ChainOf(tenant)), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			out = append(out, bytes.Clone(data))
			return true
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSubjectListingAudited (issue 11): a listing of blobs by subject —
// List with a subject, and Subject — reveals whether a person is known
// to the tenant, so it leaves exactly one blob.list entry, found or not,
// naming the subject by its pseudonym and the number of blobs answered,
// with nothing plain about the subject in it; a listing without subject
// leaves none. Through the read-audit batcher and without one.
func TestSubjectListingAudited(t *testing.T) {
	e := newEnv(t, "acme")
	e.put(t, "acme", "guest-1", data(1, 1000))
	e.put(t, "acme", "guest-1", data(2, 1000))
	e.put(t, "acme", "guest-2", data(3, 1000))
	akey, err := e.keys.AuditKey(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, svc := range []struct {
		name string
		s    *Service
	}{
		{"direct", e.svc},
		{"batched", New(e.b, e.keys, noRecords{}, Config{}, func() time.Time { return e.clock }, WithReadAudit(audit.NewBatcher(e.b, audit.BatchOptions{})))},
	} {
		for _, c := range []struct {
			name, subject string
			want          int
			list          func(subject string) ([]Blob, error)
		}{
			{"List found", "guest-1", 2, func(sid string) ([]Blob, error) {
				b, _, err := svc.s.List(ctx, custos, "acme", sid, "", 0)
				return b, err
			}},
			{"List not found", "Guest-Nobody", 0, func(sid string) ([]Blob, error) {
				b, _, err := svc.s.List(ctx, custos, "acme", sid, "", 0)
				return b, err
			}},
			{"Subject found", "guest-2", 1, func(sid string) ([]Blob, error) { return svc.s.Subject(ctx, custos, "acme", sid) }},
			{"Subject not found", "guest-nobody", 0, func(sid string) ([]Blob, error) { return svc.s.Subject(ctx, custos, "acme", sid) }},
		} {
			t.Run(svc.name+"/"+c.name, func(t *testing.T) {
				before := len(e.chainEntries(t, "acme"))
				got, err := c.list(c.subject)
				if err != nil || len(got) != c.want {
					t.Fatalf("%d blobs, %v; want %d", len(got), err, c.want)
				}
				added := e.chainEntries(t, "acme")[before:]
				if len(added) != 1 {
					t.Fatalf("%d entries added, want 1", len(added))
				}
				if strings.Contains(strings.ToLower(string(added[0])), strings.ToLower(c.subject)) {
					t.Fatalf("the entry holds the subject %q: %s", c.subject, added[0])
				}
				en, err := audit.Decode(added[0])
				if err != nil {
					t.Fatal(err)
				}
				if en.Action != "blob.list" || en.Target != audit.Pseudonym(akey, "subject", c.subject) ||
					en.Details["results"] != fmt.Sprint(c.want) || len(en.Details) != 1 || en.Outcome != audit.OutcomeSuccess {
					t.Fatalf("entry %s", added[0])
				}
			})
		}
		t.Run(svc.name+"/without subject", func(t *testing.T) {
			before := len(e.chainEntries(t, "acme"))
			if got, _, err := svc.s.List(ctx, custos, "acme", "", "", 0); err != nil || len(got) != 3 {
				t.Fatalf("%d blobs, %v", len(got), err)
			}
			if n := len(e.chainEntries(t, "acme")); n != before {
				t.Fatalf("a listing without subject added %d entries", n-before)
			}
		})
	}
}

// TestSubjectListingKeyUnavailable: a listing by subject cannot be
// answered without its entry, so a node that cannot reach the tenant's
// key refuses it with the keyring's typed error (the API answers 503
// key-unavailable); a listing without subject still works.
func TestSubjectListingKeyUnavailable(t *testing.T) {
	e := newEnv(t, "acme")
	e.put(t, "acme", "guest-1", data(1, 1000))
	sealed := keyring.NewHierarchy(e.b, keyring.HierarchyOptions{System: audit.System(), Pseudonym: audit.Pseudonym})
	svc := New(e.b, sealed, noRecords{}, Config{}, nil)
	before := len(e.chainEntries(t, "acme"))
	var unavailable *keyring.UnavailableError
	if _, _, err := svc.List(context.Background(), custos, "acme", "guest-1", "", 0); !errors.As(err, &unavailable) {
		t.Fatalf("List by subject on a sealed node: %v, want a keyring.UnavailableError", err)
	}
	if got, _, err := svc.List(context.Background(), custos, "acme", "", "", 0); err != nil || len(got) != 1 {
		t.Fatalf("List without subject on a sealed node: %d %v", len(got), err)
	}
	if n := len(e.chainEntries(t, "acme")); n != before {
		t.Fatalf("%d entries added", n-before)
	}
}
