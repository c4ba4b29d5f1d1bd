//go:build vault

// Tests of the Vault root against a real Vault server (bin/vault, built by
// `make vault` from the unmodified upstream source). `make test` and
// `make test-vault` run them. Each test starts its own dev server.
package keyring

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/keyring/vaulttest"
)

// devVault is a real Vault dev server (keyring/vaulttest).
type devVault = vaulttest.Server

// startVault starts a dev server on 127.0.0.1 with a transit mount and two
// derived keys, acme-key and globex-key.
func startVault(t testing.TB) *devVault { return vaulttest.Start(t, "../bin/vault", false) }

// startVaultTLS is startVault serving HTTPS with a certificate from a dev
// CA (devVault.CAPEM).
func startVaultTLS(t testing.TB) *devVault { return vaulttest.Start(t, "../bin/vault", true) }

func newVaultRoot(t testing.TB, cfg VaultConfig) *VaultRoot {
	t.Helper()
	r, err := NewVaultRoot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// failsClosed checks that err is ErrRootUnavailable, names the tenant,
// says why (want) and holds none of the secrets.
func failsClosed(t *testing.T, err error, tenant, want string, secrets ...string) {
	t.Helper()
	if !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("err = %v, want ErrRootUnavailable", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "tenant "+tenant) || !strings.Contains(msg, want) {
		t.Fatalf("error %q should name tenant %s and say %q", msg, tenant, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Fatalf("error %q reveals a credential", msg)
		}
	}
}

func roundTrip(t *testing.T, r *VaultRoot, tenant string, kek *Key) []byte {
	t.Helper()
	w, err := r.WrapKEK(context.Background(), tenant, kek)
	if err != nil {
		t.Fatal(err)
	}
	unwrapsTo(t, r, tenant, w, kek)
	return w
}

func unwrapsTo(t *testing.T, r *VaultRoot, tenant string, w []byte, kek *Key) {
	t.Helper()
	got, err := r.UnwrapKEK(context.Background(), tenant, w)
	if err != nil {
		t.Fatalf("unwrap %.12s…: %v", w, err)
	}
	if got.raw != kek.raw || got.Version() != kek.Version() {
		t.Fatalf("unwrap %.12s…: another key", w)
	}
}

func transitVersion(t *testing.T, w []byte) int {
	t.Helper()
	n, err := TransitVersion(w)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestVaultRoot(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	ctx := context.Background()
	acmeTok := v.Token(t, "acme-key")
	acme, err := NewVaultRoot(VaultConfig{Address: v.Addr, Token: acmeTok, Mount: "transit", Key: "acme-key", Derived: true, Timeout: 2 * time.Second})
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
	globex, _ := NewVaultRoot(VaultConfig{Address: v.Addr, Token: v.Token(t, "globex-key"), Mount: "transit", Key: "globex-key", Derived: true})
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
	v.Revoke(t, acmeTok)
	if _, err := cache.GetOrLoad(ctx, ck, load); err != nil {
		t.Fatalf("cached key refused before its TTL: %v", err)
	}
	clk.advance(time.Minute)
	_, err = cache.GetOrLoad(ctx, ck, load)
	failsClosed(t, err, "acme", "refused", acmeTok)
	acme.c.SetToken(v.Token(t, "acme-key"))
	if _, err := cache.GetOrLoad(ctx, ck, load); err != nil {
		t.Fatalf("after a new token: %v", err)
	}

	// Vault stopped: fail closed, promptly.
	_ = v.Cmd.Process.Signal(syscall.SIGKILL)
	_ = v.Cmd.Wait()
	start := time.Now()
	if _, err := acme.UnwrapKEK(ctx, "acme", w); !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("vault down: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing closed took %v", d)
	}
}

// AppRole: logged in lazily, once for concurrent first calls, once more
// when the token is revoked or expires; failing closed when that login is
// refused.
func TestVaultAppRole(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	ctx := context.Background()
	v.EnableAppRole(t, "custos-approle")
	// The secret id is good for two logins: the first use and one more.
	roleID, secretID := v.AppRole(t, "custos-approle", "acme-key", 2)
	acme := newVaultRoot(t, VaultConfig{
		Address: v.Addr, AuthMethod: VaultAuthAppRole, RoleID: roleID, SecretID: secretID,
		AuthMount: "custos-approle", Mount: "transit", Key: "acme-key", Derived: true,
	})
	if acme.c.Token() != "" {
		t.Fatal("a token before the first use")
	}

	// Eight first calls at once share one login (a second would use up the
	// secret id, and the re-login below would fail).
	kek := mustKey(t, 1)
	wrapped, errs := make([][]byte, 8), make([]error, 8)
	var wg sync.WaitGroup
	for i := range wrapped {
		wg.Go(func() { wrapped[i], errs[i] = acme.WrapKEK(ctx, "acme", kek) })
	}
	wg.Wait()
	for i := range wrapped {
		if errs[i] != nil {
			t.Fatalf("wrap %d: %v", i, errs[i])
		}
		unwrapsTo(t, acme, "acme", wrapped[i], kek)
	}

	// The token is revoked (as if expired): the next call logs in again.
	first := acme.c.Token()
	v.Revoke(t, first)
	unwrapsTo(t, acme, "acme", wrapped[0], kek)
	second := acme.c.Token()
	if second == first {
		t.Fatal("no new login after the token was revoked")
	}

	// Revoked again, and the secret id is used up: fail closed.
	v.Revoke(t, second)
	_, err := acme.UnwrapKEK(ctx, "acme", wrapped[0])
	failsClosed(t, err, "acme", "refused", roleID, secretID, first, second)

	// A wrong secret id fails on first use, without quoting it.
	wrong := newVaultRoot(t, VaultConfig{
		Address: v.Addr, AuthMethod: VaultAuthAppRole, RoleID: roleID, SecretID: "not-the-secret-id",
		AuthMount: "custos-approle", Mount: "transit", Key: "acme-key", Derived: true,
	})
	_, err = wrong.WrapKEK(ctx, "acme", kek)
	failsClosed(t, err, "acme", "approle login", roleID, "not-the-secret-id")
}

// Rotate, rewrap and trim: old ciphertexts decrypt until trimmed; after
// the trim only the rewrapped ones do, and the old ones are ErrOpen (a
// trimmed version is gone for good: not an outage to wait out).
func TestVaultRotateRewrapTrim(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	ctx := context.Background()
	v.EnableAppRole(t, "approle")
	roleID, secretID := v.AppRole(t, "approle", "acme-key", 0)
	cfg := VaultConfig{
		Address: v.Addr, AuthMethod: VaultAuthAppRole, RoleID: roleID, SecretID: secretID,
		Mount: "transit", Key: "acme-key", Derived: true,
	}
	acme := newVaultRoot(t, cfg)
	keyInfo := func(want TransitKeyInfo) {
		t.Helper()
		got, err := acme.KeyInfo(ctx)
		if err != nil || got != want {
			t.Fatalf("KeyInfo = %+v, %v; want %+v", got, err, want)
		}
	}

	kek := mustKey(t, 1)
	w1 := roundTrip(t, acme, "acme", kek)
	if n := transitVersion(t, w1); n != 1 {
		t.Fatalf("wrapped under transit version %d, want 1", n)
	}
	keyInfo(TransitKeyInfo{LatestVersion: 1, MinDecryptionVersion: 1, Derived: true})

	if n, err := acme.RotateTransit(ctx); err != nil || n != 2 {
		t.Fatalf("RotateTransit = %d, %v; want 2", n, err)
	}
	w2, err := acme.RewrapKEK(ctx, "acme", w1)
	if err != nil {
		t.Fatal(err)
	}
	if n := transitVersion(t, w2); n != 2 {
		t.Fatalf("rewrapped under transit version %d, want 2", n)
	}
	unwrapsTo(t, acme, "acme", w1, kek)
	unwrapsTo(t, acme, "acme", w2, kek)
	if _, err := acme.RewrapKEK(ctx, "globex", w1); !errors.Is(err, ErrOpen) {
		t.Fatalf("rewrap with another tenant's context: %v, want ErrOpen", err)
	}

	// Trim: a version that does not exist yet is refused, and nothing
	// changes.
	if err := acme.Trim(ctx, 3); err == nil {
		t.Fatal("trimmed to a version after the latest")
	}
	keyInfo(TransitKeyInfo{LatestVersion: 2, MinDecryptionVersion: 1, Derived: true})
	if err := acme.Trim(ctx, 2); err != nil {
		t.Fatal(err)
	}
	trimmed := TransitKeyInfo{LatestVersion: 2, MinDecryptionVersion: 2, MinEncryptionVersion: 2, MinAvailableVersion: 2, Derived: true}
	keyInfo(trimmed)
	if _, err := acme.UnwrapKEK(ctx, "acme", w1); !errors.Is(err, ErrOpen) {
		t.Fatalf("unwrap under a trimmed version: %v, want ErrOpen", err)
	}
	if _, err := acme.RewrapKEK(ctx, "acme", w1); !errors.Is(err, ErrOpen) {
		t.Fatalf("rewrap under a trimmed version: %v, want ErrOpen", err)
	}
	unwrapsTo(t, acme, "acme", w2, kek)
	// Trim never lowers a minimum.
	for _, n := range []int{2, 1} {
		if err := acme.Trim(ctx, n); err != nil {
			t.Fatalf("Trim(%d) again: %v", n, err)
		}
		keyInfo(trimmed)
	}

	// Wrapping goes on under the next version.
	if n, err := acme.RotateTransit(ctx); err != nil || n != 3 {
		t.Fatalf("RotateTransit = %d, %v; want 3", n, err)
	}
	if n := transitVersion(t, roundTrip(t, acme, "acme", kek)); n != 3 {
		t.Fatalf("wrapped under transit version %d, want 3", n)
	}

	// The role's policy covers acme's key only.
	other := cfg
	other.Key = "globex-key"
	globex := newVaultRoot(t, other)
	if _, err := globex.RotateTransit(ctx); !errors.Is(err, ErrRootUnavailable) || !strings.Contains(err.Error(), "transit/globex-key") {
		t.Fatalf("rotating another key: %v, want ErrRootUnavailable naming it", err)
	}
	if err := globex.Trim(ctx, 1); !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("trimming another key: %v, want ErrRootUnavailable", err)
	}
}

