package blobs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Input describes an upload.
type Input struct {
	Subject    string
	Collection string // with Record: the record the blob belongs to
	Record     string
	// Kind, when set, is a blob kind of the tenant: the purposes it
	// requires of Subject are checked before anything is stored, and again
	// before the blob is committed.
	Kind string
	// Attributes are the blob's (checked as a record's are). Without
	// them, a blob linked to a record inherits the record's attributes
	// as they are at the upload (a copy: a later change of the record's
	// does not follow, as its deletion does not delete the blob). A
	// caller with attribute scopes can upload only a blob inside them.
	Attributes  map[string]string
	ContentType string
	// Length is the announced size (-1: unknown); a larger announcement
	// fails before anything is stored, and a body that ends before it is
	// ErrTruncated (never a shorter blob).
	Length int64
	// SHA256, when set (hex), is the digest the client announced: a body
	// with another is refused with ErrDigest.
	SHA256 string
}

func (s *Service) check(ctx context.Context, caller audit.Principal, tenant string, in *Input) error {
	if in.Subject != "" && !ValidID(in.Subject) {
		return validation.Field("subject", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'")
	}
	if (in.Collection == "") != (in.Record == "") {
		return validation.Field("record", "collection and record are given together or not at all")
	}
	if err := s.requireKind(ctx, tenant, in.Subject, in.Kind, false); err != nil {
		return err
	}
	if in.Record != "" {
		if !ValidID(in.Record) || !ValidID(in.Collection) {
			return validation.Field("record", "no such record")
		}
		attrs, ok, err := s.records.Attributes(ctx, caller, tenant, in.Collection, in.Record)
		if err != nil {
			return fmt.Errorf("blobs: linked record: %w", err)
		}
		if !ok {
			return validation.Field("record", "no such record")
		}
		if in.Attributes == nil {
			in.Attributes = maps.Clone(attrs)
		}
	}
	if err := validation.Attributes(in.Attributes); err != nil {
		return err
	}
	if !caller.Restriction().Allows(in.Attributes) {
		// Refused before anything is stored; the scoped handle would
		// refuse the blob's commit anyway.
		return fmt.Errorf("blobs: upload: %w", tenancy.ErrRestricted)
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
	if err := s.check(ctx, caller, tenant, &in); err != nil {
		return Blob{}, err
	}
	key, err := s.keys.DataKey(ctx, tenant, in.Subject)
	if err != nil {
		return Blob{}, err
	}
	store := s.scope(caller, tenant)
	id := newID()
	chunks, err := keyring.NewChunks(key, place(tenant, id))
	if err != nil {
		return Blob{}, err
	}
	now := s.now().UTC()
	if err := s.apply(ctx, store, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: metaPath, Key: []byte(id)}},
		Ops:   []raftstore.Op{s.markerOp(id, in.Subject, now, now)},
	}); err != nil {
		return Blob{}, fmt.Errorf("blobs: start upload: %w", err)
	}
	b, err := s.upload(ctx, caller, store, id, in, chunks, body, now)
	if err != nil {
		// A fresh context: the request's may be what ended.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := s.discard(dctx, store, id, 0); derr != nil {
			err = fmt.Errorf("%w (cleanup left to the sweeper: %v)", err, derr)
		}
		s.stats.failed.Add(1)
		return Blob{}, err
	}
	s.stats.uploads.Add(1)
	s.stats.uploadBytes.Add(uint64(b.Size))
	return b, nil
}

func (s *Service) markerOp(id, subject string, started, touched time.Time) raftstore.Op {
	v, _ := json.Marshal(pending{Subject: subject, Started: started, Touched: touched})
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: pendingPath, Key: []byte(id), Value: v}
}

// apply applies t through store (a caller's handle, or the tenant's for
// the sweeper).
func (s *Service) apply(ctx context.Context, store tenancy.Scope, t *tenancy.Txn) error {
	res, err := store.Apply(ctx, t)
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
func (s *Service) upload(ctx context.Context, caller audit.Principal, store tenancy.Scope, id string, in Input, chunks *keyring.Chunks, body io.Reader, started time.Time) (Blob, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	send := func(ops []raftstore.Op) {
		g.Go(func() error {
			ops = append(ops, s.markerOp(id, in.Subject, started, s.now().UTC()))
			if err := s.apply(gctx, store, &tenancy.Txn{
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
	// A withdrawal during a long upload refuses it: the consent is asked
	// again just before the blob becomes visible.
	if err := s.requireKind(ctx, store.ID(), in.Subject, in.Kind, false); err != nil {
		return Blob{}, err
	}
	b := Blob{ID: id, Subject: in.Subject, Collection: in.Collection, Record: in.Record, Kind: in.Kind, Attributes: in.Attributes, ContentType: in.ContentType,
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
	akey, err := s.keys.AuditKey(ctx, store.ID())
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
	if err := s.apply(ctx, store, &tenancy.Txn{
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
func (s *Service) discard(ctx context.Context, store tenancy.Scope, id string, version uint64) error {
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
	err := s.apply(ctx, store, t)
	if errors.Is(err, ErrAborted) {
		return nil // finished or refreshed meanwhile
	}
	return err
}
