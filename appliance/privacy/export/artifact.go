package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// chunksPerTxn sealed chunks (1 MiB of archive) go to Raft in one
// transaction, inFlight such transactions at a time, as blobs do.
const (
	chunksPerTxn = 16
	inFlight     = 2
)

// ForRequest answers data-subject request id (of kind access, export or
// portability, verified): it takes the request up (requests' Begin: in
// progress, its subject in the clear), builds and stores the export of
// its subject, and closes the request with the export's id and counts
// (Finish). If the export fails the request stays in progress, to be
// tried again.
func (s *Service) ForRequest(ctx context.Context, caller audit.Principal, tenant, id string, opt Options) (Export, error) {
	if err := opt.normalize(); err != nil {
		return Export{}, err
	}
	if s.src.Requests == nil {
		return Export{}, fmt.Errorf("export: %w", ErrNoRequests)
	}
	if len(caller.Scopes) > 0 {
		return Export{}, ErrScoped
	}
	r, err := s.src.Requests.Begin(ctx, caller, tenant, id, requests.Access, requests.Export, requests.Portability)
	if err != nil {
		return Export{}, err
	}
	x, err := s.Subject(ctx, caller, tenant, r.Subject, r.ID, opt)
	if err != nil {
		return Export{}, err
	}
	if _, err := s.src.Requests.Finish(ctx, caller, tenant, r.ID, requests.Result{Export: x.ID, Counts: x.Counts}); err != nil {
		return Export{}, fmt.Errorf("export: close request %s: %w", r.ID, err)
	}
	return x, nil
}

// Subject builds the export of subject's holdings for request (its id,
// as the manifest names it), stores it sealed and returns it. The
// caller's principal reads every source (its blob reads and listings
// are audited as theirs); the export itself is one subject.export entry
// in the tenant's chain, naming the subject by pseudonym, written with
// the export's metadata.
func (s *Service) Subject(ctx context.Context, caller audit.Principal, tenant, subject, request string, opt Options) (Export, error) {
	if err := opt.normalize(); err != nil {
		return Export{}, err
	}
	if subject == "" {
		return Export{}, fmt.Errorf("export: %w", ErrNoSubject)
	}
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return Export{}, err
	}
	j := &job{caller: caller, tenant: tenant, subject: subject, pseudonym: audit.Pseudonym(akey, "subject", subject),
		request: request, opt: opt}
	return s.store(ctx, j, KindSubject, "subject.export", j.pseudonym)
}

// Tenant builds the export of everything the tenant holds — every
// collection's records and every blob — for the data return at the end of
// a contract; ref names it in the manifest (its request line). The
// manifest's subject is the tenant's pseudonym (kind "tenant"). One
// tenant.export entry in the tenant's chain.
func (s *Service) Tenant(ctx context.Context, caller audit.Principal, tenant, ref string, opt Options) (Export, error) {
	if err := opt.normalize(); err != nil {
		return Export{}, err
	}
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return Export{}, err
	}
	j := &job{caller: caller, tenant: tenant, pseudonym: audit.Pseudonym(akey, "tenant", tenant), request: ref, opt: opt}
	return s.store(ctx, j, KindTenant, "tenant.export", tenancy.AuditTarget(tenant))
}

// store builds j into a new sealed export: a fresh data key for it
// (keySubject), a marker, the chunks as the archive is written, then the
// metadata and the audit entry in one transaction that removes the
// marker. On failure what was stored is removed and the key shredded.
func (s *Service) store(ctx context.Context, j *job, kind, action, target string) (Export, error) {
	if len(j.caller.Scopes) > 0 {
		return Export{}, ErrScoped
	}
	id := newID()
	if j.request == "" {
		j.request = id
	}
	store := s.scope(j.caller, j.tenant)
	key, err := s.keys.DataKey(ctx, j.tenant, keySubject(id))
	if err != nil {
		return Export{}, err
	}
	chunks, err := keyring.NewChunks(key, place(j.tenant, id))
	if err != nil {
		return Export{}, err
	}
	j.now = s.now().UTC()
	e, err := s.write(ctx, j, store, id, chunks, kind, action, target)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := s.remove(dctx, audit.System(), j.tenant, id, 0, "", nil); derr != nil {
			err = fmt.Errorf("%w (cleanup left to the sweeper: %v)", err, derr)
		}
		return Export{}, err
	}
	return e, nil
}

