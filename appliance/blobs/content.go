package blobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// read reads a blob's metadata through store (a caller's handle: a blob
// outside its attribute scope is not found).
func (s *Service) read(ctx context.Context, c raftstore.Consistency, store tenancy.Scope, id string) (stored, uint64, error) {
	if !ValidID(id) {
		return stored{}, 0, ErrNotFound
	}
	var raw []byte
	var ver uint64
	var ok bool
	if err := store.View(ctx, c, func(r tenancy.Read) error {
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
	store  tenancy.Scope // the handle of the caller that opened it
	header []byte
	caller audit.Principal // set by Reader
	chunks *keyring.Chunks // set by Reader
	count  uint64
}

// Open reads a blob's metadata for caller: a blob outside its attribute
// scope is ErrNotFound, as a missing one; its content is then read through
// the same handle. The metadata is as caller reads it (shown: without the
// SHA-256 for a caller that does not read the content).
func (s *Service) Open(ctx context.Context, caller audit.Principal, tenant, id string) (*Content, error) {
	store := s.scope(caller, tenant)
	m, _, err := s.read(ctx, raftstore.Linearizable, store, id)
	if err != nil {
		return nil, err
	}
	if m.Subject != "" {
		if err := s.requireKind(ctx, tenant, m.Subject, m.Kind, true); err != nil {
			return nil, err
		}
	}
	v, err := s.sight(ctx, caller, tenant)
	if err != nil {
		return nil, err
	}
	return &Content{Blob: shown(v, m.Blob), s: s, tenant: tenant, store: store, header: m.Header, count: keyring.ChunkCount(m.Size)}, nil
}

// Readable reports whether caller may read the blob's bytes: only a
// principal whose sight reads blob content (see
// appliance/identity/visibility: roles.BlobClass in clear) does;
// ErrContentWithheld otherwise. Reader checks it; a caller that answers
// anything of the content before reading it (headers, a HEAD request)
// asks first.
func (c *Content) Readable(ctx context.Context, caller audit.Principal) error {
	v, err := c.s.sight(ctx, caller, c.tenant)
	if err != nil {
		return err
	}
	if !v.BlobContent() {
		return ErrContentWithheld
	}
	return nil
}

// Reader returns a reader of n bytes from off (the caller checked the
// range against Size) to a caller that may read the content (Readable),
// after recording the read in the tenant's audit
// chain (with the range, when it is not the whole blob). The first chunk
// is opened before that, so that a damaged blob fails before a response
// starts. The reader reads one chunk at a time, until it is closed, with
// ctx's values but not its deadline (a download outlives its request's
// call context); progress, when set, is called before each chunk (to
// extend a connection's deadline).
func (c *Content) Reader(ctx context.Context, caller audit.Principal, off, n int64, progress func()) (io.ReadCloser, error) {
	if err := c.Readable(ctx, caller); err != nil {
		return nil, err
	}
	s := c.s
	c.caller = caller
	key, err := s.keys.DataKey(ctx, c.tenant, c.Subject)
	if err != nil {
		return nil, err
	}
	if c.chunks, err = keyring.OpenChunks(key, place(c.tenant, c.ID), c.header); err != nil {
		s.integrityFailure(ctx, caller, c.store, c.ID, "header")
		return nil, fmt.Errorf("%w: %s: %v", ErrIntegrity, c.ID, err)
	}
	first := uint64(off) / keyring.ChunkSize
	if _, err := c.chunk(ctx, first, nil); err != nil {
		if errors.Is(err, ErrIntegrity) {
			s.integrityFailure(ctx, caller, c.store, c.ID, fmt.Sprint(first))
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
	if err := s.apply(ctx, c.store, &tenancy.Txn{Audit: [][]byte{entry}}); err != nil {
		return nil, fmt.Errorf("blobs: audit the read: %w", err)
	}
	s.stats.reads.Add(1)
	s.stats.readBytes.Add(uint64(n))
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &rangeReader{ctx: rctx, cancel: cancel, c: c, next: first,
		skip: int(off % keyring.ChunkSize), left: n, progress: progress, buf: make([]byte, 0, keyring.ChunkSize)}, nil
}

// integrityFailure records in the tenant's chain that a blob failed its
// integrity check (which part: "header" or a chunk index), best effort:
// the read fails either way, and the node logs it.
func (s *Service) integrityFailure(ctx context.Context, caller audit.Principal, store tenancy.Scope, id, part string) {
	entry, err := caller.Entry(s.now().UTC(), "blob.integrity_failure", "blob:"+id, audit.OutcomeFailure,
		map[string]string{"part": part}).Encode()
	if err != nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.apply(actx, store, &tenancy.Txn{Audit: [][]byte{entry}})
}

// chunk reads and opens chunk i into dst. The caller read the metadata
// linearizably, so the local state holds the chunks: a local read.
func (c *Content) chunk(ctx context.Context, i uint64, dst []byte) ([]byte, error) {
	if i >= c.count {
		return dst[:0], nil
	}
	var sealed []byte
	if err := c.store.View(ctx, raftstore.Stale, func(r tenancy.Read) error {
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
				r.c.s.integrityFailure(r.ctx, r.c.caller, r.c.store, r.c.ID, fmt.Sprint(r.next))
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
