package accounts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/identity/token"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Signer gives the cluster's access-token authority: the key set every
// node signs and verifies with. The service asks it on every login,
// refresh and resolution, so an implementation caches.
type Signer interface {
	Authority(ctx context.Context) (*token.Authority, error)
}

// sysIdentity is the package's system bucket, ["sys", "identity"].
var sysIdentity = tenancy.SystemOf("identity")

// keySigningKeys holds the signing key set, age-encrypted to the
// cluster's seal recipients (as the audit signing key is).
const keySigningKeys = "signing_keys"

// StoredKeys is a Signer over one key set kept in the replicated store,
// sealed to the cluster's seal recipients: the first node that needs it
// makes it (a conditional write, so concurrent first logins agree on one
// set), every unsealed node opens it, a sealed node cannot sign or verify
// (keyring.ErrSealed, answered 503 key-unavailable). It does not rotate
// the set: rotation, and a verified-token cache, belong to the signing
// service that replaces it (its Authority takes this one's place).
type StoredKeys struct {
	b        *tenancy.Boundary
	ids      []age.Identity
	issuer   string
	lifetime time.Duration
	now      func() time.Time

	mu   sync.Mutex
	auth *token.Authority
}

// NewStoredKeys makes the Signer of the cluster whose tokens carry issuer,
// opening the stored set with ids (nil: this node is sealed). lifetime is
// the access tokens' (0: token.DefaultLifetime); now nil is time.Now.
func NewStoredKeys(b *tenancy.Boundary, ids []age.Identity, issuer string, lifetime time.Duration, now func() time.Time) *StoredKeys {
	if lifetime == 0 {
		lifetime = token.DefaultLifetime
	}
	if now == nil {
		now = time.Now
	}
	return &StoredKeys{b: b, ids: ids, issuer: issuer, lifetime: lifetime, now: now}
}

// Authority returns the authority of the stored set, making the set on
// first use.
func (k *StoredKeys) Authority(ctx context.Context) (*token.Authority, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.auth != nil {
		return k.auth, nil
	}
	if k.ids == nil {
		return nil, &keyring.UnavailableError{Cause: keyring.ErrSealed}
	}
	for range 3 {
		var enc []byte
		err := k.b.ViewSystem(ctx, raftstore.Linearizable, sysIdentity, func(r tenancy.SystemRead) error {
			enc, _, _ = r.Get(keySigningKeys)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("accounts: read signing keys: %w", err)
		}
		if enc != nil {
			set, err := k.open(enc)
			if err != nil {
				return nil, err
			}
			return k.use(set)
		}
		set, err := token.NewKeySet(k.now(), k.lifetime)
		if err != nil {
			return nil, fmt.Errorf("accounts: signing keys: %w", err)
		}
		plain, err := set.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("accounts: signing keys: %w", err)
		}
		recipients, err := keyring.SealRecipients(ctx, k.b)
		if err != nil {
			return nil, err
		}
		sealed, err := keyring.EncryptToRecipients(recipients, plain)
		if err != nil {
			return nil, fmt.Errorf("accounts: seal signing keys: %w", err)
		}
		res, err := k.b.ApplySystem(ctx, []raftstore.Cond{sysIdentity.Cond(raftstore.CondAbsent, keySigningKeys, 0)},
			[]raftstore.Op{sysIdentity.Put(keySigningKeys, sealed)})
		if err != nil {
			return nil, fmt.Errorf("accounts: store signing keys: %w", err)
		}
		if res.Applied {
			return k.use(set)
		}
		// Another node stored a set first: read and use that one.
	}
	return nil, fmt.Errorf("accounts: signing keys: %w", ErrConflict)
}

func (k *StoredKeys) open(enc []byte) (*token.KeySet, error) {
	dr, err := age.Decrypt(bytes.NewReader(enc), k.ids...)
	if err != nil {
		return nil, &keyring.UnavailableError{Cause: fmt.Errorf("%w: the seal identity does not open the signing keys: %w", keyring.ErrOpen, err)}
	}
	plain, err := io.ReadAll(io.LimitReader(dr, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("accounts: signing keys: %w", err)
	}
	return token.UnmarshalKeySet(plain)
}

func (k *StoredKeys) use(set *token.KeySet) (*token.Authority, error) {
	a, err := token.NewAuthority(k.issuer, set)
	if err != nil {
		return nil, fmt.Errorf("accounts: signing keys: %w", err)
	}
	k.auth = a
	return a, nil
}