// write builds the archive into sealed chunks and commits the export.
func (s *Service) write(ctx context.Context, j *job, store tenancy.Scope, id string, chunks *keyring.Chunks, kind, action, target string) (Export, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	sw := &sealWriter{chunks: chunks, id: id, h: sha256.New(), buf: make([]byte, 0, keyring.ChunkSize)}
	// The first chunk transaction writes the build's marker (an export
	// of at most chunksPerTxn chunks has none: its one transaction is
	// the commit); it waits for it, so that the later ones, conditioned
	// on the marker, never meet a build that lost it.
	sent := 0
	sw.send = func(ops []raftstore.Op) {
		ops = append(ops, s.markerOp(id, j.now, s.now().UTC()))
		cond := raftstore.Cond{Kind: raftstore.CondPresent, Bucket: pendingPath, Key: []byte(id)}
		if sent == 0 {
			cond = raftstore.Cond{Kind: raftstore.CondAbsent, Bucket: metaPath, Key: []byte(id)}
		}
		txn := &tenancy.Txn{Conds: []raftstore.Cond{cond}, Ops: ops}
		run := func() error {
			if err := apply(gctx, store, txn); err != nil {
				return fmt.Errorf("export: store chunks: %w", err)
			}
			return nil
		}
		if sent++; sent == 1 {
			if err := run(); err != nil {
				g.Go(func() error { return err })
			}
			return
		}
		g.Go(run)
	}
	sw.ctx = gctx
	built, berr := s.build(gctx, j, sw)
	var ops []raftstore.Op
	if berr == nil {
		ops, berr = sw.close()
	}
	if err := g.Wait(); err != nil {
		return Export{}, err
	}
	if berr != nil {
		return Export{}, berr
	}
	e := Export{ID: id, Kind: kind, Request: j.request, Subject: j.pseudonym, Format: j.opt.Format, Compression: j.opt.Packaging,
		From: timePtr(j.opt.From), To: timePtr(j.opt.To), Size: sw.size, SHA256: hex.EncodeToString(sw.h.Sum(nil)),
		Counts: built.Counts, CreatedAt: j.now, ExpiresAt: j.now.Add(s.cfg.TTL), Manifest: string(built.Signed)}
	e.FileName = fileName(e)
	meta, err := json.Marshal(stored{Export: e, Header: chunks.Header()})
	if err != nil {
		return Export{}, err
	}
	ops = append(ops,
		raftstore.Op{Kind: raftstore.OpPut, Bucket: metaPath, Key: []byte(id), Value: meta},
		raftstore.Op{Kind: raftstore.OpDelete, Bucket: pendingPath, Key: []byte(id)})
	entry, err := j.caller.Entry(s.now().UTC(), action, target, audit.OutcomeSuccess, describe(e)).Encode()
	if err != nil {
		return Export{}, err
	}
	commit := raftstore.Cond{Kind: raftstore.CondPresent, Bucket: pendingPath, Key: []byte(id)}
	if sent == 0 {
		commit = raftstore.Cond{Kind: raftstore.CondAbsent, Bucket: metaPath, Key: []byte(id)}
	}
	if err := apply(ctx, store, &tenancy.Txn{
		Conds: []raftstore.Cond{commit},
		Ops:   ops,
		Audit: [][]byte{entry},
	}); err != nil {
		return Export{}, fmt.Errorf("export: commit: %w", err)
	}
	return e, nil
}

// sealWriter seals what is written to it in keyring.ChunkSize chunks (a
// chunk is sealed once it is known whether more follows: the last is
// flagged) and hands them to send chunksPerTxn at a time.
type sealWriter struct {
	ctx    context.Context
	chunks *keyring.Chunks
	id     string
	send   func([]raftstore.Op)
	buf    []byte
	index  uint64
	ops    []raftstore.Op
	h      hash.Hash // of the archive's bytes
	size   int64
}

func (w *sealWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n := len(p)
	w.h.Write(p)
	w.size += int64(n)
	for len(p) > 0 {
		if len(w.buf) == keyring.ChunkSize {
			if err := w.seal(false); err != nil {
				return 0, err
			}
		}
		k := copy(w.buf[len(w.buf):keyring.ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
	}
	return n, nil
}

func (w *sealWriter) seal(last bool) error {
	sealed, err := w.chunks.Seal(make([]byte, 0, len(w.buf)+keyring.ChunkOverhead), w.index, last, w.buf)
	if err != nil {
		return err
	}
	w.ops = append(w.ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: chunksPath(w.id), Key: chunkKey(w.index), Value: sealed})
	w.index++
	w.buf = w.buf[:0]
	if len(w.ops) == chunksPerTxn && !last {
		w.send(w.ops)
		w.ops = nil
	}
	return nil
}

// close seals the last chunk and returns the chunks not yet sent.
func (w *sealWriter) close() ([]raftstore.Op, error) {
	if err := w.seal(true); err != nil {
		return nil, err
	}
	return w.ops, nil
}

// read reads an export's metadata through store; an expired one is
// ErrNotFound (the sweeper shreds it soon).
func (s *Service) read(ctx context.Context, store tenancy.Scope, id string) (stored, error) {
	if !ValidID(id) {
		return stored{}, ErrNotFound
	}
	var raw []byte
	var ok bool
	if err := store.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		raw, _, ok = r.Get(metaPath, []byte(id))
		return nil
	}); err != nil {
		return stored{}, fmt.Errorf("export: read: %w", err)
	}
	if !ok {
		return stored{}, ErrNotFound
	}
	var m stored
	if err := json.Unmarshal(raw, &m); err != nil || m.ID != id {
		return stored{}, fmt.Errorf("%w: metadata of %s", ErrIntegrity, id)
	}
	if !s.now().Before(m.ExpiresAt) {
		return stored{}, ErrNotFound
	}
	return m, nil
}

