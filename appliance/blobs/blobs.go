// Package blobs stores a tenant's blobs — voice recordings, documents —
// streamed in and out, encrypted in chunks under the subject's key, and
// replicated through Raft in bounded pieces.
//
// # Why chunks in the replicated store
//
// A recording must survive the loss of a node like any record, and be
// erased with its subject's key like any record. So its ciphertext lives in
// the replicated state, not in a side file: the upload is sealed in
// keyring.ChunkSize (64 KiB) chunks with keyring.Chunks (the STREAM
// construction: a fresh stream key per blob, chunk counter and last-chunk
// flag in the nonce), and chunksPerTxn chunks (1 MiB of plaintext) go to
// Raft in one transaction. No transaction, raft entry or buffer ever holds
// more than that, whatever the blob's size; a few transactions are in
// flight at once so that the network, the log writes and the reading of
// the request overlap.
//
// Each chunk is stored under its index, so a byte range (playback) opens
// only the chunks it covers. A chunk moved to another blob, another index
// or another tenant fails to open (the stream key is bound to tenant and
// blob id, the nonce to the index and the last flag): ErrIntegrity, never
// served.
//
// # Uploads that do not finish
//
// An upload first writes a pending marker, then its chunks (each chunk
// transaction requires the marker and refreshes its time), then commits:
// the metadata, the subject index and the audit entry in one transaction
// that also removes the marker. Until that commit the blob does not exist
// for any reader. An upload that fails — the client goes away, the body is
// too large, the node loses leadership — deletes its chunks and marker at
// once; if that is impossible (the node died), the leader's Sweep deletes
// uploads whose marker has not been refreshed for Config.StaleAfter.
//
// # Layout (below the tenant's bucket, through its tenancy.Scope)
//
//	blobs                  <id> -> metadata (JSON, with the stream header)
//	blob_uploads           <id> -> pending marker (JSON)
//	blob_chunks/<id>       <index, 8 bytes big endian> -> sealed chunk
//	blob_subjects/<subj>   <id> -> ""
//
// # Choices
//
// A blob may belong to a subject (its data key is then the subject's, and
// the subject's erasure shreds it) and may name a record (collection and
// id, which must exist when the upload starts). Deleting that record later
// does not delete the blob: the link is metadata, the subject is what
// erasure follows. Every download (and every range of one) is audited as
// blob.read before a byte is sent; metadata reads are not audited, as for
// records without pii fields. A listing by subject (List, Subject) reveals
// whether a person is known to the tenant even when it finds nothing, so
// it is audited, found or not, as the records service audits its searches
// and subject lookups: a blob.list entry naming the subject by its
// pseudonym under the tenant's audit key and the number of blobs answered,
// written through the node's read-audit batcher (audit.AppendRead), the
// answer sent only once it is committed. A listing without subject names
// nobody and is not audited. The blob.create entry holds the size, the
// media type and the content's digest keyed under the tenant's audit key
// ("digest": audit.Pseudonym(key, "sha256", hex SHA-256)), never the plain
// SHA-256, which would confirm a guessed content to anyone holding the log
// (docs/audit-format.md, §2.2).
package blobs

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Defaults and limits.
const (
	DefaultMaxSize    = 2 << 30
	DefaultStaleAfter = 15 * time.Minute
	// chunksPerTxn chunks go to Raft in one transaction: 1 MiB of
	// plaintext, about as much ciphertext.
	chunksPerTxn = 16
	// inFlight chunk transactions may be outstanding per upload.
	inFlight   = 2
	maxTypeLen = 255
	// maxSubjectBlobs bounds what Subject returns.
	maxSubjectBlobs = 1000
)

// DefaultContentTypes are the media types accepted when the configuration
// names none: recordings, images, documents.
var defaultContentTypes = []string{"audio/*", "video/*", "image/*", "application/pdf", "application/octet-stream", "text/plain"}

// DefaultContentTypes returns the media types accepted by default.
func DefaultContentTypes() []string { return append([]string(nil), defaultContentTypes...) }

