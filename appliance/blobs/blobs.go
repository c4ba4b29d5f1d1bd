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
//	blobs                  <id> -> metadata (JSON, with the stream header
//	                       and the blob's attributes in the clear)
//	blob_uploads           <id> -> pending marker (JSON)
//	blob_chunks/<id>       <index, 8 bytes big endian> -> sealed chunk
//	blob_subjects/<subj>   <id> -> ""
//
// # Who reads what
//
// Blob bytes are read only by a principal whose role reads them
// (appliance/identity/visibility: roles.BlobClass in clear); others get
// ErrContentWithheld, and the metadata they read (Open, List, Subject)
// leaves the content's SHA-256 out, since the digest of a document
// confirms a guessed copy of it (visibility.go).
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
//
// # Attributes and scopes
//
// A blob carries attributes, as a record does (the same rule:
// validation.Attributes), stored in the clear in its metadata and shown
// with it: they are for access decisions. A blob linked to a record and
// uploaded without attributes of its own inherits the record's, as they
// are at the upload — a voucher of a villa-a booking is villa-a's — and
// keeps them (the link is metadata: the record's later changes do not
// follow). A caller with attribute scopes reaches blobs through a handle
// restricted to them (scope): a blob outside its scope — its metadata, its
// chunks, its entry in a subject's list — reads as absent, so every
// operation answers for it exactly as for a missing blob, and it can
// upload only a blob inside its scope (tenancy.ErrRestricted otherwise,
// before anything is stored). A blob without a scoped attribute is outside
// the scope.
//
// # Kinds and consent
//
// An upload may name a blob kind of the tenant (?kind=call-recording):
// the kind's policy, kept by appliance/privacy/consent, lists the
// purposes its blobs require of their subject. The consent is asked
// before anything is stored and again just before the blob is committed,
// so a withdrawal during a long upload refuses it; reading the blob
// (metadata or content) is refused once the subject refused a purpose.
// A kind the tenant does not define is refused (a typo must not skip
// enforcement); a blob without subject or kind is not checked
// (consent.go).
//
// # Files
//
// blobs.go is the service, its layout and ids; upload.go checks, seals and
// replicates an upload; content.go reads a blob back (whole or a range);
// list.go lists a tenant's or a subject's blobs and audits subject
// listings; visibility.go is what each reader sees of a blob; sweep.go
// removes what unfinished uploads left; errors.go holds the package's
// errors.
package blobs

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/visibility"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
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
	ID         string `json:"id"`
	Subject    string `json:"subject,omitempty"`
	Collection string `json:"collection,omitempty"`
	Record     string `json:"record,omitempty"`
	// Kind is the tenant's blob kind the blob was uploaded as (none: no
	// kind): the purposes the kind requires are checked at the upload and
	// at every read of a subject's blob (consent.go).
	Kind string `json:"kind,omitempty"`
	// Attributes are in the clear, like a record's: they are for access
	// decisions (attribute scopes), not personal data.
	Attributes  map[string]string `json:"attributes,omitempty"`
	ContentType string            `json:"content_type"`
	Size        int64             `json:"size"`
	SHA256      string            `json:"sha256,omitempty"` // left out for a reader that does not read the content (shown)
	CreatedAt   time.Time         `json:"created_at"`
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

// Records says whether a record exists for a caller (within its
// attribute scope), and its attributes; *records.Service implements it.
type Records interface {
	Attributes(ctx context.Context, caller audit.Principal, tenant, collection, id string) (map[string]string, bool, error)
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
	vis     *visibility.Resolver
	consent Consent // nil: no blob kinds (consent.go)
	stats   counters
}

// counters are the service's Stats.
type counters struct {
	uploads, uploadBytes, failed, reads, readBytes, swept atomic.Uint64
}

// Stats count this node's blob traffic since it started, for metrics.
type Stats struct {
	Uploads     uint64 // uploads stored
	UploadBytes uint64 // their plaintext bytes
	Failed      uint64 // uploads that failed after they started (what was stored of them deleted)
	Reads       uint64 // downloads started (each audited)
	ReadBytes   uint64 // bytes those downloads asked for
	Swept       uint64 // abandoned uploads the sweeper deleted
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	c := &s.stats
	return Stats{Uploads: c.uploads.Load(), UploadBytes: c.uploadBytes.Load(), Failed: c.failed.Load(),
		Reads: c.reads.Load(), ReadBytes: c.readBytes.Load(), Swept: c.swept.Load()}
}

// layout declares the service's buckets to handles restricted to an
// attribute scope: a blob's metadata is the item (its attributes in the
// clear), its chunks and its entry in its subject's list point at it, and
// upload markers name no item (an upload is nobody's until it commits).
var layout = tenancy.NewLayout(
	tenancy.Items("blobs", tenancy.JSONAttributes("attributes")),
	tenancy.Refs("blob_chunks", func(path [][]byte, _ []byte) ([][]byte, []byte, bool) {
		// blob_chunks/<id>: index -> chunk
		if len(path) != 2 {
			return nil, nil, false
		}
		return metaPath, path[1], true
	}),
	tenancy.Refs("blob_subjects", func(_ [][]byte, key []byte) ([][]byte, []byte, bool) {
		return metaPath, key, true // blob_subjects/<subject>: id -> ""
	}),
	tenancy.Open("blob_uploads"),
)

// scope is the caller's handle on tenant's store: restricted to the
// caller's attribute scope when it has one. It is the one place the
// service makes a handle for a caller, and every read and write of a
// caller's request goes through it.
func (s *Service) scope(caller audit.Principal, tenant string) tenancy.Scope {
	return s.tenancy.Scope(tenant).Restrict(caller.Restriction(), layout)
}

// Option varies a Service.
type Option func(*Service)

// WithReadAudit has the service write the entries of listings by subject
// through b, the node's read-audit batcher (the one the records service
// writes its searches and subject lookups through), so that concurrent
// lookups share its transactions. Without it each entry is a transaction
// of its own through the tenant's scoped store.
func WithReadAudit(b *audit.Batcher) Option { return func(s *Service) { s.reads = b } }

// WithVisibility has the service decide who downloads blob bytes with r
// (without it, a resolver with no custom roles and no break-glass:
// visibility.New()).
func WithVisibility(r *visibility.Resolver) Option { return func(s *Service) { s.vis = r } }

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
	s := &Service{tenancy: b, keys: keys, records: records, cfg: cfg, now: now, vis: visibility.New()}
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

// Delete deletes a blob: metadata, chunks and subject entry, audited, in
// one transaction.
func (s *Service) Delete(ctx context.Context, caller audit.Principal, tenant, id string) error {
	store := s.scope(caller, tenant)
	m, ver, err := s.read(ctx, raftstore.Linearizable, store, id)
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
	err = s.apply(ctx, store, &tenancy.Txn{
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
