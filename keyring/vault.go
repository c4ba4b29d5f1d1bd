package keyring

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// VaultConfig says how to reach a tenant's transit key (bring your own
// key). Token and SecretID are secrets: they are never logged and never
// appear in errors.
type VaultConfig struct {
	Address string
	// AuthMethod is VaultAuthToken (the default: Token is used as it is)
	// or VaultAuthAppRole (RoleID and SecretID are exchanged for a token at
	// AuthMount on first use, and again when Vault refuses the token).
	AuthMethod string
	Token      string
	RoleID     string
	SecretID   string
	AuthMount  string // AppRole mount (default "approle")
	// The CA of Vault's TLS certificate, as a PEM file (CACert) or the PEM
	// itself (CACertPEM); neither = the system's roots.
	CACert    string
	CACertPEM []byte
	Mount     string // transit mount, e.g. "transit"
	Key       string // transit key name
	// Derived: the transit key was created with derived=true; the tenant id
	// is then the derivation context, so each tenant gets its own key even
	// if two share a transit key.
	Derived bool
	Timeout time.Duration // per call, AppRole logins included (default 5s)
}

// VaultRoot is a tenant root held in the customer's Vault: KEKs are
// wrapped and unwrapped by transit encrypt/decrypt; Custos never sees the
// transit key. Its methods may be called concurrently.
//
// Every failure is ErrRootUnavailable naming the tenant (or, for the
// key-level calls, the transit key) — refused (403), sealed or failing
// Vault (5xx), unreachable, untrusted certificate — except a decrypt or
// rewrap that Vault rejects (400: another tenant's context, a damaged
// ciphertext, or a key version below min_decryption_version, i.e. trimmed):
// that is ErrOpen. A trimmed version is gone for good; retrying cannot
// help, so it is not reported as an outage.
type VaultRoot struct {
	c    *vault.Client // carries the token
	auth *vault.Client // for AppRole logins: never holds a token; nil with token auth
	cfg  VaultConfig

	mu     sync.Mutex // serialises AppRole logins
	logins int        // AppRole logins so far; 0 = no token yet

	calls atomic.Uint64 // requests sent to Vault (logins excluded)
}

// Calls is how many requests this root has sent to Vault: the cache must
// keep it near zero on the data path.
func (v *VaultRoot) Calls() uint64 { return v.calls.Load() }

var _ Root = (*VaultRoot)(nil)

// TransitKeyInfo is the state of a transit key's versions (Vault's
// <mount>/keys/<key>).
type TransitKeyInfo struct {
	LatestVersion        int  `json:"latest_version"`
	MinDecryptionVersion int  `json:"min_decryption_version"`
	MinEncryptionVersion int  `json:"min_encryption_version"` // 0 = no minimum
	MinAvailableVersion  int  `json:"min_available_version"`  // older versions are trimmed
	Derived              bool `json:"derived"`
}

// The Vault calls, as named in errors.
const (
	opEncrypt = "encrypt"
	opDecrypt = "decrypt"
	opRewrap  = "rewrap"
	opLogin   = "approle login"
	opRead    = "read key"
	opRotate  = "rotate key"
	opConfig  = "configure key"
	opTrim    = "trim key"
)

