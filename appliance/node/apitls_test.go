package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/node"
	"github.com/custos/custos/internal/testkit"
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

// An API key bound to a client certificate (client_cert_cn) works over
// mutual TLS with a certificate of the node's client CA
// (api.tls_client_ca_file) bearing that common name, and only so: no
// certificate, another common name, or the right name from another CA
// is not enough. The operator's token needs no
// certificate.
func TestAPIKeyBoundToClientCert(t *testing.T) {
	dir := t.TempDir()
	clients, stranger := testkit.NewCA(t, "clients CA"), testkit.NewCA(t, "stranger CA")
	caFile := filepath.Join(dir, "clients-ca.crt")
	if err := os.WriteFile(caFile, clients.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := devConfig(t)
	cfg.Dev, cfg.NodeID, cfg.DataDir, cfg.Region = false, "n1", filepath.Join(dir, "n1"), "local"
	cfg.API.TLSClientCAFile = caFile
	sec, err := node.Init(cfg.DataDir, "n1", node.InitOptions{Region: "local"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode(t, n)
	roots, err := client.LoadCACert(node.CACertPath(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	op := client.New(n.APIURL(), client.Options{Token: sec.OperatorToken, RootCAs: roots, Timeout: 10 * time.Second})
	if _, err := op.CreateTenant(ctx, client.NewTenant{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	k, err := op.CreateAPIKey(ctx, "acme", client.NewAPIKey{Name: "billing", Role: "read-only", ClientCertCN: "billing-app"})
	if err != nil || k.ClientCertCN != "billing-app" {
		t.Fatalf("create the bound key: %+v %v", k, err)
	}
	pair := func(ca *testkit.CA, cn string) []tls.Certificate {
		c, err := tls.X509KeyPair(ca.Issue(t, cn, true))
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	for _, tt := range []struct {
		name   string
		certs  []tls.Certificate
		status int // 0: answered
	}{
		{"its certificate", pair(clients, "billing-app"), 0},
		{"no certificate", nil, http.StatusUnauthorized},
		{"another common name", pair(clients, "reports-app"), http.StatusUnauthorized},
		// Go's client presents no certificate of a CA the server does
		// not name (and a server would refuse it at the handshake).
		{"the name from another CA", pair(stranger, "billing-app"), http.StatusUnauthorized},
	} {
		api := client.New(n.APIURL(), client.Options{Token: k.Token, RootCAs: roots, Certificates: tt.certs, Timeout: 10 * time.Second})
		_, err := api.Collections(ctx, "acme")
		var ce *client.Error
		switch {
		case tt.status == 0 && err != nil,
			tt.status > 0 && (!errors.As(err, &ce) || ce.Status != tt.status):
			t.Errorf("%s: %v, want %d", tt.name, err, tt.status)
		}
	}
}
