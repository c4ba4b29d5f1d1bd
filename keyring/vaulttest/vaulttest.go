//go:build vault

// Package vaulttest runs a real Vault dev server (bin/vault, built by `make
// vault` from the unmodified upstream source) on 127.0.0.1 for the tests
// tagged vault: the keyring's Vault root and the end-to-end Vault tenant.
// Nothing about Vault is faked; the helpers only drive its real API (mounts,
// keys, policies, tokens, AppRole) with the root token.
package vaulttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/custos/custos/internal/testkit"
)

// Server is a running Vault dev server with a transit mount and two
// derived keys, acme-key and globex-key.
type Server struct {
	Addr  string        // http(s)://127.0.0.1:port
	Cmd   *exec.Cmd     // the vault process
	Root  *vault.Client // a client with the root token
	CAPEM []byte        // the dev CA, when serving TLS
}

// Start starts the Vault binary at bin (relative to the test's package
// directory) in dev mode, over HTTPS with a dev CA when withTLS. The
// server is killed when the test ends.
func Start(t testing.TB, bin string, withTLS bool) *Server {
	t.Helper()
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Vault binary at %s: run `make vault` (make test and make test-vault do): %v", bin, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"server", "-dev", "-dev-listen-address=" + addr, "-dev-root-token-id=root"}
	certDir, scheme := t.TempDir(), "http"
	if withTLS {
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
		scheme = "https"
	}
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(t.TempDir(), "vault.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })

	v := &Server{Addr: scheme + "://" + addr, Cmd: cmd}
	vc := vault.DefaultConfig()
	vc.Address = v.Addr
	if withTLS {
		testkit.Poll(t, time.Minute, "the dev CA certificate", func() error {
			if v.CAPEM, err = os.ReadFile(filepath.Join(certDir, "vault-ca.pem")); err != nil {
				return err
			}
			if !strings.Contains(string(v.CAPEM), "END CERTIFICATE") {
				return errors.New("not written in full yet")
			}
			return nil
		})
		if err := vc.ConfigureTLS(&vault.TLSConfig{CACertBytes: v.CAPEM}); err != nil {
			t.Fatal(err)
		}
	}
	if v.Root, err = vault.NewClient(vc); err != nil {
		t.Fatal(err)
	}
	v.Root.SetToken("root")
	testkit.Poll(t, time.Minute, "a healthy vault dev server", func() error {
		h, err := v.Root.Sys().Health()
		if err != nil {
			return err
		}
		if !h.Initialized || h.Sealed {
			return fmt.Errorf("initialized %v, sealed %v", h.Initialized, h.Sealed)
		}
		return nil
	})
	if err := v.Root.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"acme-key", "globex-key"} {
		if _, err := v.Root.Logical().Write("transit/keys/"+k, map[string]any{"derived": true}); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// Policy lets its holder use only the given transit key: encrypt, decrypt,
// rewrap, read, rotate, configure and trim it — what Custos needs.
func (v *Server) Policy(t testing.TB, key string) string {
	t.Helper()
	policy := fmt.Sprintf(`path "transit/encrypt/%[1]s" { capabilities = ["update"] }
path "transit/decrypt/%[1]s" { capabilities = ["update"] }
path "transit/rewrap/%[1]s" { capabilities = ["update"] }
path "transit/keys/%[1]s" { capabilities = ["read"] }
path "transit/keys/%[1]s/rotate" { capabilities = ["update"] }
path "transit/keys/%[1]s/config" { capabilities = ["update"] }
path "transit/keys/%[1]s/trim" { capabilities = ["update"] }`, key)
	if err := v.Root.Sys().PutPolicy("use-"+key, policy); err != nil {
		t.Fatal(err)
	}
	return "use-" + key
}

// Token makes a token that may use only the given transit key.
func (v *Server) Token(t testing.TB, key string) string {
	t.Helper()
	s, err := v.Root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{v.Policy(t, key)}})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// Revoke revokes a token and its children.
func (v *Server) Revoke(t testing.TB, token string) {
	t.Helper()
	if err := v.Root.Auth().Token().RevokeTree(token); err != nil {
		t.Fatal(err)
	}
}

// Deny empties the policy of key's tokens: they are refused (403) until
// Policy restores it.
func (v *Server) Deny(t testing.TB, key string) {
	t.Helper()
	if err := v.Root.Sys().PutPolicy("use-"+key, `path "sys/nothing" { capabilities = ["deny"] }`); err != nil {
		t.Fatal(err)
	}
}

// EnableAppRole enables the AppRole auth method at mount.
func (v *Server) EnableAppRole(t testing.TB, mount string) {
	t.Helper()
	if err := v.Root.Sys().EnableAuthWithOptions(mount, &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
}

// AppRole makes an AppRole role at mount whose tokens may use only the
// given transit key, and returns its role id and a new secret id, good for
// uses logins (0 = any number).
func (v *Server) AppRole(t testing.TB, mount, key string, uses int) (roleID, secretID string) {
	t.Helper()
	role := "auth/" + mount + "/role/" + key
	if _, err := v.Root.Logical().Write(role, map[string]any{
		"token_policies":     []string{v.Policy(t, key)},
		"secret_id_num_uses": uses,
	}); err != nil {
		t.Fatal(err)
	}
	s, err := v.Root.Logical().Read(role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID, _ = s.Data["role_id"].(string)
	if s, err = v.Root.Logical().Write(role+"/secret-id", nil); err != nil {
		t.Fatal(err)
	}
	secretID, _ = s.Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatal("no role id or secret id")
	}
	return roleID, secretID
}

// Kill stops the server at once (kill -9) and waits for it.
func (v *Server) Kill() {
	_ = v.Cmd.Process.Kill()
	_ = v.Cmd.Wait()
}
