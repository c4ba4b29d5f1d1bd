package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2ETLS is issue 14's acceptance 1: a three-node cluster serves TLS
// on every API with certificates issued from the cluster CA at init and
// join; the CLI and the tests talk HTTPS trusting that CA (the harness
// does it for every cluster test); TLS 1.2 and plain HTTP are refused by
// default; a certificate replaced on disk is served by the running
// process, while a connection opened before goes on working; SIGHUP
// re-reads it and no longer ends the process.
func TestE2ETLS(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	must := e2e.Must(t)

	get := func(hc *http.Client, url string) (*http.Response, error) {
		resp, err := hc.Get(url + "/v1/sys/health")
		if err == nil {
			drain(resp) // read in full: the connection stays open for reuse
		}
		return resp, err
	}
	tls12 := c.TLSConfig()
	tls12.MaxVersion = tls.VersionTLS12
	for _, n := range c.Nodes {
		resp, err := get(c.HTTPClient(10*time.Second), n.URL())
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTPS with the cluster CA: %v", n.ID, err)
		}
		if v := resp.TLS.Version; v != tls.VersionTLS13 {
			t.Errorf("%s: negotiated %s, want TLS 1.3", n.ID, tls.VersionName(v))
		}
		if _, err := get(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tls12}}, n.URL()); err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("%s: a TLS 1.2 client: %v, want refused (protocol version)", n.ID, err)
		}
		if resp, err := get(&http.Client{Timeout: 10 * time.Second}, "http://"+n.APIAddr); err == nil {
			t.Errorf("%s: plain HTTP answered %d, want refused", n.ID, resp.StatusCode)
		}
		if _, err := get(&http.Client{Timeout: 10 * time.Second}, n.URL()); err == nil {
			t.Errorf("%s: a client trusting only the system's roots accepted the node's certificate", n.ID)
		}
	}

	// The CLI: the CA from --ca-cert (c.CLI) or CUSTOS_CACERT; another CA
	// is refused.
	n1, n2 := c.Nodes[0], c.Nodes[1]
	must(c.CLI(n1, "status"), "status over HTTPS")
	must(e2e.RunCLIWith(t, bin, e2e.CLIInput{Env: []string{"CUSTOS_CACERT=" + c.CACertFile(), "CUSTOS_ADDR=" + n2.URL(), "CUSTOS_TOKEN=" + c.Token}}, "status"), "status with CUSTOS_CACERT")
	otherCA := testkit.NewCA(t, "operator CA")
	dir := t.TempDir()
	otherCAFile := filepath.Join(dir, "other-ca.crt")
	writeFile(t, otherCAFile, otherCA.PEM)
	if r := e2e.RunCLI(t, bin, "--addr", n1.URL(), "--ca-cert", otherCAFile, "--token", c.Token, "status"); r.Code == 0 || !strings.Contains(r.Stderr, "certificate") {
		t.Errorf("the CLI trusting another CA: %v, want a certificate error", r)
	}

	// A keep-alive connection opened before the replacement.
	keep := c.HTTPClient(10 * time.Second)
	if resp, err := get(keep, n1.URL()); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("before the replacement: %v", err)
	}

	// The operator replaces n1's certificate on disk with one of their own
	// CA (key first, then the certificate, each renamed into place).
	certPEM, keyPEM := otherCA.Issue(t, "replaced", false)
	tlsDir := filepath.Join(n1.DataDir, "tls")
	for _, f := range []struct {
		name string
		data []byte
	}{{"api.key", keyPEM}, {"api.crt", certPEM}} {
		writeFile(t, filepath.Join(tlsDir, f.name+".new"), f.data)
		if err := os.Rename(filepath.Join(tlsDir, f.name+".new"), filepath.Join(tlsDir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
	pid := n1.Proc.PID()
	otherRoots := x509.NewCertPool()
	otherRoots.AppendCertsFromPEM(otherCA.PEM)
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: otherRoots}}}
	resp, err := get(fresh, n1.URL())
	if err != nil || resp.StatusCode != http.StatusOK || resp.TLS.PeerCertificates[0].Subject.CommonName != "replaced" {
		t.Fatalf("after the replacement, a new connection: %v (want the replaced certificate)", err)
	}
	if n1.Proc.PID() != pid || n1.Proc.Exited() {
		t.Fatal("the node restarted")
	}
	// The old connection is still open and still answers.
	reused := false
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", n1.URL()+"/v1/sys/health", nil)
	if resp, err := keep.Do(req); err != nil || resp.StatusCode != http.StatusOK || !reused {
		t.Errorf("the connection opened before the replacement: %v (reused %v)", err, reused)
	} else {
		drain(resp)
	}

	// SIGHUP re-reads the certificate; the node keeps serving.
	if err := n2.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.Poll(t, 30*time.Second, "the certificate reloaded on SIGHUP", func() error {
		if err := c.CheckAlive(n2); err != nil {
			return err
		}
		if !strings.Contains(readFileString(t, n2.StderrPath), "api certificate loaded") {
			return os.ErrNotExist
		}
		return nil
	})
	must(c.CLI(n2, "status"), "status after SIGHUP")
}

// drain reads a response in full and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
