package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Options configure a Hasher; the zero value is OWASP parameters with the
// default concurrency.
type Options struct {
	// Params for new hashes; zero means OWASP().
	Params Params
	// Concurrency is how many hashes run at once; zero means half of
	// GOMAXPROCS, at least one.
	Concurrency int
}

// Hasher hashes and verifies passwords, at most Concurrency at a time. It
// is safe for concurrent use.
type Hasher struct {
	params  Params
	slots   chan struct{}
	waiting atomic.Int64
	dummy   string // a PHC string of random salt and key with the current parameters: what VerifyAbsent checks against
	// derive computes a key; a test replaces it to observe concurrency.
	derive func(password, salt []byte, p Params) []byte
}

// NewHasher returns a Hasher for opts. It fails with ErrParams when the
// parameters are outside what the parser accepts.
func NewHasher(opts Options) (*Hasher, error) {
	p := opts.Params
	if p == (Params{}) {
		p = OWASP()
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	n := opts.Concurrency
	if n < 0 {
		return nil, fmt.Errorf("password: concurrency %d is negative", n)
	}
	if n == 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	dummy := phc{params: p, salt: make([]byte, p.SaltLen), key: make([]byte, p.KeyLen)}
	rand.Read(dummy.salt)
	rand.Read(dummy.key)
	return &Hasher{params: p, slots: make(chan struct{}, n), dummy: dummy.String(), derive: argon2id}, nil
}

// argon2id derives the key on a thread of its own at the lowest priority
// (see the package doc, "Bounded hashing"): the goroutine locks its
// thread and never unlocks it, so the thread, and its priority, end with
// it.
func argon2id(password, salt []byte, p Params) []byte {
	out := make(chan []byte, 1)
	go func() {
		runtime.LockOSThread()
		lowerThreadPriority()
		out <- argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, uint32(p.KeyLen))
	}()
	return <-out
}

// Concurrency is how many hashes run at once at most.
func (h *Hasher) Concurrency() int { return cap(h.slots) }

// Waiting is how many callers wait for a hashing slot now.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// Hash returns the PHC string of password with the Hasher's parameters and
// a new random salt, waiting for a slot until ctx ends. It refuses, as a
// *validation.FieldError, a password that Verify could never accept (not
// UTF-8, or longer than MaxLength); whether a password is acceptable as a
// new one is Policy's decision, to be asked first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	pw, err := prepare(password)
	if err != nil {
		return "", err
	}
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	key, err := h.run(ctx, []byte(pw), salt, h.params)
	if err != nil {
		return "", err
	}
	return phc{params: h.params, salt: salt, key: key}.String(), nil
}

// Verify reports whether password matches the stored PHC string encoded,
// comparing keys in constant time. It fails with ErrMalformedHash when
// encoded does not parse, and with the context's error when ctx ends
// before a slot is free. A password that could never have been hashed
// (not UTF-8, longer than MaxLength) does not match, without hashing.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	stored, err := parse(encoded)
	if err != nil {
		return false, err
	}
	return h.verify(ctx, stored, password)
}

// VerifyAbsent does what Verify does, at the same cost, for a login whose
// account does not exist, and never matches: it returns only the
// context's error. Call it where Verify would have been called so that the
// time of the answer does not tell whether the account exists.
func (h *Hasher) VerifyAbsent(ctx context.Context, password string) error {
	stored, err := parse(h.dummy)
	if err != nil {
		return err
	}
	_, err = h.verify(ctx, stored, password)
	return err
}

func (h *Hasher) verify(ctx context.Context, stored phc, password string) (bool, error) {
	pw, err := prepare(password)
	if err != nil {
		return false, nil
	}
	key, err := h.run(ctx, []byte(pw), stored.salt, stored.params)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, stored.key) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than
// the Hasher's (or does not parse): after a successful login the caller
// hashes the password again and stores the new hash.
func (h *Hasher) NeedsRehash(encoded string) bool {
	stored, err := parse(encoded)
	return err != nil || stored.params != h.params
}

// run derives a key in a slot, waiting for one until ctx ends.
func (h *Hasher) run(ctx context.Context, password, salt []byte, p Params) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-h.slots }()
	return h.derive(password, salt, p), nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("password: waiting for a hashing slot: %w", err)
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("password: waiting for a hashing slot: %w", ctx.Err())
	}
}
