package signing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/identity/token"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Errors.
var (
	// ErrTooManyKeys: a rotation would make the set hold more than MaxKeys
	// keys (rotations faster than old keys retire); wait for the oldest
	// to retire.
	ErrTooManyKeys = errors.New("signing: the key set holds as many keys as it may; wait until the oldest retires")
	// ErrConcurrent: another node changed the stored keys between this
	// node's read and its write; nothing was written.
	ErrConcurrent = errors.New("signing: a concurrent change of the signing keys won")
	// ErrMismatch: the stored sealed set and public half describe
	// different keys (written by something other than this package).
	ErrMismatch = errors.New("signing: the sealed keys and their public half differ")
)

// Defaults and bounds of Options.
const (
	// DefaultRotateEvery is how often the leader rotates the set: a day
	// bounds what a leaked key is worth, and costs one raft write.
	DefaultRotateEvery = 24 * time.Hour
	// MinRotateEvery and MaxRotateEvery bound RotateEvery.
	MinRotateEvery = time.Hour
	MaxRotateEvery = 90 * 24 * time.Hour
	// DefaultPoll is how often every node looks for a changed set.
	DefaultPoll = time.Second
	// MaxKeys bounds a set. A key retires one token lifetime (at most an
	// hour) after its successor appears, so scheduled rotation holds two;
	// the bound stops a loop of manual rotations from growing the sealed
	// set without end.
	MaxKeys = 8
	// reloadGap is the least time between two reloads caused by tokens
	// naming unknown keys, so that a flood of forged key ids cannot turn
	// into a flood of linearizable reads.
	reloadGap = 250 * time.Millisecond
	// maintainEvery is how often the leader checks whether the set is due
	// for a rotation or has keys to drop.
	maintainEvery = time.Minute
)

// Records of the component's system bucket, ["sys", "signing"].
var sysSigning = tenancy.SystemOf("signing")

const (
	recPublic = "public"
	recSealed = "sealed"
)

// Options configure Keys.
type Options struct {
	// Issuer is the iss of the cluster's access tokens. Required.
	Issuer string
	// Lifetime is the access tokens' lifetime (0: token.DefaultLifetime).
	// A stored set of another lifetime is changed to it by the leader.
	Lifetime time.Duration
	// RotateEvery is how often the leader rotates (0:
	// DefaultRotateEvery).
	RotateEvery time.Duration
	// Identities open the sealed set (the seal identity). Nil: this node
	// is sealed — it verifies with the public half and cannot issue.
	Identities []age.Identity
	// IsLeader reports whether this node maintains the set (creates,
	// rotates, drops retired keys) in Run. Nil: never.
	IsLeader func() bool
	// Poll is how often Run looks for a changed set (0: DefaultPoll).
	Poll time.Duration
	// Now is the clock of issue, verification and rotation (nil:
	// time.Now).
	Now func() time.Time
	// Logger receives rotations and maintenance failures (nil: discard).
	Logger *slog.Logger
	// CacheSize bounds the node's verified-token cache (0:
	// token.DefaultCacheSize).
	CacheSize int
}

// Keys is one node's handle on the cluster's signing keys. It is safe for
// concurrent use; make it with Open, run Run in the background.
type Keys struct {
	b     *tenancy.Boundary
	o     Options
	cache *token.Cache // shared by the node's successive authorities

	cur        atomic.Pointer[loaded]
	lastReload atomic.Int64 // unix nanoseconds of the last unknown-key reload

	mu sync.Mutex // serializes loads that replace cur, and writes
}

// loaded is a set as this node uses it.
type loaded struct {
	auth    *token.Authority
	version uint64 // of the public half: the store revision that wrote it
}

