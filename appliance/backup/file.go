package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

var (
	// ErrIdentity: none of the identities given opens the backup.
	ErrIdentity = errors.New("backup: the identity does not open this backup (it was encrypted to other recipients)")
	// ErrDamaged: the backup was altered or cut short.
	ErrDamaged = errors.New("backup: the backup is damaged or was altered")
	// ErrSignature: the manifest's signature is not the cluster's audit
	// key's, or the manifest does not describe the state.
	ErrSignature = errors.New("backup: the manifest does not verify")
)

// maxManifest bounds a manifest's signed note (a line per tenant and per
// chain: a few hundred thousand tenants).
const maxManifest = 64 << 20

// Dumper writes a consistent dump of the state; *raftstore.Store is one.
type Dumper interface {
	Dump(ctx context.Context, w io.Writer) (raftstore.DumpInfo, error)
}

// sumWriter hashes and counts what passes.
type sumWriter struct {
	w io.Writer
	h hash.Hash
	n uint64
}

func (s *sumWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.h.Write(p[:n])
	s.n += uint64(n)
	return n, err
}

// Write writes a backup to w: the state dump d makes, then its manifest
// signed by signer, all encrypted with age to recipients. On an error w
// holds a file that does not decrypt (age authenticates its end).
func Write(ctx context.Context, w io.Writer, d Dumper, recipients []age.Recipient, signer note.Signer, now time.Time) (Manifest, error) {
	enc, err := age.Encrypt(w, recipients...)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: encrypt: %w", err)
	}
	sw := &sumWriter{w: enc, h: sha256.New()}
	info, err := d.Dump(ctx, sw)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	m := manifestOf(info, now)
	m.Size = sw.n
	copy(m.SHA256[:], sw.h.Sum(nil))
	msg, err := note.Sign(&note.Note{Text: m.Text()}, signer)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: sign manifest: %w", err)
	}
	if _, err := enc.Write(msg); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	if err := enc.Close(); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

// sumReader hashes and counts what is read through it, byte by byte or
// in blocks: what LoadDump consumes is exactly the dump.
type sumReader struct {
	r *bufio.Reader
	h hash.Hash
	n uint64
}

func (s *sumReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	s.n += uint64(n)
	return n, err
}

func (s *sumReader) ReadByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == nil {
		s.h.Write([]byte{b})
		s.n++
	}
	return b, err
}

// ReadOptions are a read's choices.
type ReadOptions struct {
	// AuditKey, when set, is the audit verifier key the manifest must be
	// signed with (what `operator init` printed). Unset, the key recorded
	// in the backup's own state is used and returned.
	AuditKey string
}

// Read decrypts the backup r holds with ids, loads its state into a new
// state file at statePath, and checks it: the manifest signed by the
// audit key, its digest that of the dump, its index and audit chains the
// loaded state's. On any failure statePath does not exist afterwards.
// It returns the manifest and the audit verifier key it verified with.
func Read(ctx context.Context, r io.Reader, ids []age.Identity, statePath string, o ReadOptions) (Manifest, string, error) {
	dec, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return Manifest{}, "", ErrIdentity
		}
		return Manifest{}, "", fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	// Decryption runs ahead of the load on another core.
	ahead := readAhead(ctx, dec)
	defer ahead.Close()
	sr := &sumReader{r: bufio.NewReaderSize(ahead, 1<<20), h: sha256.New()}
	info, err := raftstore.LoadDump(statePath, sr)
	if err != nil {
		return Manifest{}, "", fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	ok := false
	defer func() {
		if !ok {
			removeState(statePath)
		}
	}()
	var sum [32]byte
	copy(sum[:], sr.h.Sum(nil))
	msg, err := io.ReadAll(io.LimitReader(sr.r, maxManifest))
	if err != nil {
		return Manifest{}, "", fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	vkey := strings.TrimSpace(o.AuditKey)
	if vkey == "" {
		if vkey, err = stateAuditKey(ctx, statePath); err != nil {
			return Manifest{}, "", err
		}
	}
	v, err := audit.Verifier([]byte(vkey))
	if err != nil {
		return Manifest{}, "", err
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Manifest{}, "", fmt.Errorf("%w: %v", ErrSignature, err)
	}
	m, err := ParseManifest(n.Text)
	if err != nil {
		return Manifest{}, "", fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if m.SHA256 != sum || m.Size != sr.n {
		return Manifest{}, "", fmt.Errorf("%w: the state's digest is not the manifest's", ErrSignature)
	}
	if diff := m.matches(info); diff != "" {
		return Manifest{}, "", fmt.Errorf("%w: %s", ErrSignature, diff)
	}
	ok = true
	return m, vkey, nil
}

// stateAuditKey is the audit verifier key a state file records.
func stateAuditKey(ctx context.Context, statePath string) (string, error) {
	off, err := raftstore.OpenOffline(statePath)
	if err != nil {
		return "", err
	}
	defer off.Close()
	k, err := audit.New(off, nil, nil).VerifierKey(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return k, nil
}

// readAhead reads r on its own goroutine, up to 8 chunks of 1 MiB ahead
// of the caller; Close stops it.
func readAhead(ctx context.Context, r io.Reader) io.ReadCloser {
	type chunk struct {
		b   []byte
		err error
	}
	pr, pw := io.Pipe()
	chunks := make(chan chunk, 8)
	done := make(chan struct{})
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 1<<20)
			n, err := io.ReadFull(r, buf)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			select {
			case chunks <- chunk{buf[:n], err}:
			case <-done:
				return
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		for c := range chunks {
			if len(c.b) > 0 {
				if _, err := pw.Write(c.b); err != nil {
					return
				}
			}
			if c.err != nil {
				pw.CloseWithError(c.err)
				return
			}
		}
		pw.CloseWithError(ctx.Err())
	}()
	return &aheadReader{pr: pr, done: done}
}

type aheadReader struct {
	pr   *io.PipeReader
	done chan struct{}
	once sync.Once
}

func (a *aheadReader) Read(p []byte) (int, error) { return a.pr.Read(p) }

func (a *aheadReader) Close() error {
	a.once.Do(func() { close(a.done) })
	return a.pr.Close()
}

// WriteFile writes a file at path by way of path.partial: fn writes it,
// then it is synced, closed and renamed, so path holds a whole file or
// nothing; on an error path.partial is removed too.
func WriteFile(path string, fn func(w io.Writer) error) error {
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = fn(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
