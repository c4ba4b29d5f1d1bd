package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/custos/custos/appliance/apitls"
	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/raftstore"
)

// The API certificate a node issues itself from the cluster CA, beside
// the cluster credentials in <data_dir>/tls, and how long it is valid:
// re-issued at start when less than apiCertRenew is left (or when the
// node's names changed).
const (
	fileAPICert     = "api.crt"
	fileAPIKey      = "api.key"
	fileCACert      = "ca.crt"
	apiCertValidity = 825 * 24 * time.Hour
	apiCertRenew    = 90 * 24 * time.Hour
)

// CACertPath is the cluster CA certificate in a node's data directory:
// what clients trust the API's issued certificates with (the CLI's
// --ca-cert). It is public; the CA's key beside it is not.
func CACertPath(dataDir string) string { return filepath.Join(dataDir, dirTLS, fileCACert) }

// EnsureAPICertificate issues the node's API certificate from the cluster
// CA in dataDir (see appliance/config's API for the names) unless the
// one there is still current, or the API serves the operator's own
// certificate or plain HTTP. It reports whether it issued one. `operator
// init` and `operator join` call it, and every start, so a node whose
// names changed gets a new certificate at its next start.
func EnsureAPICertificate(cfg *config.Config, dataDir string) (bool, error) {
	if cfg.API.PlainHTTP(cfg.Dev) || cfg.API.TLSCertFile != "" {
		return false, nil
	}
	names, err := nodeNames(cfg)
	if err != nil {
		return false, fmt.Errorf("api certificate: %w", err)
	}
	certPath := filepath.Join(dataDir, dirTLS, fileAPICert)
	switch old, err := os.ReadFile(certPath); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("api certificate: %w", err)
	default:
		if ok, err := apitls.Current(old, names, time.Now(), apiCertRenew); err == nil && ok {
			return false, nil
		}
	}
	creds, err := raftstore.LoadCredentials(filepath.Join(dataDir, dirTLS))
	if err != nil {
		return false, fmt.Errorf("api certificate: %w", err)
	}
	cert, key, err := creds.IssueServerCert(cfg.NodeID, names.DNS, names.NetIPs(), apiCertValidity)
	if err != nil {
		return false, fmt.Errorf("api certificate: %w", err)
	}
	// The key first: until the certificate is replaced too, the pair does
	// not load and a running reloader keeps the previous one.
	for _, f := range []struct {
		name string
		data []byte
	}{{fileAPIKey, key}, {fileAPICert, cert}} {
		if err := raftstore.WriteFileAtomic(filepath.Join(dataDir, dirTLS, f.name), f.data); err != nil {
			return false, fmt.Errorf("api certificate: %w", err)
		}
	}
	return true, nil
}

// nodeNames are the names this node's API certificate is issued for.
func nodeNames(cfg *config.Config) (apitls.Names, error) {
	host, _ := os.Hostname()
	var ifaces []netip.Addr
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ifaces = append(ifaces, p.Addr())
			}
		}
	}
	return apitls.NodeNames(host, cfg.API.ListenAddress, cfg.Cluster.AdvertiseAddress, ifaces, cfg.API.TLSSAN)
}

// apiTLS is the API listener's TLS configuration: the operator's
// certificate files or the node's issued ones, reloaded when they change
// (and by ReloadTLS).
func (n *Node) apiTLS(dataDir string) (*tls.Config, error) {
	cfg := n.cfg.API
	certFile, keyFile := cfg.TLSCertFile, cfg.TLSKeyFile
	if certFile == "" {
		issued, err := EnsureAPICertificate(n.cfg, dataDir)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		if issued {
			n.logger.Info("issued the api certificate from the cluster CA", "path", filepath.Join(dataDir, dirTLS, fileAPICert))
		}
		certFile, keyFile = filepath.Join(dataDir, dirTLS, fileAPICert), filepath.Join(dataDir, dirTLS, fileAPIKey)
	}
	r, err := apitls.NewReloader(certFile, keyFile, n.logger.With("component", "api-tls"))
	if err != nil {
		return nil, fmt.Errorf("node: api certificate: %w", err)
	}
	minVersion, err := apitls.ParseMinVersion(cfg.TLSMinVersion)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	var clientCAs *x509.CertPool
	if cfg.TLSClientCAFile != "" {
		if clientCAs, err = apitls.LoadCAs(cfg.TLSClientCAFile); err != nil {
			return nil, fmt.Errorf("node: api.tls_client_ca_file: %w", err)
		}
	}
	n.certs = r
	return apitls.ServerConfig(r, minVersion, clientCAs), nil
}

// listenAPI opens the API's listener: TLS, or plain HTTP in dev mode or
// with api.insecure_http (which it warns about).
func (n *Node) listenAPI(dataDir string) (net.Listener, error) {
	cfg := n.cfg
	var tc *tls.Config
	if !cfg.API.PlainHTTP(cfg.Dev) {
		var err error
		if tc, err = n.apiTLS(dataDir); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.API.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("node: api listen %s: %w%s", cfg.API.ListenAddress, err, privilegedPortHint(err))
	}
	switch {
	case tc != nil:
		n.logger.Info("api serves TLS", "min_version", cfg.API.TLSMinVersion, "subject", n.certs.Leaf().Subject.String(), "not_after", n.certs.Leaf().NotAfter)
		return tls.NewListener(ln, tc), nil
	case !cfg.Dev:
		n.logger.Warn("INSECURE: the API serves PLAIN HTTP (api.insecure_http = true): bearer tokens and personal data cross the network in the clear. " +
			"Use it only behind a TLS-terminating proxy on this host; remove insecure_http to serve TLS.")
	}
	return ln, nil
}

// ReloadTLS re-reads the API's certificate files (on SIGHUP); a pair that
// does not load leaves the one in service. A node serving plain HTTP has
// nothing to reload.
func (n *Node) ReloadTLS() error {
	if n.certs == nil {
		return nil
	}
	return n.certs.Reload()
}

// APIURL is the base URL of the API: https:// or, serving plain HTTP,
// http://.
func (n *Node) APIURL() string {
	if n.certs == nil {
		return "http://" + n.APIAddress()
	}
	return "https://" + n.APIAddress()
}
