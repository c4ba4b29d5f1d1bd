package apitls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pair is a self-signed certificate for "localhost" and 127.0.0.1 with
// common name cn, and its key, both PEM.
func pair(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// replace writes data to path as certificate managers do: a new file
// renamed over the old one.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// server serves cfg on loopback: every connection gets its first line
// echoed back, as often as it sends one.
func server(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// dial connects with TLS (versions min..max) and returns the connection
// and the common name of the certificate it was shown.
func dial(t *testing.T, addr string, min, max uint16) (*tls.Conn, string, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: min, MaxVersion: max})
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(func() { c.Close() })
	return c, c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func echo(t *testing.T, c *tls.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("write on an open connection: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read on an open connection: %q %v", buf, err)
	}
}

func TestReloaderServesReplacedFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	certA, keyA := pair(t, "A")
	certB, keyB := pair(t, "B")
	certC, keyC := pair(t, "C")
	replace(t, certFile, certA)
	replace(t, keyFile, keyA)
	r, err := NewReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := server(t, ServerConfig(r, tls.VersionTLS13, nil))

	open, cn, err := dial(t, addr, tls.VersionTLS13, tls.VersionTLS13)
	if err != nil || cn != "A" {
		t.Fatalf("first handshake: %q %v", cn, err)
	}
	echo(t, open)

	// The certificate replaced first, the key not yet: the pair does not
	// load and A stays in service.
	replace(t, certFile, certB)
	if _, cn, err := dial(t, addr, tls.VersionTLS13, tls.VersionTLS13); err != nil || cn != "A" {
		t.Fatalf("half-replaced pair: served %q, %v; want A", cn, err)
	}
	replace(t, keyFile, keyB)
	if _, cn, err := dial(t, addr, tls.VersionTLS13, tls.VersionTLS13); err != nil || cn != "B" {
		t.Fatalf("after the replacement: served %q, %v; want B", cn, err)
	}
	// The connection opened before the replacement still works.
	echo(t, open)

	// Rewritten in place (same files, no rename): seen too.
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, keyC}, {certFile, certC}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, cn, err := dial(t, addr, tls.VersionTLS13, tls.VersionTLS13); err != nil || cn != "C" {
		t.Fatalf("after rewriting in place: served %q, %v; want C", cn, err)
	}
	if r.Leaf().Subject.CommonName != "C" {
		t.Errorf("Leaf = %s, want C", r.Leaf().Subject)
	}
}

func TestReloaderReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	certA, keyA := pair(t, "A")
	replace(t, certFile, certA)
	replace(t, keyFile, keyA)
	r, err := NewReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	replace(t, keyFile, []byte("not a key"))
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a broken pair succeeded")
	}
	if cn := r.Leaf().Subject.CommonName; cn != "A" {
		t.Fatalf("after a failed Reload serving %q, want A", cn)
	}
	certB, keyB := pair(t, "B")
	replace(t, certFile, certB)
	replace(t, keyFile, keyB)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := r.Leaf().Subject.CommonName; cn != "B" {
		t.Fatalf("after Reload serving %q, want B", cn)
	}
}

func TestNewReloaderRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := pair(t, "A")
	_, keyB := pair(t, "B")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct{ name, cert, key string }{
		{"missing cert", filepath.Join(dir, "none.crt"), write("a.key", keyA)},
		{"missing key", write("a.crt", certA), filepath.Join(dir, "none.key")},
		{"key of another certificate", write("a.crt", certA), write("b.key", keyB)},
		{"not PEM", write("junk.crt", []byte("junk")), write("a.key", keyA)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewReloader(tt.cert, tt.key, nil); err == nil {
				t.Fatal("loaded")
			}
		})
	}
}

func TestServerConfigMinVersion(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	certA, keyA := pair(t, "A")
	replace(t, certFile, certA)
	replace(t, keyFile, keyA)
	r, err := NewReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		setting    string
		client     uint16 // the client's highest version
		handshakes bool
	}{
		{"1.3", tls.VersionTLS13, true},
		{"1.3", tls.VersionTLS12, false},
		{"1.2", tls.VersionTLS12, true},
		{"1.2", tls.VersionTLS13, true},
		{"1.2", tls.VersionTLS11, false},
	} {
		min, err := ParseMinVersion(tt.setting)
		if err != nil {
			t.Fatal(err)
		}
		addr := server(t, ServerConfig(r, min, nil))
		_, _, err = dial(t, addr, tls.VersionTLS10, tt.client)
		if (err == nil) != tt.handshakes {
			t.Errorf("tls_min_version %s, client up to %s: handshake error %v, want handshake %v", tt.setting, tls.VersionName(tt.client), err, tt.handshakes)
		}
	}
	for _, bad := range []string{"", "1.1", "1.0", "1.4", "tls1.3", " 1.3"} {
		if _, err := ParseMinVersion(bad); err == nil {
			t.Errorf("ParseMinVersion(%q) accepted", bad)
		}
	}
}
