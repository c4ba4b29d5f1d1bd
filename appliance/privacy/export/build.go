package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/receipt"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Format is how records are written.
type Format string

// Formats.
const (
	FormatJSON    Format = "json"
	FormatCSV     Format = "csv"
	FormatParquet Format = "parquet"
)

// Packaging is the archive the files go in.
type Packaging string

// Packagings.
const (
	// PackageZip: a zip archive (deflate), which `custos dsr
	// verify-export` checks as it is.
	PackageZip Packaging = "zip"
	// PackageGzip: a gzip'd tar (.tar.gz); unpack it (tar xzf) and check
	// the directory.
	PackageGzip Packaging = "gzip"
)

// Options are an export's choices.
type Options struct {
	Format    Format    // "": json
	Packaging Packaging // "": zip
	// From and To bound the export's dates (zero: open): a record is in
	// it when it existed in the range (created at or before To, last
	// updated at or after From); blobs, consent events, requests and
	// audit entries when their time is in the range.
	From, To time.Time
}

// normalize fills the defaults and checks the options.
func (o *Options) normalize() error {
	if o.Format == "" {
		o.Format = FormatJSON
	}
	if o.Packaging == "" {
		o.Packaging = PackageZip
	}
	switch o.Format {
	case FormatJSON, FormatCSV, FormatParquet:
	default:
		return validation.Field("format", "must be json, csv or parquet")
	}
	switch o.Packaging {
	case PackageZip, PackageGzip:
	default:
		return validation.Field("compression", "must be zip or gzip")
	}
	o.From, o.To = o.From.UTC(), o.To.UTC()
	if !o.From.IsZero() && !o.To.IsZero() && o.To.Before(o.From) {
		return validation.Field("to", "must not be before from")
	}
	return nil
}

// inRange reports whether t is within the options' range.
func (o *Options) inRange(t time.Time) bool {
	return (o.From.IsZero() || !t.Before(o.From)) && (o.To.IsZero() || !t.After(o.To))
}

// recordInRange: the record existed during the range.
func (o *Options) recordInRange(r records.Record) bool {
	return (o.From.IsZero() || !r.UpdatedAt.Before(o.From)) && (o.To.IsZero() || !r.CreatedAt.After(o.To))
}

// Sources are what an export reads: the domain services, each through
// the caller's principal.
type Sources struct {
	Records interface {
		SubjectRecords(ctx context.Context, caller audit.Principal, tenant, subject string, fn func(sc *collections.Schema, rec records.Record) error) error
		CollectionRecords(ctx context.Context, caller audit.Principal, tenant, collection string, fn func(sc *collections.Schema, rec records.Record) error) error
	}
	Collections interface {
		List(ctx context.Context, c raftstore.Consistency, tenant string) ([]collections.Schema, error)
	}
	Blobs interface {
		Subject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]blobs.Blob, error)
		List(ctx context.Context, caller audit.Principal, tenant, subject, after string, limit int) ([]blobs.Blob, string, error)
		Open(ctx context.Context, caller audit.Principal, tenant, id string) (*blobs.Content, error)
	}
	// Consent is the subject's consent ledger; nil: none in the export.
	Consent interface {
		History(ctx context.Context, caller audit.Principal, tenant, subject string) ([]consent.Event, error)
	}
	// Requests are the tenant's data-subject requests: an export for a
	// request takes it up (Begin) and closes it (Finish), and the
	// subject's requests are in the export. nil: exports for requests are
	// refused and none are exported.
	Requests Requests
	Audit    interface {
		List(ctx context.Context, c raftstore.Consistency, chain string, f audit.Filter, after uint64, limit int) ([]audit.Item, uint64, error)
		Signer(ctx context.Context) (note.Signer, error)
	}
}

// Requests is the part of the requests service exports use;
// *requests.Service implements it.
type Requests interface {
	Begin(ctx context.Context, caller audit.Principal, tenant, id string, kinds ...requests.Kind) (requests.Request, error)
	Finish(ctx context.Context, caller audit.Principal, tenant, id string, res requests.Result) (requests.Request, error)
	BySubject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]requests.Request, error)
}

// Built is what building an export produced besides its bytes.
type Built struct {
	Manifest receipt.Manifest
	Signed   []byte            // the signed manifest, also in the archive at receipt.ManifestName
	Counts   map[string]uint64 // items by kind: records, blobs, consent-events, requests, audit-entries, files
	Bytes    int64             // the files' bytes (before packaging)
}

