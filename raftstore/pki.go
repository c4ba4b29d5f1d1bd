package raftstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serverName is the DNS name every node certificate carries, so that TLS
// verification checks cluster membership (signed by the cluster CA) without
// tying certificates to addresses that may change.
const serverName = "node.custos.cluster"

// Credentials are a node's cluster identity: the cluster CA (certificate and
// key, so that any node can admit a joining node) and the node's own
// certificate and key, all PEM.
type Credentials struct {
	CACert, CAKey     []byte
	NodeCert, NodeKey []byte
}

// credential file names inside a node's TLS directory.
const (
	fileCACert   = "ca.crt"
	fileCAKey    = "ca.key"
	fileNodeCert = "node.crt"
	fileNodeKey  = "node.key"
)

// NewClusterCredentials creates a cluster CA and a certificate for the first
// node.
func NewClusterCredentials(nodeID string) (*Credentials, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("raftstore: generate ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "custos cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("raftstore: create ca: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return nil, err
	}
	c := &Credentials{
		CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		CAKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if c.NodeCert, err = c.IssueNodeCert(nodeID, &nodeKey.PublicKey); err != nil {
		return nil, err
	}
	nk, err := x509.MarshalECPrivateKey(nodeKey)
	if err != nil {
		return nil, err
	}
	c.NodeKey = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: nk})
	return c, nil
}

// IssueNodeCert signs a certificate for nodeID's public key with the CA.
func (c *Credentials) IssueNodeCert(nodeID string, pub any) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: nodeID},
		DNSNames:     []string{serverName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	cert, err := c.sign(tmpl, pub)
	if err != nil {
		return nil, fmt.Errorf("raftstore: issue node certificate: %w", err)
	}
	return cert, nil
}

// IssueServerCert makes a new key and a server certificate signed by the
// CA for the given DNS names and IP addresses, valid for validity: what
// the HTTP API serves when the operator brings no certificate of their own
// (appliance/apitls). Both are PEM.
func (c *Credentials) IssueServerCert(commonName string, dnsNames []string, ips []net.IP, validity time.Duration) (cert, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: commonName},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if cert, err = c.sign(tmpl, &k.PublicKey); err != nil {
		return nil, nil, fmt.Errorf("raftstore: issue server certificate: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: issue server certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// sign signs tmpl for pub with the CA and returns the certificate as PEM.
func (c *Credentials) sign(tmpl *x509.Certificate, pub any) ([]byte, error) {
	ca, err := tls.X509KeyPair(c.CACert, c.CAKey)
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, ca.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CAFingerprint is the hex SHA-256 of the CA certificate (DER); join tokens
// carry it so that a joining node can authenticate the cluster.
func (c *Credentials) CAFingerprint() (string, error) {
	b, _ := pem.Decode(c.CACert)
	if b == nil {
		return "", errors.New("raftstore: ca certificate is not PEM")
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// tlsConfigs returns the server and client TLS configurations for mutual
// TLS between nodes. The server also accepts clients without a certificate,
// for the join handshake only; the mux refuses them on every other channel.
func (c *Credentials) tlsConfigs() (server, client *tls.Config, err error) {
	pair, err := tls.X509KeyPair(c.NodeCert, c.NodeKey)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: load node certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CACert) {
		return nil, nil, errors.New("raftstore: bad ca certificate")
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client, nil
}

// SaveCredentials writes the credentials into dir with owner-only modes.
func SaveCredentials(dir string, c *Credentials) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("raftstore: save credentials: %w", err)
	}
	files := map[string][]byte{fileCACert: c.CACert, fileCAKey: c.CAKey, fileNodeCert: c.NodeCert, fileNodeKey: c.NodeKey}
	for name, data := range files {
		if err := WriteFileAtomic(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("raftstore: save credentials: %w", err)
		}
	}
	return syncDir(dir)
}

// LoadCredentials reads credentials saved by SaveCredentials. It returns an
// error wrapping os.ErrNotExist when there are none.
func LoadCredentials(dir string) (*Credentials, error) {
	var c Credentials
	for name, dst := range map[string]*[]byte{fileCACert: &c.CACert, fileCAKey: &c.CAKey, fileNodeCert: &c.NodeCert, fileNodeKey: &c.NodeKey} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("raftstore: load credentials: %w", err)
		}
		*dst = b
	}
	return &c, nil
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}