// NewVaultRoot makes a client for cfg. It does not contact Vault: an
// AppRole login happens on first use.
func NewVaultRoot(cfg VaultConfig) (*VaultRoot, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Mount == "" || cfg.Key == "" || cfg.Address == "" {
		return nil, errors.New("keyring: vault address, mount and key are required")
	}
	switch cfg.AuthMethod {
	case "":
		cfg.AuthMethod = VaultAuthToken
	case VaultAuthToken:
	case VaultAuthAppRole:
		if cfg.RoleID == "" || cfg.SecretID == "" {
			return nil, errors.New("keyring: vault approle auth needs a role id and a secret id")
		}
		cfg.AuthMount = strings.Trim(cfg.AuthMount, "/")
		if cfg.AuthMount == "" {
			cfg.AuthMount = "approle"
		}
	default:
		return nil, fmt.Errorf("keyring: vault auth method %q: want %q or %q", cfg.AuthMethod, VaultAuthToken, VaultAuthAppRole)
	}
	if cfg.CACert != "" && len(cfg.CACertPEM) > 0 {
		return nil, errors.New("keyring: vault tls: give the CA as a file or as PEM, not both")
	}
	vc := vault.DefaultConfig()
	vc.Address = cfg.Address
	vc.Timeout = cfg.Timeout
	vc.MaxRetries = 0 // fail closed fast; the cache absorbs blips
	if cfg.CACert != "" || len(cfg.CACertPEM) > 0 {
		if err := vc.ConfigureTLS(&vault.TLSConfig{CACert: cfg.CACert, CACertBytes: cfg.CACertPEM}); err != nil {
			return nil, fmt.Errorf("keyring: vault tls: %w", err)
		}
	}
	c, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("keyring: vault client: %w", err)
	}
	v := &VaultRoot{c: c, cfg: cfg}
	if cfg.AuthMethod == VaultAuthToken {
		c.SetToken(cfg.Token)
		return v, nil
	}
	// AppRole: no token until the first login (NewClient reads VAULT_TOKEN).
	c.ClearToken()
	if v.auth, err = c.Clone(); err != nil {
		return nil, fmt.Errorf("keyring: vault client: %w", err)
	}
	v.auth.ClearToken()
	return v, nil
}

func (v *VaultRoot) path(op string) string { return v.cfg.Mount + "/" + op + "/" + v.cfg.Key }

func (v *VaultRoot) keyPath(op string) string {
	p := v.cfg.Mount + "/keys/" + v.cfg.Key
	if op != "" {
		p += "/" + op
	}
	return p
}

// keyName names the transit key in errors of the key-level calls.
func (v *VaultRoot) keyName() string { return "transit key " + v.cfg.Mount + "/" + v.cfg.Key }

func (v *VaultRoot) body(tenant string, data map[string]any) map[string]any {
	if v.cfg.Derived {
		data["context"] = base64.StdEncoding.EncodeToString([]byte(tenant))
	}
	return data
}

// call runs one Vault request (op, for who: "tenant <id>" or the key)
// within the timeout. With AppRole it logs in first if it has no token
// yet, and logs in once more if Vault refuses the token (403: expired or
// revoked) before failing closed.
func (v *VaultRoot) call(ctx context.Context, op, who string, req func(context.Context) (*vault.Secret, error)) (*vault.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	approle := v.auth != nil
	session := 0
	if approle {
		var err error
		if session, err = v.logIn(ctx, who, 0); err != nil {
			return nil, err
		}
	}
	v.calls.Add(1)
	s, err := req(ctx)
	var re *vault.ResponseError
	if approle && errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		if _, err := v.logIn(ctx, who, session); err != nil {
			return nil, err
		}
		v.calls.Add(1)
		s, err = req(ctx)
	}
	if err != nil {
		return nil, vaultErr(op, who, err)
	}
	return s, nil
}

// logIn exchanges the AppRole credentials for a token, unless a login
// newer than the caller's session (the login count it last saw; 0 = none)
// has happened meanwhile. It returns the current session.
func (v *VaultRoot) logIn(ctx context.Context, who string, session int) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.logins != session {
		return v.logins, nil
	}
	s, err := v.auth.Logical().WriteWithContext(ctx, "auth/"+v.cfg.AuthMount+"/login", map[string]any{
		"role_id":   v.cfg.RoleID,
		"secret_id": v.cfg.SecretID,
	})
	if err != nil {
		return 0, vaultErr(opLogin, who, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return 0, fmt.Errorf("%w: %s: vault %s returned no token", ErrRootUnavailable, who, opLogin)
	}
	v.c.SetToken(s.Auth.ClientToken)
	v.logins++
	return v.logins, nil
}

// WrapKEK encrypts kek with the tenant's transit key.
func (v *VaultRoot) WrapKEK(ctx context.Context, tenant string, kek *Key) ([]byte, error) {
	who := "tenant " + tenant
	s, err := v.call(ctx, opEncrypt, who, func(ctx context.Context) (*vault.Secret, error) {
		return v.c.Logical().WriteWithContext(ctx, v.path("encrypt"), v.body(tenant, map[string]any{
			"plaintext": base64.StdEncoding.EncodeToString(kekPlaintext(tenant, kek)),
		}))
	})
	if err != nil {
		return nil, err
	}
	return ciphertext(s, opEncrypt, who)
}