// subjectJob is what one export is of: a subject's holdings, or (subject
// "") the whole tenant's.
type job struct {
	caller    audit.Principal
	tenant    string
	subject   string // "": tenant-wide
	pseudonym string // the manifest's subject: the subject's, or the tenant's (kind "tenant")
	request   string
	opt       Options
	now       time.Time
	counts    map[string]uint64
}

// build writes the archive of j to w: the records by collection, the
// blobs as files with blobs.json their metadata, consent.json,
// requests.json and audit.json (subject exports), then the signed
// manifest.
func (s *Service) build(ctx context.Context, j *job, w io.Writer) (Built, error) {
	signer, err := s.src.Audit.Signer(ctx)
	if err != nil {
		return Built{}, fmt.Errorf("export: the audit key: %w", err)
	}
	j.counts = map[string]uint64{}
	a := newArchive(w, j.opt.Packaging, j.now, s.cfg.SpoolDir)
	defer a.abort()
	if err := s.writeRecords(ctx, j, a); err != nil {
		return Built{}, err
	}
	if err := s.writeBlobs(ctx, j, a); err != nil {
		return Built{}, err
	}
	if j.subject != "" {
		if err := s.writeSubjectKinds(ctx, j, a); err != nil {
			return Built{}, err
		}
	}
	files, err := a.finish()
	if err != nil {
		return Built{}, err
	}
	slices.SortFunc(files, func(x, y receipt.File) int { return strings.Compare(x.Path, y.Path) })
	m := receipt.Manifest{Tenant: j.tenant, Subject: j.pseudonym, Request: j.request, Created: j.now, From: j.opt.From, To: j.opt.To, Files: files}
	signed, err := receipt.SignManifest(m, signer)
	if err != nil {
		return Built{}, fmt.Errorf("export: sign the manifest: %w", err)
	}
	if err := a.writeManifest(signed); err != nil {
		return Built{}, err
	}
	j.counts["files"] = uint64(len(files))
	return Built{Manifest: m, Signed: signed, Counts: j.counts, Bytes: a.written}, nil
}

// writeRecords writes one file per collection. A subject's records come
// by collection, so each file is written whole before the next begins.
func (s *Service) writeRecords(ctx context.Context, j *job, a *archive) error {
	var cur string
	var rw recordWriter
	endFile := func() error {
		if rw == nil {
			return nil
		}
		err := rw.close()
		rw = nil
		return err
	}
	fn := func(sc *collections.Schema, rec records.Record) error {
		if !j.opt.recordInRange(rec) {
			return nil
		}
		if rw == nil || rec.Collection != cur {
			if err := endFile(); err != nil {
				return err
			}
			f, err := a.create("records/" + rec.Collection + extension(j.opt.Format))
			if err != nil {
				return err
			}
			cur, rw = rec.Collection, newRecordWriter(j.opt.Format, f, sc)
		}
		j.counts["records"]++
		return rw.write(rec)
	}
	if j.subject != "" {
		if err := s.src.Records.SubjectRecords(ctx, j.caller, j.tenant, j.subject, fn); err != nil {
			return fmt.Errorf("export: records: %w", err)
		}
		return endFile()
	}
	cols, err := s.src.Collections.List(ctx, raftstore.Linearizable, j.tenant)
	if err != nil {
		return fmt.Errorf("export: collections: %w", err)
	}
	for _, c := range cols {
		if err := s.src.Records.CollectionRecords(ctx, j.caller, j.tenant, c.Name, fn); err != nil {
			return fmt.Errorf("export: records of %s: %w", c.Name, err)
		}
	}
	return endFile()
}

// blobPage is how many blobs' metadata a tenant-wide export lists at once.
const blobPage = 500

