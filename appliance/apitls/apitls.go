// Package apitls is the TLS of the HTTP API: the server's tls.Config
// (TLS 1.3 unless 1.2 is asked for), a certificate pair served from files
// and re-read when they change, the names a node's own certificate is
// issued for, and the parsers of the [api] keys that say so. It knows
// nothing of the appliance and depends only on the standard library, so
// that appliance/config validates with the same parsers the node uses.
//
// # Reloading
//
// [Reloader] hands the server its certificate through
// tls.Config.GetCertificate. At each new handshake it stats the two files
// (their identity, modification time and size) and re-reads the pair when
// either differs from the pair in service; [Reloader.Reload] re-reads them
// unconditionally (the node calls it on SIGHUP). The choice: a stat per
// handshake costs about a microsecond beside a handshake's signature
// (tens of microseconds) and a keep-alive client handshakes once, while a
// file watcher (fsnotify) needs a goroutine, watches directories rather
// than files to survive an atomic rename or a symlink swap (how
// certificate managers and Kubernetes replace them), and still races with
// the writer. A stat sees every one of those replacements, and the next
// handshake after one serves the new certificate: deterministic, and
// testable without waiting.
//
// Connections already open keep the certificate they were set up with;
// nothing is closed. A pair that does not load — a half-written
// replacement, a key that does not match — leaves the one in service in
// place and is logged once; it is tried again when the files change
// again.
//
// # Names
//
// A node without a certificate of the operator's serves one issued by the
// cluster CA for the names [NodeNames] lists: the host's name, localhost,
// the loopback addresses, the API's listen host (every interface address
// when it listens on all of them), the cluster advertise host and the
// operator's extra names (tls_san). [Current] says whether a certificate
// on disk still covers them.
package apitls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// ParseMinVersion parses the tls_min_version setting: "1.3" or "1.2".
// Nothing older is offered: TLS 1.0 and 1.1 are deprecated (RFC 8996).
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.2":
		return tls.VersionTLS12, nil
	}
	return 0, fmt.Errorf("apitls: TLS version must be \"1.3\" or \"1.2\", got %q", s)
}

// ServerConfig is the API server's TLS configuration: the certificate
// from r, minVersion (tls.VersionTLS13 or tls.VersionTLS12), HTTP/1.1
// only (the server speaks no HTTP/2). With clientCAs, it asks every
// client for a certificate and verifies one against them when given; a
// client without one still connects (what a certificate is needed for is
// the caller's to decide: an API key bound to one).
func ServerConfig(r *Reloader, minVersion uint16, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
	if clientCAs != nil {
		c.ClientAuth, c.ClientCAs = tls.VerifyClientCertIfGiven, clientCAs
	}
	return c
}

// LoadCAs reads a PEM file of CA certificates into a pool.
func LoadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apitls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("apitls: %s holds no PEM certificate", path)
	}
	return pool, nil
}
