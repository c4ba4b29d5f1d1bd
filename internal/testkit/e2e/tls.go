package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A cluster's nodes serve their API over TLS with certificates issued
// from the cluster CA (`operator init` prints it): the harness's API
// clients and CLI runs trust that CA, as an operator's would with
// --ca-cert. Dev nodes serve plain HTTP.
//
// cas maps the API address (host:port) of every node of a running test
// cluster to its cluster CA, so that NewAPIClient and RunCLI, which are
// given only an address, trust the right CA without being told: tests
// written before the API spoke TLS keep working. It is package state on
// purpose, filled by StartClusterWith and emptied when its test ends;
// ports are unique among the clusters that run at the same time.
var cas struct {
	mu     sync.Mutex
	byAddr map[string]clusterCA
}

// clusterCA is a cluster CA: its file (for the CLI) and as a pool.
type clusterCA struct {
	file  string
	roots *x509.CertPool
}

// registerCA records ca for the API addresses addrs until t ends.
func registerCA(t testing.TB, ca clusterCA, addrs ...string) {
	cas.mu.Lock()
	defer cas.mu.Unlock()
	if cas.byAddr == nil {
		cas.byAddr = map[string]clusterCA{}
	}
	for _, a := range addrs {
		cas.byAddr[a] = ca
	}
	t.Cleanup(func() {
		cas.mu.Lock()
		defer cas.mu.Unlock()
		for _, a := range addrs {
			delete(cas.byAddr, a)
		}
	})
}

// caOf returns the CA of the test cluster serving the API at addr (a URL
// or host:port), if any.
func caOf(addr string) (clusterCA, bool) {
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		addr = rest
	}
	addr, _, _ = strings.Cut(addr, "/")
	cas.mu.Lock()
	defer cas.mu.Unlock()
	ca, ok := cas.byAddr[addr]
	return ca, ok
}

// caEnv is CUSTOS_CACERT for a CLI run whose --addr names a test
// cluster's node and which names no --ca-cert itself.
func caEnv(args []string) []string {
	var addr string
	for i, a := range args {
		switch {
		case a == "--ca-cert" || strings.HasPrefix(a, "--ca-cert="):
			return nil
		case a == "--addr" && i+1 < len(args):
			addr = args[i+1]
		case strings.HasPrefix(a, "--addr="):
			addr = strings.TrimPrefix(a, "--addr=")
		}
	}
	if ca, ok := caOf(addr); ok {
		return []string{"CUSTOS_CACERT=" + ca.file}
	}
	return nil
}

// TrustCA makes the harness's clients of c's nodes trust the cluster CA
// in file (which `operator init` names), as the operator hands it to
// clients: StartCluster calls it; a test that runs `operator init` itself
// calls it after.
func (c *Cluster) TrustCA(file string) {
	c.t.Helper()
	caPEM, err := os.ReadFile(file)
	if err != nil {
		c.t.Fatalf("cluster CA: %v", err)
	}
	c.ca.file = filepath.Join(c.Dir, "ca.crt")
	if err := os.WriteFile(c.ca.file, caPEM, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.ca.roots = x509.NewCertPool()
	if !c.ca.roots.AppendCertsFromPEM(caPEM) {
		c.t.Fatalf("cluster CA %s is not PEM", file)
	}
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.APIAddr)
	}
	registerCA(c.t, c.ca, addrs...)
}

// TrustCAFile makes NewAPIClient and RunCLI trust the CA in file for
// the API addresses addrs until t ends: for a node a test starts by hand
// (a restored one, with a new cluster CA in its data directory).
func TrustCAFile(t testing.TB, file string, addrs ...string) {
	t.Helper()
	caPEM, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("CA: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA %s is not PEM", file)
	}
	registerCA(t, clusterCA{file: file, roots: roots}, addrs...)
}

// URL is the base URL of n's API: https://host:port (http:// in a
// cluster of StartPlainClusterWith).
func (n *Node) URL() string {
	if n.plain {
		return "http://" + n.APIAddr
	}
	return "https://" + n.APIAddr
}

// CACertFile is the cluster CA operator init printed: what clients trust
// the nodes' API certificates with (the CLI's --ca-cert).
func (c *Cluster) CACertFile() string { return c.ca.file }

// TLSConfig is a client TLS configuration that trusts the cluster CA
// (and only it), for tests that make their own http.Transport.
func (c *Cluster) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: c.ca.roots, MinVersion: tls.VersionTLS12}
}

// HTTPClient is an HTTP client of the cluster's nodes with timeout,
// trusting the cluster CA; its idle connections are closed when the test
// ends.
func (c *Cluster) HTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{TLSClientConfig: c.TLSConfig(), MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	c.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: timeout, Transport: tr}
}