// UnwrapKEK decrypts a KEK wrapped by WrapKEK (or rewrapped by RewrapKEK).
func (v *VaultRoot) UnwrapKEK(ctx context.Context, tenant string, wrapped []byte) (*Key, error) {
	s, err := v.call(ctx, opDecrypt, "tenant "+tenant, func(ctx context.Context) (*vault.Secret, error) {
		return v.c.Logical().WriteWithContext(ctx, v.path("decrypt"), v.body(tenant, map[string]any{
			"ciphertext": string(wrapped),
		}))
	})
	if err != nil {
		return nil, err
	}
	var b64 string
	if s != nil {
		b64, _ = s.Data["plaintext"].(string)
	}
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, ErrOpen
	}
	return kekFromPlaintext(tenant, pt)
}

// RewrapKEK re-encrypts a wrapped KEK under the latest version of the
// transit key, inside Vault: the KEK is never in the clear outside it.
func (v *VaultRoot) RewrapKEK(ctx context.Context, tenant string, wrapped []byte) ([]byte, error) {
	who := "tenant " + tenant
	s, err := v.call(ctx, opRewrap, who, func(ctx context.Context) (*vault.Secret, error) {
		return v.c.Logical().WriteWithContext(ctx, v.path("rewrap"), v.body(tenant, map[string]any{
			"ciphertext": string(wrapped),
		}))
	})
	if err != nil {
		return nil, err
	}
	return ciphertext(s, opRewrap, who)
}

func ciphertext(s *vault.Secret, op, who string) ([]byte, error) {
	var ct string
	if s != nil {
		ct, _ = s.Data["ciphertext"].(string)
	}
	if ct == "" {
		return nil, fmt.Errorf("%w: %s: vault %s returned no ciphertext", ErrRootUnavailable, who, op)
	}
	return []byte(ct), nil
}

// KeyInfo reads the versions of the transit key.
func (v *VaultRoot) KeyInfo(ctx context.Context) (TransitKeyInfo, error) {
	s, err := v.call(ctx, opRead, v.keyName(), func(ctx context.Context) (*vault.Secret, error) {
		return v.c.Logical().ReadWithContext(ctx, v.keyPath(""))
	})
	if err != nil {
		return TransitKeyInfo{}, err
	}
	return v.keyInfo(s, opRead)
}

// keyInfo reads the key's state from a response of read, rotate, config
// or trim (they all answer with it).
func (v *VaultRoot) keyInfo(s *vault.Secret, op string) (TransitKeyInfo, error) {
	var info TransitKeyInfo
	if s == nil || s.Data == nil {
		return info, fmt.Errorf("%w: %s: vault %s: no such key", ErrRootUnavailable, v.keyName(), op)
	}
	// The json tags are Vault's field names.
	b, err := json.Marshal(s.Data)
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err == nil && info.LatestVersion < 1 {
		err = errors.New("no latest_version")
	}
	if err != nil {
		return info, fmt.Errorf("%w: %s: vault %s: unexpected answer: %v", ErrRootUnavailable, v.keyName(), op, err)
	}
	return info, nil
}

// RotateTransit adds a version to the transit key and returns it: new
// wraps use it; older versions still decrypt until trimmed.
func (v *VaultRoot) RotateTransit(ctx context.Context) (int, error) {
	s, err := v.call(ctx, opRotate, v.keyName(), func(ctx context.Context) (*vault.Secret, error) {
		return v.c.Logical().WriteWithContext(ctx, v.keyPath("rotate"), nil)
	})
	if err != nil {
		return 0, err
	}
	if s == nil || s.Data == nil { // Vault before 1.14 answers 204
		info, err := v.KeyInfo(ctx)
		return info.LatestVersion, err
	}
	info, err := v.keyInfo(s, opRotate)
	return info.LatestVersion, err
}