// Open makes the node's handle and loads the stored set if there is one
// (a local read: a node that has not caught up yet loads it later; a set
// it cannot open is logged, and reported by Authority). It does not
// create a set: Run does on the leader, Authority on first need. Its
// errors are bad options.
func Open(ctx context.Context, b *tenancy.Boundary, o Options) (*Keys, error) {
	if b == nil {
		return nil, errors.New("signing: Open needs a boundary")
	}
	if o.Issuer == "" {
		return nil, validation.Field("issuer", "is required")
	}
	if o.Lifetime == 0 {
		o.Lifetime = token.DefaultLifetime
	}
	if o.Lifetime < token.MinLifetime || o.Lifetime > token.MaxLifetime {
		return nil, validation.Field("lifetime", "must be between 1 minute and 1 hour")
	}
	if o.RotateEvery == 0 {
		o.RotateEvery = DefaultRotateEvery
	}
	if o.RotateEvery < MinRotateEvery || o.RotateEvery > MaxRotateEvery {
		return nil, validation.Field("rotate_every", "must be between 1 hour and 90 days")
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.Identities) == 0 {
		o.Identities = nil
	}
	k := &Keys{b: b, o: o, cache: token.NewCache(o.CacheSize)}
	if err := k.reload(ctx, raftstore.Stale); err != nil {
		// Not fatal to the node: Authority reports it on every use until
		// it is fixed (a wrong seal identity) or passes (a read).
		o.Logger.Error("signing: load the keys", "error", err)
	}
	return k, nil
}

// Issuer is the iss of the cluster's access tokens.
func (k *Keys) Issuer() string { return k.o.Issuer }

// Sealed reports whether this node cannot open the private keys (it has
// no seal identity): it verifies tokens and cannot issue them.
func (k *Keys) Sealed() bool { return k.o.Identities == nil }

