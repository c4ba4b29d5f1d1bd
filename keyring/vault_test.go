//go:build vault

// Tests of the Vault root against a real Vault server (bin/vault, built by
// `make vault` from the unmodified upstream source). `make test-vault` runs
// them.
package keyring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

type devVault struct {
	addr string
	cmd  *exec.Cmd
	root *vault.Client
}

func startVault(t *testing.T) *devVault {
	t.Helper()
	bin, err := filepath.Abs("../bin/vault")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Vault binary at %s: run `make vault` (make test-vault does): %v", bin, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "server", "-dev", "-dev-listen-address="+addr, "-dev-root-token-id=root")
	logf, _ := os.Create(filepath.Join(t.TempDir(), "vault.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	vc := vault.DefaultConfig()
	vc.Address = "http://" + addr
	c, err := vault.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("root")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if h, err := c.Sys().Health(); err == nil && h.Initialized && !h.Sealed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("vault dev server not healthy in 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"acme-key", "globex-key"} {
		if _, err := c.Logical().Write("transit/keys/"+k, map[string]any{"derived": true}); err != nil {
			t.Fatal(err)
		}
	}
	return &devVault{addr: "http://" + addr, cmd: cmd, root: c}
}

// token makes a token that may use only the given transit key.
func (v *devVault) token(t *testing.T, key string) string {
	t.Helper()
	policy := fmt.Sprintf(`path "transit/encrypt/%[1]s" { capabilities = ["update"] }
path "transit/decrypt/%[1]s" { capabilities = ["update"] }`, key)
	if err := v.root.Sys().PutPolicy("use-"+key, policy); err != nil {
		t.Fatal(err)
	}
	s, err := v.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"use-" + key}})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

func TestVaultRoot(t *testing.T) {
	v := startVault(t)
	ctx := context.Background()
	acmeTok := v.token(t, "acme-key")
	acme, err := NewVaultRoot(VaultConfig{Address: v.addr, Token: acmeTok, Mount: "transit", Key: "acme-key", Derived: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	kek := mustKey(t, 3)
	w, err := acme.WrapKEK(ctx, "acme", kek)
	if err != nil {
		t.Fatal(err)
	}
	got, err := acme.UnwrapKEK(ctx, "acme", w)
	if err != nil || got.raw != kek.raw || got.Version() != 3 {
		t.Fatalf("unwrap: %v", err)
	}
	// Another tenant's context, or another tenant's Vault key and token,
	// cannot unwrap it.
	if _, err := acme.UnwrapKEK(ctx, "globex", w); !errors.Is(err, ErrOpen) {
		t.Fatalf("other context: %v", err)
	}
	globex, _ := NewVaultRoot(VaultConfig{Address: v.addr, Token: v.token(t, "globex-key"), Mount: "transit", Key: "globex-key", Derived: true})
	if _, err := globex.UnwrapKEK(ctx, "acme", w); err == nil {
		t.Fatal("globex's key unwrapped acme's KEK")
	}

	// Revocation behind the cache: a cached key works until its TTL, then
	// reads fail closed; a working token brings service back.
	clk := &fakeClock{}
	cache := NewCache(time.Minute, 10, clk.now)
	load := func(ctx context.Context) (*Key, error) { return acme.UnwrapKEK(ctx, "acme", w) }
	ck := CacheKey{Tenant: "acme", KEK: true, Version: 3}
	if _, err := cache.GetOrLoad(ctx, ck, load); err != nil {
		t.Fatal(err)
	}
	if err := v.root.Auth().Token().RevokeTree(acmeTok); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.GetOrLoad(ctx, ck, load); err != nil {
		t.Fatalf("cached key refused before its TTL: %v", err)
	}
	clk.advance(time.Minute)
	_, err = cache.GetOrLoad(ctx, ck, load)
	if !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("after revocation and TTL: %v, want ErrRootUnavailable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "acme") || strings.Contains(msg, acmeTok) {
		t.Fatalf("error should name the tenant and never the token: %q", msg)
	}
	acme.c.SetToken(v.token(t, "acme-key"))
	if _, err := cache.GetOrLoad(ctx, ck, load); err != nil {
		t.Fatalf("after a new token: %v", err)
	}

	// Vault stopped: fail closed, promptly.
	_ = v.cmd.Process.Signal(syscall.SIGKILL)
	_ = v.cmd.Wait()
	start := time.Now()
	if _, err := acme.UnwrapKEK(ctx, "acme", w); !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("vault down: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing closed took %v", d)
	}
}
