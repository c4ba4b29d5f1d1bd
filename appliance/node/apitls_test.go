package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/node"
)

// A cluster node serves its API over TLS with a certificate it issued
// itself from the cluster CA at start: clients that trust the CA (and only
// those) connect, TLS 1.2 and plain HTTP are refused, and a second start
// keeps the certificate while its names still match.
func TestNodeServesTLSFromClusterCA(t *testing.T) {
	dir := t.TempDir()
	cfg := devConfig(t)
	cfg.Dev, cfg.NodeID, cfg.DataDir, cfg.Region = false, "n1", dir, "local"
	cfg.API.TLSSAN = []string{"custos.test"}
	if _, err := node.Init(dir, "n1", node.InitOptions{Region: "local"}); err != nil {
		t.Fatal(err)
	}
	if issued, err := node.EnsureAPICertificate(cfg, dir); err != nil || !issued {
		t.Fatalf("EnsureAPICertificate after init: issued %v, %v", issued, err)
	}
	if issued, err := node.EnsureAPICertificate(cfg, dir); err != nil || issued {
		t.Fatalf("EnsureAPICertificate again: issued %v, %v; want the current one kept", issued, err)
	}
	n, err := node.Start(context.Background(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode(t, n)
	if !strings.HasPrefix(n.APIURL(), "https://") {
		t.Fatalf("APIURL = %s, want https://", n.APIURL())
	}
	caPEM, err := os.ReadFile(node.CACertPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	get := func(url string, tc *tls.Config) (*http.Response, error) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(url + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get(n.APIURL(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("HTTPS with the cluster CA: %v", err)
	}
	if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("connection state %+v, want TLS 1.3", resp.TLS)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname("custos.test"); err != nil {
		t.Errorf("the issued certificate lacks the tls_san name: %v", err)
	}
	for _, tt := range []struct {
		name string
		url  string
		tc   *tls.Config
	}{
		{"system roots only", n.APIURL(), nil},
		{"TLS 1.2", n.APIURL(), &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}},
		{"plain HTTP", "http://" + n.APIAddress(), nil},
	} {
		if resp, err := get(tt.url, tt.tc); err == nil && resp.StatusCode == http.StatusOK {
			t.Errorf("%s: answered %d, want refused", tt.name, resp.StatusCode)
		}
	}
	if err := n.ReloadTLS(); err != nil {
		t.Errorf("ReloadTLS: %v", err)
	}
}