// TLS: the CA given as PEM (as the cluster stores it) or as a file; without
// it, Vault's certificate is not trusted and the root fails closed.
func TestVaultTLS(t *testing.T) {
	t.Parallel()
	v := startVaultTLS(t)
	tok := v.Token(t, "acme-key")
	cfg := VaultConfig{Address: v.Addr, Token: tok, CACertPEM: v.CAPEM, Mount: "transit", Key: "acme-key", Derived: true}
	kek := mustKey(t, 1)
	roundTrip(t, newVaultRoot(t, cfg), "acme", kek)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, v.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	byFile := cfg
	byFile.CACertPEM, byFile.CACert = nil, caFile
	roundTrip(t, newVaultRoot(t, byFile), "acme", kek)

	noCA := cfg
	noCA.CACertPEM = nil
	_, err := newVaultRoot(t, noCA).WrapKEK(context.Background(), "acme", kek)
	failsClosed(t, err, "acme", "not trusted", tok)

	both := byFile
	both.CACertPEM = v.CAPEM
	if _, err := NewVaultRoot(both); err == nil {
		t.Fatal("accepted a CA file and a CA PEM at once")
	}
	bad := cfg
	bad.CACertPEM = []byte("not a certificate")
	if _, err := NewVaultRoot(bad); err == nil {
		t.Fatal("accepted a CA that is not PEM")
	}
}