// Trim makes the transit key's versions below minVersion unusable: it
// raises min_decryption_version to minVersion — and min_encryption_version
// to at least that, as Vault requires before it trims — then deletes those
// versions for good (min_available_version). Every KEK wrapped under them
// must have been rewrapped first: afterwards they no longer open (ErrOpen).
// Trim never lowers a minimum, so it is idempotent; minVersion above the
// latest version is refused.
func (v *VaultRoot) Trim(ctx context.Context, minVersion int) error {
	info, err := v.KeyInfo(ctx)
	if err != nil {
		return err
	}
	if minVersion < 1 || minVersion > info.LatestVersion {
		return fmt.Errorf("keyring: %s: cannot trim to version %d: the latest version is %d", v.keyName(), minVersion, info.LatestVersion)
	}
	dec := max(info.MinDecryptionVersion, minVersion)
	enc := max(info.MinEncryptionVersion, dec)
	if dec != info.MinDecryptionVersion || enc != info.MinEncryptionVersion {
		_, err := v.call(ctx, opConfig, v.keyName(), func(ctx context.Context) (*vault.Secret, error) {
			return v.c.Logical().WriteWithContext(ctx, v.keyPath("config"), map[string]any{
				"min_decryption_version": dec,
				"min_encryption_version": enc,
			})
		})
		if err != nil {
			return err
		}
	}
	if info.MinAvailableVersion >= minVersion {
		return nil
	}
	_, err = v.call(ctx, opTrim, v.keyName(), func(ctx context.Context) (*vault.Secret, error) {
		return v.c.Logical().WriteWithContext(ctx, v.keyPath("trim"), map[string]any{
			"min_available_version": minVersion,
		})
	})
	return err
}

// TransitVersion is the transit key version of a Vault ciphertext
// ("vault:v<N>:<base64>"), to tell which wrapped KEKs still need a rewrap.
func TransitVersion(wrapped []byte) (int, error) {
	rest, ok := bytes.CutPrefix(wrapped, []byte("vault:v"))
	digits, body, found := bytes.Cut(rest, []byte(":"))
	if !ok || !found || len(body) == 0 {
		return 0, fmt.Errorf("%w: not a vault transit ciphertext", ErrFormat)
	}
	n, err := strconv.Atoi(string(digits))
	if err != nil || n < 1 || strconv.Itoa(n) != string(digits) {
		return 0, fmt.Errorf("%w: vault transit ciphertext: bad key version", ErrFormat)
	}
	return n, nil
}

// vaultErr turns a failed Vault call (op, for who) into ErrRootUnavailable
// — refused (403), sealed (503) or other server errors, timeouts,
// connection refused, an untrusted certificate: the caller fails closed —
// or into ErrOpen when Vault rejects a ciphertext (400 on decrypt or
// rewrap). Vault's error text is kept, except for a login, whose text may
// quote the credentials; tokens never travel in it.
func vaultErr(op, who string, err error) error {
	var re *vault.ResponseError
	var ce *tls.CertificateVerificationError
	var ne net.Error
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && (op == opDecrypt || op == opRewrap):
		// Wrong tenant context, a damaged ciphertext or a trimmed key
		// version: not an outage.
		return fmt.Errorf("%w: %s: vault could not %s: %s", ErrOpen, who, op, vaultReason(re))
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %s: vault refused %s (permission denied: key disabled, policy, or token revoked or expired)", ErrRootUnavailable, who, op)
	case errors.As(err, &re) && re.StatusCode == http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s: vault %s: unavailable (sealed or standby)", ErrRootUnavailable, who, op)
	case errors.As(err, &re) && op == opLogin:
		return fmt.Errorf("%w: %s: vault refused %s: %s", ErrRootUnavailable, who, op, http.StatusText(re.StatusCode))
	case errors.As(err, &re):
		return fmt.Errorf("%w: %s: vault %s: %s", ErrRootUnavailable, who, op, vaultReason(re))
	case errors.As(err, &ce):
		return fmt.Errorf("%w: %s: vault %s: its certificate is not trusted: %v", ErrRootUnavailable, who, op, ce.Err)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: vault %s: unreachable: %v", ErrRootUnavailable, who, op, err)
	}
	return fmt.Errorf("%w: %s: vault %s: %v", ErrRootUnavailable, who, op, err)
}

func vaultReason(re *vault.ResponseError) string {
	if len(re.Errors) == 0 || re.RawError {
		return http.StatusText(re.StatusCode)
	}
	return http.StatusText(re.StatusCode) + ": " + strings.Join(re.Errors, "; ")
}
