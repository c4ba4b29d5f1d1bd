package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit/e2e"
	"github.com/custos/custos/internal/testkit/oidcop"
)

// TestE2ESSO is single sign-on with the built binary against a real
// OpenID provider running in the test (internal/testkit/oidcop): the
// operator configures a tenant's SSO through the CLI (the secret from a
// file, never shown back), shows and tests it; then `custos login
// --method oidc` listens on loopback and prints the provider's URL, the
// test plays the browser (the provider's login form, and the redirect to
// the CLI's listener), and the CLI keeps the session's tokens, mode 0600.
func TestE2ESSO(t *testing.T) {
	bin := e2e.Binary(t)
	const token = "e2e-sso-token"
	node := e2e.StartDevNode(t, bin, token)
	addr := "http://" + node.Addr
	const pw, secret = "verysecure", "e2e-sso-client-secret"
	op := oidcop.Start(t, oidcop.Options{
		Users:   []oidcop.User{{ID: "bob", Username: "bob", Password: pw, Email: "bob@example.org", EmailVerified: true, Groups: []string{"villa-a-concierge"}}},
		Clients: []oidcop.Client{{ID: "custos", Secret: secret}},
	})
	must := e2e.Must(t)
	must(node.CLI(t, "tenant", "create", "acme"), "tenant create")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := must(node.CLI(t, "sso", "configure", "acme", "--issuer", op.Issuer, "--client-id", "custos", "--client-secret-file", secretFile,
		"--redirect-url", addr+"/v1/auth/oidc/callback", "--scope", "email,profile,"+oidcop.GroupsScope,
		"--map", "groups=custos-owners -> owner", "--map", "groups=villa-a-concierge -> concierge property=villa-a",
		"--jit", "--trust-idp-mfa", "--amr", "pwd"), "sso configure")
	for _, out := range []string{r.Stdout, must(node.CLI(t, "sso", "show", "acme"), "sso show").Stdout} {
		if strings.Contains(out, secret) || !strings.Contains(out, "set (sealed)") || !strings.Contains(out, "groups=villa-a-concierge -> concierge property=villa-a") {
			t.Fatalf("sso settings as shown:\n%s", out)
		}
	}
	var cfg struct {
		SecretSet bool `json:"client_secret_set"`
		Mappings  []struct{ Role string }
	}
	if err := json.Unmarshal([]byte(must(node.CLI(t, "--format", "json", "sso", "show", "acme"), "sso show json").Stdout), &cfg); err != nil || !cfg.SecretSet || len(cfg.Mappings) != 2 {
		t.Fatalf("sso show --format json: %+v %v", cfg, err)
	}
	if r := must(node.CLI(t, "sso", "test", "acme"), "sso test"); !strings.Contains(r.Stdout, "opens") || !strings.Contains(r.Stdout, op.Issuer) {
		t.Fatalf("sso test:\n%s", r.Stdout)
	}

	// custos login --method oidc, without a token: the person at the
	// browser is played by an HTTP client that follows the provider's
	// login and its redirect to the CLI's loopback listener.
	cfgDir := filepath.Join(t.TempDir(), "config")
	login := e2e.StartCLI(t, bin, []string{"CUSTOS_CONFIG_DIR=" + cfgDir}, "--addr", addr, "login", "--method", "oidc", "--tenant", "acme")
	line, err := login.Line(30*time.Second, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), op.URL) })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := op.SignIn(oidcop.Browser(nil), strings.TrimSpace(line), "bob", pw)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Hostname() != "127.0.0.1" || resp.Request.URL.Path != "/oidc/callback" {
		t.Fatalf("the browser ended at %s %s, not the CLI's listener", resp.Status, resp.Request.URL.Redacted())
	}
	res, err := login.Wait(30 * time.Second)
	if err != nil || res.Code != 0 || !strings.Contains(res.Stdout, "Signed in to tenant acme") {
		t.Fatalf("custos login: %v %v", res, err)
	}
	path := filepath.Join(cfgDir, "credentials.json")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials %s: %v %v", path, fi, err)
	}
	var creds struct {
		Address, Tenant, Method string
		AccessToken             string `json:"access_token"`
	}
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &creds); err != nil || creds.Address != addr || creds.Tenant != "acme" || creds.Method != "oidc" || creds.AccessToken == "" {
		t.Fatalf("credentials: %s %v", b, err)
	}
	// Later commands without a token send the kept session's: bob, a
	// Concierge, lists acme's collections; the operator's routes refuse
	// him.
	as := func(args ...string) e2e.CLIResult {
		t.Helper()
		r, err := e2e.StartCLI(t, bin, []string{"CUSTOS_CONFIG_DIR=" + cfgDir}, append([]string{"--addr", addr}, args...)...).Wait(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	must(as("collection", "list", "acme"), "collection list as the signed-in user")
	if r := as("tenant", "list"); r.Code == 0 {
		t.Fatalf("a Concierge listed the tenants: %v", r)
	}
}