// Every way Vault can fail is ErrRootUnavailable naming the tenant, for a
// token and for AppRole, and no error holds a credential.
func TestVaultErrors(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	ctx := context.Background()
	v.EnableAppRole(t, "approle")
	kek := mustKey(t, 1)

	// roots returns a root using a new token and one using AppRole (with a
	// new secret id), both at addr, and the credentials they were given.
	roots := func(addr string, timeout time.Duration) (map[string]*VaultRoot, VaultConfig) {
		cfg := VaultConfig{Address: addr, Mount: "transit", Key: "acme-key", Derived: true, Timeout: timeout}
		cfg.Token = v.Token(t, "acme-key")
		cfg.RoleID, cfg.SecretID = v.AppRole(t, "approle", "acme-key", 0)
		byToken, byAppRole := cfg, cfg
		byToken.RoleID, byToken.SecretID = "", ""
		byAppRole.AuthMethod, byAppRole.Token = VaultAuthAppRole, ""
		return map[string]*VaultRoot{
			"token":   newVaultRoot(t, byToken),
			"approle": newVaultRoot(t, byAppRole),
		}, cfg
	}
	w := roundTrip(t, newVaultRoot(t, VaultConfig{Address: v.Addr, Token: "root", Mount: "transit", Key: "acme-key", Derived: true}), "acme", kek)

	t.Run("403 revoked", func(t *testing.T) {
		rs, cfg := roots(v.Addr, 0)
		secrets := []string{cfg.Token, cfg.RoleID, cfg.SecretID}
		for _, r := range rs {
			unwrapsTo(t, r, "acme", w, kek)
			secrets = append(secrets, r.c.Token())
			v.Revoke(t, r.c.Token())
		}
		// AppRole logs in again unless its secret id is gone as well.
		if _, err := v.Root.Logical().Write("auth/approle/role/acme-key/secret-id/destroy", map[string]any{"secret_id": cfg.SecretID}); err != nil {
			t.Fatal(err)
		}
		for name, r := range rs {
			_, err := r.UnwrapKEK(ctx, "acme", w)
			t.Log(name, err)
			failsClosed(t, err, "acme", "refused", secrets...)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		// A listener that accepts connections and never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
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
				go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		rs, cfg := roots("http://"+ln.Addr().String(), 200*time.Millisecond)
		for name, r := range rs {
			_, err := r.UnwrapKEK(ctx, "acme", w)
			t.Log(name, err)
			failsClosed(t, err, "acme", "unreachable", cfg.Token, cfg.RoleID, cfg.SecretID)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		rs, cfg := roots("http://"+addr, 0)
		for name, r := range rs {
			_, err := r.WrapKEK(ctx, "acme", kek)
			t.Log(name, err)
			failsClosed(t, err, "acme", "unreachable", cfg.Token, cfg.RoleID, cfg.SecretID)
		}
	})

	// Last: the server stays sealed.
	t.Run("503 sealed", func(t *testing.T) {
		rs, cfg := roots(v.Addr, 0)
		secrets := []string{cfg.Token, cfg.RoleID, cfg.SecretID}
		for _, r := range rs {
			unwrapsTo(t, r, "acme", w, kek)
			secrets = append(secrets, r.c.Token())
		}
		if err := v.Root.Sys().Seal(); err != nil {
			t.Fatal(err)
		}
		for name, r := range rs {
			_, err := r.UnwrapKEK(ctx, "acme", w)
			t.Log(name, err)
			failsClosed(t, err, "acme", "sealed", secrets...)
		}
	})
}