// Get returns an export's metadata.
func (s *Service) Get(ctx context.Context, caller audit.Principal, tenant, id string) (Export, error) {
	m, err := s.read(ctx, s.scope(caller, tenant), id)
	return m.Export, err
}

// List returns the tenant's exports that have not expired, oldest first.
func (s *Service) List(ctx context.Context, caller audit.Principal, tenant string) ([]Export, error) {
	out := []Export{}
	now := s.now()
	err := s.scope(caller, tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		out = out[:0]
		r.Scan(metaPath, nil, 0, func(_, v []byte, _ uint64) bool {
			var m stored
			if json.Unmarshal(v, &m) == nil && now.Before(m.ExpiresAt) {
				out = append(out, m.Export)
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export: list: %w", err)
	}
	sortByCreated(out)
	return out, nil
}

// Download opens export id for caller: its metadata and a reader of the
// archive's bytes, after an export.download entry is committed in the
// tenant's chain. The reader opens one chunk at a time (with ctx's values
// but not its deadline: a download outlives its request's call context)
// and fails if a chunk does not open.
func (s *Service) Download(ctx context.Context, caller audit.Principal, tenant, id string) (Export, io.ReadCloser, error) {
	store := s.scope(caller, tenant)
	m, err := s.read(ctx, store, id)
	if err != nil {
		return Export{}, nil, err
	}
	key, err := s.keys.DataKey(ctx, tenant, keySubject(id))
	if err != nil {
		return Export{}, nil, err
	}
	chunks, err := keyring.OpenChunks(key, place(tenant, id), m.Header)
	if err != nil {
		return Export{}, nil, fmt.Errorf("%w: %s: %v", ErrIntegrity, id, err)
	}
	entry, err := caller.Entry(s.now().UTC(), "export.download", "export:"+id, audit.OutcomeSuccess, describe(m.Export)).Encode()
	if err != nil {
		return Export{}, nil, err
	}
	if err := apply(ctx, store, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: metaPath, Key: []byte(id)}},
		Audit: [][]byte{entry},
	}); err != nil {
		if errors.Is(err, ErrAborted) {
			return Export{}, nil, ErrNotFound
		}
		return Export{}, nil, fmt.Errorf("export: audit the download: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return m.Export, &chunkReader{ctx: rctx, cancel: cancel, store: store, id: id, chunks: chunks, count: keyring.ChunkCount(m.Size)}, nil
}

// chunkReader reads an export's chunks in order.
type chunkReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	store  tenancy.Scope
	id     string
	chunks *keyring.Chunks
	count  uint64
	next   uint64
	buf    []byte
	unread []byte
	err    error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.unread) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.next >= r.count {
			return 0, io.EOF
		}
		var sealed []byte
		i := r.next
		if err := r.store.View(r.ctx, raftstore.Stale, func(rd tenancy.Read) error {
			if v, _, ok := rd.Get(chunksPath(r.id), chunkKey(i)); ok {
				sealed = append(make([]byte, 0, len(v)), v...)
			}
			return nil
		}); err != nil {
			r.err = fmt.Errorf("export: read chunk: %w", err)
			continue
		}
		if sealed == nil {
			r.err = fmt.Errorf("%w: %s: chunk %d is missing", ErrIntegrity, r.id, i)
			continue
		}
		pt, err := r.chunks.Open(r.buf[:0], i, i == r.count-1, sealed)
		if err != nil {
			r.err = fmt.Errorf("%w: %s: chunk %d", ErrIntegrity, r.id, i)
			continue
		}
		r.buf, r.unread = pt, pt
		r.next++
	}
	k := copy(p, r.unread)
	r.unread = r.unread[k:]
	return k, nil
}

func (r *chunkReader) Close() error {
	r.cancel()
	return nil
}