// Authority is the authority of the current set, loading it on first
// need — and creating it, with a write that applies only if there is
// none yet, when the cluster has none. A sealed node that finds no set
// cannot create one: a *keyring.UnavailableError of keyring.ErrSealed.
// The authority is immutable: after a rotation Authority returns a new
// one, so callers ask for it per use rather than keep it. It verifies
// through the node's verified-token cache.
func (k *Keys) Authority(ctx context.Context) (*token.Authority, error) {
	if l := k.cur.Load(); l != nil {
		return l.auth, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.cur.Load(); l != nil {
		return l.auth, nil
	}
	if err := k.reloadLocked(ctx, raftstore.Linearizable); err != nil {
		return nil, err
	}
	if l := k.cur.Load(); l != nil {
		return l.auth, nil
	}
	if k.Sealed() {
		return nil, &keyring.UnavailableError{Cause: keyring.ErrSealed}
	}
	if err := k.createLocked(ctx); err != nil {
		return nil, err
	}
	return k.cur.Load().auth, nil
}

// Issue signs an access token of c with the current key at the clock's
// now (token.Authority.Issue). A sealed node cannot: a
// *keyring.UnavailableError of keyring.ErrSealed.
func (k *Keys) Issue(ctx context.Context, c token.Claims) (string, token.Claims, error) {
	a, err := k.Authority(ctx)
	if err != nil {
		return "", token.Claims{}, err
	}
	tok, claims, err := a.Issue(k.o.Now(), c)
	if errors.Is(err, token.ErrCannotSign) {
		return "", token.Claims{}, &keyring.UnavailableError{Cause: keyring.ErrSealed}
	}
	return tok, claims, err
}

// Verify checks an access token at the clock's now
// (token.Authority.Verify; every refusal is token.ErrInvalidToken). A
// token naming a key this node does not know yet — signed with a key
// another node has just rotated in — makes it read the stored set again
// (at most once per reloadGap) and retry.
func (k *Keys) Verify(ctx context.Context, tok string) (token.Claims, error) {
	a, err := k.Authority(ctx)
	if err != nil {
		return token.Claims{}, err
	}
	claims, err := a.Verify(k.o.Now(), tok)
	if !errors.Is(err, token.ErrUnknownKey) || !k.mayReload() {
		return claims, err
	}
	if rerr := k.reload(ctx, raftstore.Linearizable); rerr != nil {
		k.o.Logger.Warn("signing: reload for an unknown key id failed", "error", rerr)
		return claims, err
	}
	if b := k.cur.Load().auth; b != a {
		return b.Verify(k.o.Now(), tok)
	}
	return claims, err
}

// mayReload reports whether reloadGap has passed since the last reload
// for an unknown key, and if so claims this one.
func (k *Keys) mayReload() bool {
	now := time.Now().UnixNano()
	last := k.lastReload.Load()
	return now-last >= int64(reloadGap) && k.lastReload.CompareAndSwap(last, now)
}

// Rotate makes a fresh key the signing key of the cluster's set at once;
// the key it replaces verifies until every token it signed has expired.
// It needs the seal identity (a sealed node: *keyring.UnavailableError).
// Keys already retired are dropped in the same write. It returns the new
// key's id. The caller (an operator's route) audits it.
func (k *Keys) Rotate(ctx context.Context) (string, error) {
	if k.Sealed() {
		return "", &keyring.UnavailableError{Cause: keyring.ErrSealed}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	set, version, err := k.read(ctx, raftstore.Linearizable)
	if err != nil {
		return "", err
	}
	now := k.o.Now()
	if set == nil {
		if err := k.createLocked(ctx); err != nil {
			return "", err
		}
		return k.cur.Load().auth.Keys().Current(), nil
	}
	set, _ = set.Prune(now)
	if len(set.Keys()) >= MaxKeys {
		return "", ErrTooManyKeys
	}
	set = set.Rotate(now)
	if err := k.writeLocked(ctx, set, version); err != nil {
		return "", err
	}
	k.o.Logger.Info("signing keys rotated", "kid", set.Current())
	return set.Current(), nil
}

// Run keeps the node's set current until ctx ends: every Poll it reloads
// the set if the stored one changed, and on the leader (Options.IsLeader)
// it creates the set if there is none and, once a minute, rotates it when
// RotateEvery has passed, drops retired keys and applies a changed
// lifetime.
func (k *Keys) Run(ctx context.Context) {
	t := time.NewTicker(k.o.Poll)
	defer t.Stop()
	var lastMaintained time.Time
	for {
		k.tick(ctx, &lastMaintained)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick is one round of Run.
func (k *Keys) tick(ctx context.Context, lastMaintained *time.Time) {
	if err := k.reload(ctx, raftstore.Stale); err != nil && ctx.Err() == nil {
		k.o.Logger.Warn("signing: reload failed", "error", err)
	}
	if k.Sealed() || k.o.IsLeader == nil || !k.o.IsLeader() {
		return
	}
	if !lastMaintained.IsZero() && time.Since(*lastMaintained) < maintainEvery && k.cur.Load() != nil {
		return
	}
	*lastMaintained = time.Now()
	if err := k.maintain(ctx); err != nil && ctx.Err() == nil {
		k.o.Logger.Warn("signing: maintenance failed", "error", err)
	}
}

// maintain creates the set if there is none, or rotates it, drops retired
// keys and applies the configured lifetime when any of that is due.
func (k *Keys) maintain(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	set, version, err := k.read(ctx, raftstore.Linearizable)
	if err != nil {
		return err
	}
	if set == nil {
		return k.createLocked(ctx)
	}
	now := k.o.Now()
	next, dropped := set.Prune(now)
	if next.Lifetime() != k.o.Lifetime {
		if next, err = next.WithLifetime(k.o.Lifetime); err != nil {
			return err
		}
	}
	rotate := !now.Before(current(next).Created.Add(k.o.RotateEvery)) && len(next.Keys()) < MaxKeys
	if rotate {
		next = next.Rotate(now)
	}
	if dropped == 0 && !rotate && next.Lifetime() == set.Lifetime() {
		return nil
	}
	if err := k.writeLocked(ctx, next, version); err != nil {
		return err
	}
	k.o.Logger.Info("signing keys maintained", "kid", next.Current(), "rotated", rotate, "dropped", dropped)
	return nil
}

func current(s *token.KeySet) token.KeyInfo {
	ks := s.Keys()
	return ks[len(ks)-1]
}

// createLocked stores a new set if there is none; if another node stored
// one first, it loads that one.
func (k *Keys) createLocked(ctx context.Context) error {
	set, err := token.NewKeySet(k.o.Now(), k.o.Lifetime)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	err = k.writeLocked(ctx, set, 0)
	if errors.Is(err, ErrConcurrent) {
		return k.reloadLocked(ctx, raftstore.Linearizable)
	}
	if err == nil {
		k.o.Logger.Info("signing keys created", "kid", set.Current())
	}
	return err
}

// writeLocked stores set — its public half in the clear, the whole set
// sealed to the cluster's seal recipients — if the stored public half is
// still at version (0: absent), and makes it this node's set.
func (k *Keys) writeLocked(ctx context.Context, set *token.KeySet, version uint64) error {
	pub, err := set.MarshalPublic()
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	plain, err := set.MarshalBinary()
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	recipients, err := keyring.SealRecipients(ctx, k.b)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	sealed, err := keyring.EncryptToRecipients(recipients, plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("signing: seal the keys: %w", err)
	}
	cond := sysSigning.Cond(raftstore.CondVersion, recPublic, version)
	if version == 0 {
		cond = sysSigning.Cond(raftstore.CondAbsent, recPublic, 0)
	}
	res, err := k.b.ApplySystem(ctx, []raftstore.Cond{cond}, []raftstore.Op{
		sysSigning.Put(recPublic, pub),
		sysSigning.Put(recSealed, sealed),
	})
	if err != nil {
		return fmt.Errorf("signing: store the keys: %w", err)
	}
	if !res.Applied {
		return ErrConcurrent
	}
	return k.use(set, res.Revision)
}

// reload reads the stored set with consistency c and makes it this
// node's if it is newer than the one it has.
func (k *Keys) reload(ctx context.Context, c raftstore.Consistency) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked(ctx, c)
}

func (k *Keys) reloadLocked(ctx context.Context, c raftstore.Consistency) error {
	set, version, err := k.read(ctx, c)
	if err != nil || set == nil {
		return err
	}
	if l := k.cur.Load(); l != nil && l.version >= version {
		return nil
	}
	return k.use(set, version)
}

// use makes set, written at version, this node's.
func (k *Keys) use(set *token.KeySet, version uint64) error {
	a, err := token.NewAuthority(k.o.Issuer, set)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	k.cur.Store(&loaded{auth: a.WithCache(k.cache), version: version})
	return nil
}

// read reads the stored set and the version of its public half: the whole
// set when this node holds the seal identity (checked against the public
// half), the verify-only public half otherwise; nil when there is none.
func (k *Keys) read(ctx context.Context, c raftstore.Consistency) (*token.KeySet, uint64, error) {
	var pub, sealed []byte
	var version uint64
	err := k.b.ViewSystem(ctx, c, sysSigning, func(r tenancy.SystemRead) error {
		pub, version, _ = r.Get(recPublic)
		sealed, _, _ = r.Get(recSealed)
		pub, sealed = bytes.Clone(pub), bytes.Clone(sealed)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("signing: read the keys: %w", err)
	}
	if pub == nil {
		return nil, 0, nil
	}
	if k.Sealed() {
		set, err := token.UnmarshalPublicKeySet(pub)
		if err != nil {
			return nil, 0, fmt.Errorf("signing: %w", err)
		}
		return set, version, nil
	}
	plain, err := keyring.DecryptWithIdentities(k.o.Identities, sealed)
	if err != nil {
		return nil, 0, &keyring.UnavailableError{Cause: fmt.Errorf("signing: the seal identity does not open the signing keys: %w", err)}
	}
	set, err := token.UnmarshalKeySet(plain)
	clear(plain)
	if err != nil {
		return nil, 0, fmt.Errorf("signing: %w", err)
	}
	if again, err := set.MarshalPublic(); err != nil || !bytes.Equal(again, pub) {
		return nil, 0, ErrMismatch
	}
	return set, version, nil
}