// writeBlobs writes each blob in range as blobs/<id><ext>, and their
// metadata as blobs.json.
func (s *Service) writeBlobs(ctx context.Context, j *job, a *archive) error {
	var all []blobs.Blob
	if j.subject != "" {
		bs, err := s.src.Blobs.Subject(ctx, j.caller, j.tenant, j.subject)
		if err != nil && !errors.Is(err, blobs.ErrNotFound) {
			return fmt.Errorf("export: blobs: %w", err)
		}
		all = bs
	}
	type meta struct {
		blobs.Blob
		File string `json:"file"`
	}
	// The metadata is written after the files (it names them): kept
	// meanwhile, a few hundred bytes a blob.
	var list []meta
	each := func(b blobs.Blob) error {
		if !j.opt.inRange(b.CreatedAt) {
			return nil
		}
		path := "blobs/" + b.ID + blobExt(b.ContentType)
		if err := s.copyBlob(ctx, j, a, b.ID, path); err != nil {
			return err
		}
		j.counts["blobs"]++
		list = append(list, meta{Blob: b, File: path})
		return nil
	}
	if j.subject != "" {
		for _, b := range all {
			if err := each(b); err != nil {
				return err
			}
		}
	} else {
		after := ""
		for {
			page, next, err := s.src.Blobs.List(ctx, j.caller, j.tenant, "", after, blobPage)
			if err != nil {
				return fmt.Errorf("export: blobs: %w", err)
			}
			for _, b := range page {
				if err := each(b); err != nil {
					return err
				}
			}
			if next == "" || len(page) == 0 {
				break
			}
			after = next
		}
	}
	f, err := a.create("blobs.json")
	if err != nil {
		return err
	}
	arr := newJSONArray(f)
	for _, m := range list {
		if err := arr.add(m); err != nil {
			return err
		}
	}
	return arr.close()
}

// copyBlob writes blob id's bytes into the archive at path.
func (s *Service) copyBlob(ctx context.Context, j *job, a *archive, id, path string) error {
	c, err := s.src.Blobs.Open(ctx, j.caller, j.tenant, id)
	if err != nil {
		return fmt.Errorf("export: blob %s: %w", id, err)
	}
	r, err := c.Reader(ctx, j.caller, 0, c.Size, nil)
	if err != nil {
		return fmt.Errorf("export: blob %s: %w", id, err)
	}
	defer r.Close()
	f, err := a.create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("export: blob %s: %w", id, err)
	}
	return nil
}

// blobExt is a file extension for a media type ("" when none is known
// or it has characters a manifest path may not hold).
func blobExt(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	known := map[string]string{
		"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/mpeg": ".mp3", "audio/ogg": ".ogg",
		"audio/webm": ".webm", "audio/mp4": ".m4a", "audio/flac": ".flac", "video/mp4": ".mp4", "video/webm": ".webm",
		"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
		"application/pdf": ".pdf", "text/plain": ".txt", "application/octet-stream": ".bin",
	}
	return known[mt]
}

// writeSubjectKinds writes consent.json, requests.json and audit.json.
func (s *Service) writeSubjectKinds(ctx context.Context, j *job, a *archive) error {
	if s.src.Consent != nil {
		events, err := s.src.Consent.History(ctx, j.caller, j.tenant, j.subject)
		if err != nil {
			return fmt.Errorf("export: consent: %w", err)
		}
		f, err := a.create("consent.json")
		if err != nil {
			return err
		}
		arr := newJSONArray(f)
		for _, e := range events {
			if !j.opt.inRange(e.At) {
				continue
			}
			j.counts["consent-events"]++
			if err := arr.add(e); err != nil {
				return err
			}
		}
		if err := arr.close(); err != nil {
			return err
		}
	}
	if s.src.Requests != nil {
		reqs, err := s.src.Requests.BySubject(ctx, j.caller, j.tenant, j.subject)
		if err != nil {
			return fmt.Errorf("export: requests: %w", err)
		}
		f, err := a.create("requests.json")
		if err != nil {
			return err
		}
		n, err := writeJSONList(f, reqs)
		if err != nil {
			return err
		}
		j.counts["requests"] = n
	}
	return s.writeAudit(ctx, j, a)
}

// auditPage is how many entries one listing of the chain answers.
const auditPage = 1000

// writeAudit writes audit.json: the tenant's chain entries whose target
// is the subject's pseudonym — what was done to or about the subject, as
// the chain holds it (actors and other subjects pseudonymous as there).
func (s *Service) writeAudit(ctx context.Context, j *job, a *archive) error {
	f, err := a.create("audit.json")
	if err != nil {
		return err
	}
	arr := newJSONArray(f)
	chain := tenancy.ChainOf(j.tenant)
	filter := audit.Filter{Target: j.pseudonym, From: j.opt.From, To: j.opt.To}
	var after uint64
	c := raftstore.Linearizable
	for {
		items, next, err := s.src.Audit.List(ctx, c, chain, filter, after, auditPage)
		if err != nil {
			return fmt.Errorf("export: audit: %w", err)
		}
		for _, it := range items {
			j.counts["audit-entries"]++
			if err := arr.add(struct {
				Seq   uint64      `json:"seq"`
				Entry audit.Entry `json:"entry"`
			}{it.Seq, it.Entry}); err != nil {
				return err
			}
		}
		if next == 0 {
			break
		}
		after, c = next, raftstore.Stale
	}
	return arr.close()
}
