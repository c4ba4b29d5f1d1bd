package apitls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// Reloader serves a certificate pair from two PEM files and re-reads them
// when they change (see the package doc). It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	cur atomic.Pointer[loaded] // the pair in service

	mu     sync.Mutex // serializes loads
	failed stamps     // the files' stamps at the last failed load, logged once
}

// loaded is a pair in service and the stamps of the files it came from.
type loaded struct {
	cert   *tls.Certificate
	stamps stamps
}

// stamps identify the versions of the two files: what a stat returns.
type stamps [2]os.FileInfo

// same reports whether a and b are stamps of the same versions of the
// files: the same files (device and inode), modification time and size.
func (a stamps) same(b stamps) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil {
			return a[i] == nil && b[i] == nil
		}
		if !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}

// NewReloader loads the pair from certFile and keyFile; an error if it
// does not load. logger (nil: none) hears of reloads and failed ones.
func NewReloader(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: logger}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	l, err := r.load(st)
	if err != nil {
		return nil, err
	}
	r.cur.Store(l)
	return r, nil
}

// GetCertificate is the tls.Config hook: the pair in service, re-read
// first if either file has changed since it was loaded.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cur := r.cur.Load()
	st, err := r.stat()
	if err != nil || st.same(cur.stamps) {
		// A file that cannot be stated now (being replaced) changes
		// nothing: the pair in service stays.
		return cur.cert, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur = r.cur.Load(); st.same(cur.stamps) || st.same(r.failed) {
		return cur.cert, nil
	}
	if err := r.reloadLocked(st); err != nil {
		r.failed = st
		r.logger.Error("api certificate changed on disk but does not load; still serving the previous one", "cert_file", r.certFile, "key_file", r.keyFile, "error", err)
	}
	return r.cur.Load().cert, nil
}

// Reload re-reads the pair whether or not the files look changed (on
// SIGHUP). On an error the pair in service stays.
func (r *Reloader) Reload() error {
	st, err := r.stat()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(st)
}

// Leaf is the certificate in service.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().cert.Leaf }

func (r *Reloader) reloadLocked(st stamps) error {
	l, err := r.load(st)
	if err != nil {
		return err
	}
	r.cur.Store(l)
	r.logger.Info("api certificate loaded", "cert_file", r.certFile, "subject", l.cert.Leaf.Subject.String(), "not_after", l.cert.Leaf.NotAfter)
	return nil
}

// load reads and parses the pair; st are the files' stamps taken before
// reading them, so that a change during the read is seen at the next stat.
func (r *Reloader) load(st stamps) (*loaded, error) {
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return nil, fmt.Errorf("apitls: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("apitls: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("apitls: %s and %s: %w", r.certFile, r.keyFile, err)
	}
	return &loaded{cert: &cert, stamps: st}, nil
}

func (r *Reloader) stat() (stamps, error) {
	var st stamps
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return stamps{}, fmt.Errorf("apitls: %w", err)
		}
		st[i] = fi
	}
	return st, nil
}