// Blob is a blob's metadata as the API shows it.
type Blob struct {
	ID          string    `json:"id"`
	Subject     string    `json:"subject,omitempty"`
	Collection  string    `json:"collection,omitempty"`
	Record      string    `json:"record,omitempty"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
}

// stored is the metadata record.
type stored struct {
	Blob
	Header []byte `json:"header"` // the keyring stream header
}

// pending marks an upload in progress.
type pending struct {
	Subject string    `json:"subject,omitempty"`
	Started time.Time `json:"started"`
	Touched time.Time `json:"touched"`
}

// Keys is the part of the keyring blobs use; *keyring.Hierarchy
// implements it.
type Keys interface {
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	// AuditKey keys the content digest written in a blob.create entry and
	// the subject named in a blob.list entry.
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
}

// Records says whether a record exists; *records.Service implements it.
type Records interface {
	Exists(ctx context.Context, tenant, collection, id string) (bool, error)
}

// Config is the blob configuration.
type Config struct {
	MaxSize      int64         // bytes; 0: DefaultMaxSize
	ContentTypes []string      // accepted media types ("audio/*" matches a family); nil: the defaults
	StaleAfter   time.Duration // unfinished uploads untouched this long are swept; 0: DefaultStaleAfter
}

// Service stores blobs.
type Service struct {
	tenancy *tenancy.Boundary // the only storage: one tenant's scope at a time
	keys    Keys
	records Records
	cfg     Config
	now     func() time.Time
	reads   *audit.Batcher // writes the entries of listings by subject; nil: the tenant's store does, one transaction each
}

// Option varies a Service.
type Option func(*Service)

// WithReadAudit has the service write the entries of listings by subject
// through b, the node's read-audit batcher (the one the records service
// writes its searches and subject lookups through), so that concurrent
// lookups share its transactions. Without it each entry is a transaction
// of its own through the tenant's scoped store.
func WithReadAudit(b *audit.Batcher) Option { return func(s *Service) { s.reads = b } }

// New makes the service (now nil: time.Now).
func New(b *tenancy.Boundary, keys Keys, records Records, cfg Config, now func() time.Time, opts ...Option) *Service {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.ContentTypes == nil {
		cfg.ContentTypes = DefaultContentTypes()
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if now == nil {
		now = time.Now
	}
	s := &Service{tenancy: b, keys: keys, records: records, cfg: cfg, now: now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// MaxSize is the largest blob accepted.
func (s *Service) MaxSize() int64 { return s.cfg.MaxSize }

// Paths, relative to the tenant's bucket (its tenancy.Scope adds it).
var (
	metaPath     = raftstore.Path("blobs")
	pendingPath  = raftstore.Path("blob_uploads")
	chunksParent = raftstore.Path("blob_chunks")
)

func chunksPath(id string) [][]byte       { return raftstore.Path("blob_chunks", id) }
func subjectPath(subject string) [][]byte { return raftstore.Path("blob_subjects", subject) }

func chunkKey(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

func place(tenant, id string) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "blobs", RecordID: id, Field: "content", Version: 1}
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "b" + strings.ToLower(b32.EncodeToString(b[:]))
}

// ValidID reports whether s can be a blob id, subject or record id: the
// record ids' alphabet (1 to 64 of a-z A-Z 0-9 . _ - :).
func ValidID(s string) bool { return records.ValidID(s) }

// MediaType checks a Content-Type against the accepted types and returns
// it normalized (lower-case type, parameters kept).
func (s *Service) MediaType(ct string) (string, error) {
	if ct == "" || len(ct) > maxTypeLen {
		return "", fmt.Errorf("%w: a Content-Type of at most %d bytes is required", ErrMediaType, maxTypeLen)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a media type", ErrMediaType, ct)
	}
	family, _, _ := strings.Cut(mt, "/")
	for _, a := range s.cfg.ContentTypes {
		if a == mt || a == "*/*" || (strings.HasSuffix(a, "/*") && strings.TrimSuffix(a, "/*") == family) {
			return mime.FormatMediaType(mt, params), nil
		}
	}
	return "", fmt.Errorf("%w: %s is not an accepted type (accepted: %s)", ErrMediaType, mt, strings.Join(s.cfg.ContentTypes, ", "))
}

// Input describes an upload.
type Input struct {
	Subject     string
	Collection  string // with Record: the record the blob belongs to
	Record      string
	ContentType string
	// Length is the announced size (-1: unknown); a larger announcement
	// fails before anything is stored, and a body that ends before it is
	// ErrTruncated (never a shorter blob).
	Length int64
	// SHA256, when set (hex), is the digest the client announced: a body
	// with another is refused with ErrDigest.
	SHA256 string
}

func (s *Service) check(ctx context.Context, tenant string, in *Input) error {
	if in.Subject != "" && !ValidID(in.Subject) {
		return validation.Field("subject", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'")
	}
	if (in.Collection == "") != (in.Record == "") {
		return validation.Field("record", "collection and record are given together or not at all")
	}
	if in.Record != "" {
		if !ValidID(in.Record) || !ValidID(in.Collection) {
			return validation.Field("record", "no such record")
		}
		ok, err := s.records.Exists(ctx, tenant, in.Collection, in.Record)
		if err != nil {
			return fmt.Errorf("blobs: linked record: %w", err)
		}
		if !ok {
			return validation.Field("record", "no such record")
		}
	}
	ct, err := s.MediaType(in.ContentType)
	if err != nil {
		return err
	}
	in.ContentType = ct
	if in.SHA256 != "" {
		if d, err := hex.DecodeString(in.SHA256); err != nil || len(d) != sha256.Size {
			return validation.Field("sha256", "must be 64 hexadecimal digits")
		}
		in.SHA256 = strings.ToLower(in.SHA256)
	}
	if in.Length > s.cfg.MaxSize {
		return fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, in.Length, s.cfg.MaxSize)
	}
	return nil
}

// Put stores the blob read from body. Nothing of it is visible until the
// whole body has been read, sealed and replicated; on any error what was
// stored of it is deleted.
func (s *Service) Put(ctx context.Context, caller audit.Principal, tenant string, in Input, body io.Reader) (Blob, error) {
	if err := s.check(ctx, tenant, &in); err != nil {
		return Blob{}, err
	}
	key, err := s.keys.DataKey(ctx, tenant, in.Subject)
	if err != nil {
		return Blob{}, err
	}
	id := newID()
	chunks, err := keyring.NewChunks(key, place(tenant, id))
	if err != nil {
		return Blob{}, err
	}
	now := s.now().UTC()
	if err := s.apply(ctx, tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: metaPath, Key: []byte(id)}},
		Ops:   []raftstore.Op{s.markerOp(id, in.Subject, now, now)},
	}); err != nil {
		return Blob{}, fmt.Errorf("blobs: start upload: %w", err)
	}
	b, err := s.upload(ctx, caller, tenant, id, in, chunks, body, now)
	if err != nil {
		// A fresh context: the request's may be what ended.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := s.discard(dctx, tenant, id, 0); derr != nil {
			err = fmt.Errorf("%w (cleanup left to the sweeper: %v)", err, derr)
		}
		return Blob{}, err
	}
	return b, nil
}

func (s *Service) markerOp(id, subject string, started, touched time.Time) raftstore.Op {
	v, _ := json.Marshal(pending{Subject: subject, Started: started, Touched: touched})
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: pendingPath, Key: []byte(id), Value: v}
}

func (s *Service) apply(ctx context.Context, tenant string, t *tenancy.Txn) error {
	res, err := s.tenancy.Scope(tenant).Apply(ctx, t)
	if errors.Is(err, tenancy.ErrNoTenant) {
		return ErrAborted // the tenant was deleted meanwhile; nothing was written
	}
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	if !res.Applied {
		return ErrAborted
	}
	return nil
}

// upload reads, seals and replicates the body: chunk transactions go out
// while the body is still read, at most inFlight at a time; the first
// that fails stops the rest.
func (s *Service) upload(ctx context.Context, caller audit.Principal, tenant, id string, in Input, chunks *keyring.Chunks, body io.Reader, started time.Time) (Blob, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	send := func(ops []raftstore.Op) {
		g.Go(func() error {
			ops = append(ops, s.markerOp(id, in.Subject, started, s.now().UTC()))
			if err := s.apply(gctx, tenant, &tenancy.Txn{
				Conds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: pendingPath, Key: []byte(id)}},
				Ops:   ops,
			}); err != nil {
				return fmt.Errorf("blobs: store chunks: %w", err)
			}
			return nil
		})
	}
	ops, size, sum, rerr := s.seal(gctx, body, id, chunks, send)
	// A failed transaction ends the reading too (its context): report it
	// rather than the cancellation it caused.
	if err := g.Wait(); err != nil {
		return Blob{}, err
	}
	if rerr != nil {
		return Blob{}, rerr
	}
	if in.Length >= 0 && size != in.Length {
		return Blob{}, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, size, in.Length)
	}
	if in.SHA256 != "" && sum != in.SHA256 {
		return Blob{}, ErrDigest
	}
	b := Blob{ID: id, Subject: in.Subject, Collection: in.Collection, Record: in.Record, ContentType: in.ContentType,
		Size: size, SHA256: sum, CreatedAt: s.now().UTC()}
	meta, err := json.Marshal(stored{Blob: b, Header: chunks.Header()})
	if err != nil {
		return Blob{}, err
	}
	ops = append(ops,
		raftstore.Op{Kind: raftstore.OpPut, Bucket: metaPath, Key: []byte(id), Value: meta},
		raftstore.Op{Kind: raftstore.OpDelete, Bucket: pendingPath, Key: []byte(id)})
	if in.Subject != "" {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: subjectPath(in.Subject), Key: []byte(id), Value: []byte{}})
	}
	// The entry names the content by a keyed digest, never its plain
	// SHA-256: that would let anyone holding the log or an export confirm
	// a guessed recording or document.
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return Blob{}, err
	}
	details := map[string]string{"size": fmt.Sprint(size), "digest": audit.Pseudonym(akey, "sha256", b.SHA256), "content_type": b.ContentType}
	if in.Record != "" {
		details["record"] = in.Collection + "/" + in.Record
	}
	entry, err := caller.Entry(b.CreatedAt, "blob.create", "blob:"+id, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return Blob{}, err
	}
	if err := s.apply(ctx, tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: pendingPath, Key: []byte(id)}},
		Ops:   ops,
		Audit: [][]byte{entry},
	}); err != nil {
		return Blob{}, fmt.Errorf("blobs: commit upload: %w", err)
	}
	return b, nil
}

// seal reads body in chunks, seals each (the last as the last: a chunk is
// sealed only once it is known whether anything follows it) and hands
// them to send chunksPerTxn at a time. It returns the chunks not yet sent,
// the size and the SHA-256 (hex) of the plaintext.
func (s *Service) seal(ctx context.Context, body io.Reader, id string, chunks *keyring.Chunks, send func([]raftstore.Op)) ([]raftstore.Op, int64, string, error) {
	br := bufio.NewReader(body)
	h := sha256.New()
	buf := make([]byte, keyring.ChunkSize)
	var ops []raftstore.Op
	var size int64
	for index := uint64(0); ; index++ {
		n, err := io.ReadFull(br, buf)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err == nil {
			_, err = br.Peek(1)
			last = errors.Is(err, io.EOF)
		}
		if err != nil && !last {
			return nil, 0, "", fmt.Errorf("blobs: read upload: %w", err)
		}
		if size += int64(n); size > s.cfg.MaxSize {
			return nil, 0, "", fmt.Errorf("%w: limit %d bytes", ErrTooLarge, s.cfg.MaxSize)
		}
		h.Write(buf[:n])
		sealed, err := chunks.Seal(make([]byte, 0, n+keyring.ChunkOverhead), index, last, buf[:n])
		if err != nil {
			return nil, 0, "", err
		}
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: chunksPath(id), Key: chunkKey(index), Value: sealed})
		if last {
			return ops, size, hex.EncodeToString(h.Sum(nil)), nil
		}
		if len(ops) == chunksPerTxn {
			send(ops)
			ops = nil
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, "", err
		}
	}
}

// discard deletes an unfinished upload: its chunks and marker. version,
// when non-zero, is the marker's version the caller saw (Sweep: an upload
// that refreshed its marker since is left alone).
func (s *Service) discard(ctx context.Context, tenant, id string, version uint64) error {
	t := &tenancy.Txn{Ops: []raftstore.Op{
		{Kind: raftstore.OpDeleteBucket, Bucket: chunksParent, Key: []byte(id)},
		{Kind: raftstore.OpDelete, Bucket: pendingPath, Key: []byte(id)},
	}}
	if version != 0 {
		t.Conds = []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: pendingPath, Key: []byte(id), Version: version}}
	} else {
		// Never the chunks of a finished blob.
		t.Conds = []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: metaPath, Key: []byte(id)}}
	}
	err := s.apply(ctx, tenant, t)
	if errors.Is(err, ErrAborted) {
		return nil // finished or refreshed meanwhile
	}
	return err
}

// Sweep deletes the unfinished uploads of the tenants whose marker has not
// been refreshed for StaleAfter (their uploader died). The leader runs it.
func (s *Service) Sweep(ctx context.Context, tenantIDs []string) (int, error) {
	cutoff := s.now().Add(-s.cfg.StaleAfter)
	swept := 0
	for _, t := range tenantIDs {
		type stale struct {
			id      string
			version uint64
		}
		var found []stale
		if err := s.tenancy.Scope(t).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
			r.Scan(pendingPath, nil, 0, func(k, v []byte, ver uint64) bool {
				var p pending
				if json.Unmarshal(v, &p) != nil || p.Touched.Before(cutoff) {
					found = append(found, stale{string(k), ver})
				}
				return true
			})
			return nil
		}); err != nil {
			return swept, fmt.Errorf("blobs: sweep %s: %w", t, err)
		}
		for _, f := range found {
			if err := s.discard(ctx, t, f.id, f.version); err != nil {
				return swept, fmt.Errorf("blobs: sweep %s/%s: %w", t, f.id, err)
			}
			swept++
		}
	}
	return swept, nil
}

// Pending is the number of unfinished uploads of tenant (for tests and
// status).
func (s *Service) Pending(ctx context.Context, tenant string) (int, error) {
	n := 0
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		n = r.Count(pendingPath)
		return nil
	})
	return n, err
}

// read reads a blob's metadata.
func (s *Service) read(ctx context.Context, c raftstore.Consistency, tenant, id string) (stored, uint64, error) {
	if !ValidID(id) {
		return stored{}, 0, ErrNotFound
	}
	var raw []byte
	var ver uint64
	var ok bool
	if err := s.tenancy.Scope(tenant).View(ctx, c, func(r tenancy.Read) error {
		raw, ver, ok = r.Get(metaPath, []byte(id))
		return nil
	}); err != nil {
		return stored{}, 0, fmt.Errorf("blobs: read: %w", err)
	}
	if !ok {
		return stored{}, 0, ErrNotFound
	}
	var m stored
	if err := json.Unmarshal(raw, &m); err != nil || m.ID != id {
		return stored{}, 0, fmt.Errorf("%w: metadata of %s", ErrIntegrity, id)
	}
	return m, ver, nil
}

// Content is an opened blob: its metadata (one linearizable read), from
// which Reader serves bytes. Opening reads no key and writes no audit
// entry: metadata and HEAD requests use it as they are.
type Content struct {
	Blob
	s      *Service
	tenant string
	header []byte
	caller audit.Principal // set by Reader
	chunks *keyring.Chunks // set by Reader
	count  uint64
}

// Open reads a blob's metadata.
func (s *Service) Open(ctx context.Context, tenant, id string) (*Content, error) {
	m, _, err := s.read(ctx, raftstore.Linearizable, tenant, id)
	if err != nil {
		return nil, err
	}
	return &Content{Blob: m.Blob, s: s, tenant: tenant, header: m.Header, count: keyring.ChunkCount(m.Size)}, nil
}

// Reader returns a reader of n bytes from off (the caller checked the
// range against Size), after recording the read in the tenant's audit
// chain (with the range, when it is not the whole blob). The first chunk
// is opened before that, so that a damaged blob fails before a response
// starts. The reader reads one chunk at a time, until it is closed, with
// ctx's values but not its deadline (a download outlives its request's
// call context); progress, when set, is called before each chunk (to
// extend a connection's deadline).
func (c *Content) Reader(ctx context.Context, caller audit.Principal, off, n int64, progress func()) (io.ReadCloser, error) {
	s := c.s
	c.caller = caller
	key, err := s.keys.DataKey(ctx, c.tenant, c.Subject)
	if err != nil {
		return nil, err
	}
	if c.chunks, err = keyring.OpenChunks(key, place(c.tenant, c.ID), c.header); err != nil {
		s.integrityFailure(ctx, caller, c.tenant, c.ID, "header")
		return nil, fmt.Errorf("%w: %s: %v", ErrIntegrity, c.ID, err)
	}
	first := uint64(off) / keyring.ChunkSize
	if _, err := c.chunk(ctx, first, nil); err != nil {
		if errors.Is(err, ErrIntegrity) {
			s.integrityFailure(ctx, caller, c.tenant, c.ID, fmt.Sprint(first))
		}
		return nil, err
	}
	details := map[string]string{"size": fmt.Sprint(c.Size)}
	if off != 0 || n != c.Size {
		details["range"] = fmt.Sprintf("%d-%d", off, off+n-1)
	}
	entry, err := caller.Entry(s.now().UTC(), "blob.read", "blob:"+c.ID, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return nil, err
	}
	if err := s.apply(ctx, c.tenant, &tenancy.Txn{Audit: [][]byte{entry}}); err != nil {
		return nil, fmt.Errorf("blobs: audit the read: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &rangeReader{ctx: rctx, cancel: cancel, c: c, next: first,
		skip: int(off % keyring.ChunkSize), left: n, progress: progress, buf: make([]byte, 0, keyring.ChunkSize)}, nil
}

// integrityFailure records in the tenant's chain that a blob failed its
// integrity check (which part: "header" or a chunk index), best effort:
// the read fails either way, and the node logs it.
func (s *Service) integrityFailure(ctx context.Context, caller audit.Principal, tenant, id, part string) {
	entry, err := caller.Entry(s.now().UTC(), "blob.integrity_failure", "blob:"+id, audit.OutcomeFailure,
		map[string]string{"part": part}).Encode()
	if err != nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.apply(actx, tenant, &tenancy.Txn{Audit: [][]byte{entry}})
}

// chunk reads and opens chunk i into dst. The caller read the metadata
// linearizably, so the local state holds the chunks: a local read.
func (c *Content) chunk(ctx context.Context, i uint64, dst []byte) ([]byte, error) {
	if i >= c.count {
		return dst[:0], nil
	}
	var sealed []byte
	if err := c.s.tenancy.Scope(c.tenant).View(ctx, raftstore.Stale, func(r tenancy.Read) error {
		v, _, ok := r.Get(chunksPath(c.ID), chunkKey(i))
		if ok {
			sealed = append(make([]byte, 0, len(v)), v...)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("blobs: read chunk: %w", err)
	}
	if sealed == nil {
		return nil, fmt.Errorf("%w: %s: chunk %d is missing", ErrIntegrity, c.ID, i)
	}
	pt, err := c.chunks.Open(dst[:0], i, i == c.count-1, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: chunk %d", ErrIntegrity, c.ID, i)
	}
	return pt, nil
}

type rangeReader struct {
	ctx      context.Context
	cancel   context.CancelFunc
	c        *Content
	next     uint64
	skip     int
	left     int64
	buf      []byte
	unread   []byte
	progress func()
	err      error
}

func (r *rangeReader) Read(p []byte) (int, error) {
	for len(r.unread) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.left <= 0 {
			return 0, io.EOF
		}
		if r.progress != nil {
			r.progress()
		}
		pt, err := r.c.chunk(r.ctx, r.next, r.buf)
		if err == nil && len(pt) <= r.skip {
			err = fmt.Errorf("%w: %s: chunk %d is short", ErrIntegrity, r.c.ID, r.next)
		}
		if err != nil {
			if errors.Is(err, ErrIntegrity) {
				r.c.s.integrityFailure(r.ctx, r.c.caller, r.c.tenant, r.c.ID, fmt.Sprint(r.next))
			}
			r.err = err
			return 0, err
		}
		r.buf = pt
		r.unread = pt[r.skip:]
		r.skip = 0
		r.next++
		if int64(len(r.unread)) > r.left {
			r.unread = r.unread[:r.left]
		}
		r.left -= int64(len(r.unread))
	}
	k := copy(p, r.unread)
	r.unread = r.unread[k:]
	return k, nil
}

func (r *rangeReader) Close() error {
	r.cancel()
	return nil
}

// Delete deletes a blob: metadata, chunks and subject entry, audited, in
// one transaction.
func (s *Service) Delete(ctx context.Context, caller audit.Principal, tenant, id string) error {
	m, ver, err := s.read(ctx, raftstore.Linearizable, tenant, id)
	if err != nil {
		return err
	}
	ops := []raftstore.Op{
		{Kind: raftstore.OpDelete, Bucket: metaPath, Key: []byte(id)},
		{Kind: raftstore.OpDeleteBucket, Bucket: chunksParent, Key: []byte(id)},
	}
	if m.Subject != "" {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: subjectPath(m.Subject), Key: []byte(id)})
	}
	entry, err := caller.Entry(s.now().UTC(), "blob.delete", "blob:"+id, audit.OutcomeSuccess, nil).Encode()
	if err != nil {
		return err
	}
	err = s.apply(ctx, tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: metaPath, Key: []byte(id), Version: ver}},
		Ops:   ops,
		Audit: [][]byte{entry},
	})
	if errors.Is(err, ErrAborted) {
		return ErrNotFound // deleted concurrently
	}
	if err != nil {
		return fmt.Errorf("blobs: delete: %w", err)
	}
	return nil
}

// List returns the tenant's blobs (of subject, when set) after id after, at
// most limit; next is where to continue ("" at the end). A listing by
// subject reveals whether a person is known to the tenant, so it is
// audited, found or not — a blob.list entry naming the subject by its
// pseudonym and the number of blobs answered — and answered only once the
// entry is committed (a tenant whose key is unavailable cannot have it
// written: keyring.UnavailableError). A listing without subject names no
// person and is not audited.
func (s *Service) List(ctx context.Context, caller audit.Principal, tenant, subject, after string, limit int) ([]Blob, string, error) {
	if subject != "" && !ValidID(subject) {
		return nil, "", validation.Field("subject", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'")
	}
	limit, err := validation.PageLimit(limit, validation.MaxPage)
	if err != nil {
		return nil, "", err
	}
	return s.list(ctx, caller, tenant, subject, after, limit)
}

// list is List of a checked subject, up to limit (any size: Subject asks
// for more than a page), audited as List is.
func (s *Service) list(ctx context.Context, caller audit.Principal, tenant, subject, after string, limit int) ([]Blob, string, error) {
	var start []byte
	if after != "" {
		start = []byte(after)
	}
	out := []Blob{}
	next := ""
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		add := func(raw []byte) error {
			var m stored
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("%w: metadata", ErrIntegrity)
			}
			out = append(out, m.Blob)
			return nil
		}
		var ferr error
		if subject == "" {
			r.Scan(metaPath, start, limit+1, func(k, v []byte, _ uint64) bool {
				if len(out) == limit {
					next = out[len(out)-1].ID
					return false
				}
				ferr = add(v)
				return ferr == nil
			})
			return ferr
		}
		r.Scan(subjectPath(subject), start, limit+1, func(k, _ []byte, _ uint64) bool {
			if len(out) == limit {
				next = out[len(out)-1].ID
				return false
			}
			if v, _, ok := r.Get(metaPath, k); ok {
				ferr = add(v)
			}
			return ferr == nil
		})
		return ferr
	})
	if err != nil {
		return nil, "", fmt.Errorf("blobs: list: %w", err)
	}
	if subject != "" {
		if err := s.auditList(ctx, caller, tenant, subject, len(out)); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// auditList writes the blob.list entry of a listing by subject (the
// subject's pseudonym, the number of blobs answered) and returns once it
// is committed: through the read-audit batcher when the service has one,
// as the records service writes its searches and subject lookups
// (audit.AppendRead).
func (s *Service) auditList(ctx context.Context, caller audit.Principal, tenant, subject string, results int) error {
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return err
	}
	e := caller.Entry(s.now().UTC(), "blob.list", audit.Pseudonym(akey, "subject", subject), audit.OutcomeSuccess,
		map[string]string{"results": strconv.Itoa(results)})
	if err := audit.AppendRead(ctx, s.reads, s.tenancy.Scope(tenant), e); err != nil {
		return fmt.Errorf("blobs: audit list: %w", err)
	}
	return nil
}

// Subject lists the blobs of subject (at most maxSubjectBlobs), for the
// subject's overview; audited as List is (blob.list).
func (s *Service) Subject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]Blob, error) {
	b, _, err := s.list(ctx, caller, tenant, subject, "", maxSubjectBlobs)
	return b, err
}
