package export

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Defaults.
const (
	// DefaultTTL is how long an export can be downloaded before it is
	// shredded: "temporary files automatically expire within 24 hours".
	DefaultTTL = 24 * time.Hour
	// DefaultStaleAfter: an export whose building stopped (the node died)
	// is swept once its marker is this old.
	DefaultStaleAfter = 15 * time.Minute
)

// Config varies the service.
type Config struct {
	TTL        time.Duration // 0: DefaultTTL
	StaleAfter time.Duration // 0: DefaultStaleAfter
	// SpoolDir holds a gzip'd tar's file while it is written (its size
	// must precede it); "": the system's temporary directory. Spooled
	// files are unlinked as soon as they are created.
	SpoolDir string
}

// Keys is the part of the keyring exports use; *keyring.Hierarchy
// implements it.
type Keys interface {
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
	ShredOps(ctx context.Context, caller keyring.Auditor, tenant, subject string) (*tenancy.Txn, error)
	Forget(tenant, subject string)
}

// Service builds, keeps, serves and expires exports.
type Service struct {
	tenancy *tenancy.Boundary
	keys    Keys
	src     Sources
	cfg     Config
	now     func() time.Time
}

// New makes the service (now nil: time.Now).
func New(b *tenancy.Boundary, keys Keys, src Sources, cfg Config, now func() time.Time) *Service {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if now == nil {
		now = time.Now
	}
	return &Service{tenancy: b, keys: keys, src: src, cfg: cfg, now: now}
}

// TTL is how long an export lives.
func (s *Service) TTL() time.Duration { return s.cfg.TTL }

// Paths, relative to the tenant's bucket.
var (
	metaPath     = raftstore.Path("exports")
	pendingPath  = raftstore.Path("export_builds")
	chunksParent = raftstore.Path("export_chunks")
)

func chunksPath(id string) [][]byte { return raftstore.Path("export_chunks", id) }
func chunkKey(i uint64) []byte      { return binary.BigEndian.AppendUint64(nil, i) }

// keySubject is the keyring "subject" whose data key seals export id:
// a '/' is in no record subject's id (records.ValidID), so it names no
// person's key, and shredding it destroys only the export.
func keySubject(id string) string { return "export/" + id }

func place(tenant, id string) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "exports", RecordID: id, Field: "archive", Version: 1}
}

// layout: exports carry no attributes, so a principal with attribute
// scopes sees none of them (an export is whole or nothing).
var layout = tenancy.NewLayout(
	tenancy.Items("exports", func([]byte) (map[string]string, bool) { return nil, true }),
	tenancy.Refs("export_chunks", func(path [][]byte, _ []byte) ([][]byte, []byte, bool) {
		if len(path) != 2 {
			return nil, nil, false
		}
		return metaPath, path[1], true
	}),
	tenancy.Items("export_builds", func([]byte) (map[string]string, bool) { return nil, true }),
)

func (s *Service) scope(caller audit.Principal, tenant string) tenancy.Scope {
	return s.tenancy.Scope(tenant).Restrict(caller.Restriction(), layout)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "x" + strings.ToLower(b32.EncodeToString(b[:]))
}

// ValidID reports whether s can be an export id.
func ValidID(s string) bool {
	if len(s) != 17 || s[0] != 'x' {
		return false
	}
	for _, c := range s[1:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Kinds of export.
const (
	KindSubject = "subject" // a data subject's holdings (a request's export)
	KindTenant  = "tenant"  // everything the tenant holds (data return at the end of a contract)
)

// Export is a stored export as the API shows it.
type Export struct {
	ID          string            `json:"id"`
	Kind        string            `json:"kind"`
	Request     string            `json:"request"`
	Subject     string            `json:"subject"` // the manifest's subject pseudonym
	Format      Format            `json:"format"`
	Compression Packaging         `json:"compression"`
	From        *time.Time        `json:"from,omitempty"`
	To          *time.Time        `json:"to,omitempty"`
	Size        int64             `json:"size"`
	SHA256      string            `json:"sha256"`
	FileName    string            `json:"file_name"`
	Counts      map[string]uint64 `json:"counts"`
	CreatedAt   time.Time         `json:"created_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	// Manifest is the signed manifest (also in the archive).
	Manifest string `json:"manifest"`
}

// stored is the metadata record.
type stored struct {
	Export
	Header []byte `json:"header"` // the keyring stream header
}

// pending marks an export being built.
type pending struct {
	Started time.Time `json:"started"`
	Touched time.Time `json:"touched"`
}

func (s *Service) markerOp(id string, started, touched time.Time) raftstore.Op {
	v, _ := json.Marshal(pending{Started: started, Touched: touched})
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: pendingPath, Key: []byte(id), Value: v}
}

// apply applies t through store: ErrAborted when a condition failed or
// the tenant is gone.
func apply(ctx context.Context, store tenancy.Scope, t *tenancy.Txn) error {
	res, err := store.Apply(ctx, t)
	if errors.Is(err, tenancy.ErrNoTenant) {
		return ErrAborted
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

// fileName is the download's file name.
func fileName(e Export) string {
	ext := ".zip"
	if e.Compression == PackageGzip {
		ext = ".tar.gz"
	}
	return "custos-export-" + e.ID + ext
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// describe is an export's details in its audit entry: facts, no personal
// data.
func describe(e Export) map[string]string {
	d := map[string]string{
		"export": e.ID, "kind": e.Kind, "format": string(e.Format), "compression": string(e.Compression),
		"size": fmt.Sprint(e.Size), "files": fmt.Sprint(e.Counts["files"]),
	}
	if e.Request != "" {
		d["request"] = e.Request
	}
	return d
}
