package keyring

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// Root holds a tenant's root key and wraps the tenant's KEKs with it. The
// age root keeps it in the cluster, sealed to the operator; a Vault root
// ([VaultRoot]) keeps it in the customer's Vault.
type Root interface {
	WrapKEK(ctx context.Context, tenant string, kek *Key) ([]byte, error)
	UnwrapKEK(ctx context.Context, tenant string, wrapped []byte) (*Key, error)
}

// NewSealIdentity writes a fresh age X25519 identity to path with mode 0600
// — the cluster's seal identity, created at `operator init` — and returns
// its recipient. It refuses to overwrite an existing file.
func NewSealIdentity(path string) (*age.X25519Recipient, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("keyring: seal identity: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keyring: seal identity: %w", err)
	}
	if _, err := fmt.Fprintf(f, "# custos seal identity; public key: %s\n%s\n", id.Recipient(), id); err != nil {
		f.Close()
		return nil, fmt.Errorf("keyring: seal identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("keyring: seal identity: %w", err)
	}
	return id.Recipient(), f.Close()
}

// LoadSealIdentities reads an age identity file (the seal identity, or the
// operator's own).
func LoadSealIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: seal identity: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("keyring: seal identity %s: %w", path, err)
	}
	return ids, nil
}

// AgeRoot is a tenant root held by the cluster: an age X25519 identity
// whose private half is stored only encrypted to the seal recipients.
type AgeRoot struct {
	tenant string
	id     *age.X25519Identity
}

var _ Root = (*AgeRoot)(nil)

// NewAgeRoot makes a tenant root and returns it with its sealed form (for
// the replicated state): the identity encrypted to the seal recipients.
func NewAgeRoot(tenant string, seal ...age.Recipient) (*AgeRoot, []byte, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: tenant root: %w", err)
	}
	sealed, err := ageEncrypt([]byte(rootPlaintext(tenant, id.String())), seal...)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: seal tenant root: %w", err)
	}
	return &AgeRoot{tenant: tenant, id: id}, sealed, nil
}

// OpenAgeRoot unseals a tenant root with the seal identities. A node
// without them cannot, and reports ErrRootUnavailable.
func OpenAgeRoot(tenant string, sealed []byte, seal ...age.Identity) (*AgeRoot, error) {
	pt, err := ageDecrypt(sealed, seal...)
	if err != nil {
		return nil, fmt.Errorf("%w: tenant %s: %v", ErrRootUnavailable, tenant, err)
	}
	prefix := rootPlaintext(tenant, "")
	s, ok := strings.CutPrefix(string(pt), prefix)
	if !ok {
		return nil, fmt.Errorf("%w: sealed root is not tenant %s's", ErrOpen, tenant)
	}
	id, err := age.ParseX25519Identity(s)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed root: %v", ErrFormat, err)
	}
	return &AgeRoot{tenant: tenant, id: id}, nil
}

func rootPlaintext(tenant, identity string) string {
	return "custos-tenant-root/v1\n" + tenant + "\n" + identity
}

// kekPlaintext binds a wrapped KEK to its tenant and version (age and
// transit have no associated data, so they travel inside the encrypted
// payload); kekFromPlaintext checks and reads it back.
func kekPlaintext(tenant string, kek *Key) []byte {
	b := appendString(nil, "custos-kek/v1")
	b = appendString(b, tenant)
	b = binary.BigEndian.AppendUint32(b, kek.version)
	return append(b, kek.raw[:]...)
}

func kekFromPlaintext(tenant string, pt []byte) (*Key, error) {
	head := appendString(appendString(nil, "custos-kek/v1"), tenant)
	if len(pt) != len(head)+4+KeySize || !bytes.Equal(pt[:len(head)], head) {
		return nil, ErrOpen
	}
	return keyFrom(binary.BigEndian.Uint32(pt[len(head):]), pt[len(head)+4:])
}

// WrapKEK encrypts kek to the tenant root.
func (r *AgeRoot) WrapKEK(_ context.Context, tenant string, kek *Key) ([]byte, error) {
	if tenant != r.tenant {
		return nil, fmt.Errorf("keyring: root of %s asked to wrap for %s", r.tenant, tenant)
	}
	return ageEncrypt(kekPlaintext(tenant, kek), r.id.Recipient())
}

// UnwrapKEK decrypts a KEK wrapped by WrapKEK.
func (r *AgeRoot) UnwrapKEK(_ context.Context, tenant string, wrapped []byte) (*Key, error) {
	pt, err := ageDecrypt(wrapped, r.id)
	if err != nil || tenant != r.tenant {
		return nil, ErrOpen
	}
	return kekFromPlaintext(tenant, pt)
}

func ageEncrypt(pt []byte, to ...age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, to...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(pt); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxAgePayload bounds what is decrypted from an age file here (keys and
// identities are tiny).
const maxAgePayload = 4 << 10

func ageDecrypt(ct []byte, ids ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ct), ids...)
	if err != nil {
		return nil, err
	}
	pt, err := io.ReadAll(io.LimitReader(r, maxAgePayload+1))
	if err != nil {
		return nil, err
	}
	if len(pt) > maxAgePayload {
		return nil, ErrFormat
	}
	return pt, nil
}

// EncryptToRecipients age-encrypts plaintext to the given recipients (in
// age's text form): for secrets the cluster keeps that only unsealed nodes
// may read, such as the audit signing key.
func EncryptToRecipients(recipients []string, plaintext []byte) ([]byte, error) {
	rs, err := parseRecipients(strings.Join(recipients, "\n"))
	if err != nil {
		return nil, err
	}
	return ageEncrypt(plaintext, rs...)
}

// DecryptWithIdentities opens what EncryptToRecipients sealed, with the
// seal identities: the one way secrets sealed to the cluster are opened,
// so that they share one size bound (keys are small; at most 4 KiB is
// read). Ciphertext they do not open, or that is too long, is ErrOpen.
func DecryptWithIdentities(ids []age.Identity, ciphertext []byte) ([]byte, error) {
	if len(ids) == 0 {
		return nil, ErrSealed
	}
	pt, err := ageDecrypt(ciphertext, ids...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	return pt, nil
}
