package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/validation"
)

// cheap are parameters small enough for tests that hash many times; the
// OWASP parameters are tested by the round trip and the benchmarks.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHasher(t *testing.T, opts Options) *Hasher {
	t.Helper()
	h, err := NewHasher(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRoundTripOWASP(t *testing.T) {
	h := newHasher(t, Options{})
	ctx := context.Background()
	const pw = "correct horse battery staple"
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not carry the OWASP parameters", enc)
	}
	stored, err := parse(enc)
	if err != nil || len(stored.salt) != 16 || len(stored.key) != 32 {
		t.Fatalf("parse(%q) = %+v, %v; want a 16-byte salt and a 32-byte key", enc, stored, err)
	}
	if strings.Contains(enc, pw) {
		t.Fatal("the hash contains the password")
	}
	if ok, err := h.Verify(ctx, enc, pw); !ok || err != nil {
		t.Fatalf("Verify(right password) = %v, %v", ok, err)
	}
	if ok, err := h.Verify(ctx, enc, "correct horse battery stapl"); ok || err != nil {
		t.Fatalf("Verify(wrong password) = %v, %v", ok, err)
	}
	if h.NeedsRehash(enc) {
		t.Error("a hash with the current parameters needs a rehash")
	}
	again, err := h.Hash(ctx, pw)
	if err != nil || again == enc {
		t.Errorf("two hashes of one password are equal (%v): the salt is not random", err)
	}
}

func TestVerify(t *testing.T) {
	h := newHasher(t, Options{Params: cheap})
	ctx := context.Background()
	const pw = "Gr\u00fcne Wiese am Fluss" // ü composed
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := parse(enc)
	flip := func(b []byte) []byte { c := append([]byte(nil), b...); c[0] ^= 1; return c }
	for _, c := range []struct {
		name    string
		encoded string
		pw      string
		want    bool
	}{
		{"right", enc, pw, true},
		{"decomposed form of the same password", enc, "Gru\u0308ne Wiese am Fluss", true},
		{"wrong", enc, "Grune Wiese am Fluss", false},
		{"case differs", enc, strings.ToLower(pw), false},
		{"empty", enc, "", false},
		{"tampered salt", phc{stored.params, flip(stored.salt), stored.key}.String(), pw, false},
		{"tampered key", phc{stored.params, stored.salt, flip(stored.key)}.String(), pw, false},
		{"tampered memory", phc{Params{65, 1, 1, 16, 32}, stored.salt, stored.key}.String(), pw, false},
		{"tampered time", phc{Params{64, 2, 1, 16, 32}, stored.salt, stored.key}.String(), pw, false},
		{"tampered lanes", phc{Params{64, 1, 2, 16, 32}, stored.salt, stored.key}.String(), pw, false},
		{"truncated key", phc{Params{64, 1, 1, 16, 31}, stored.salt, stored.key[:31]}.String(), pw, false},
		{"too long to have been hashed", enc, strings.Repeat("a", MaxLength+1), false},
		{"not UTF-8", enc, "\xff" + pw, false},
	} {
		ok, err := h.Verify(ctx, c.encoded, c.pw)
		if ok != c.want || err != nil {
			t.Errorf("%s: Verify = %v, %v; want %v", c.name, ok, err, c.want)
		}
	}
	if ok, err := h.Verify(ctx, strings.Replace(enc, "argon2id", "argon2i", 1), pw); ok || !errors.Is(err, ErrMalformedHash) {
		t.Errorf("Verify(malformed) = %v, %v; want ErrMalformedHash", ok, err)
	}
}

func TestHashRefusesWhatCannotVerify(t *testing.T) {
	h := newHasher(t, Options{Params: cheap})
	for _, pw := range []string{strings.Repeat("é", MaxLength+1), "abc\xffdefghijklm", strings.Repeat("a", maxInputBytes+1)} {
		_, err := h.Hash(context.Background(), pw)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != "password" {
			t.Errorf("Hash(%d bytes) = %v, want a FieldError on password", len(pw), err)
		}
	}
	// The longest password still hashes and verifies.
	long := strings.Repeat("é", MaxLength)
	enc, err := h.Hash(context.Background(), long)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(context.Background(), enc, long); !ok || err != nil {
		t.Errorf("Verify(longest) = %v, %v", ok, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	h := newHasher(t, Options{Params: cheap})
	enc, err := h.Hash(context.Background(), "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if h.NeedsRehash(enc) {
		t.Error("current parameters need a rehash")
	}
	for _, p := range []Params{
		{128, 1, 1, 16, 32}, {64, 2, 1, 16, 32}, {64, 1, 2, 16, 32}, {64, 1, 1, 24, 32}, {64, 1, 1, 16, 48},
	} {
		other := newHasher(t, Options{Params: p})
		if !other.NeedsRehash(enc) {
			t.Errorf("a hasher with %+v does not rehash a hash made with %+v", p, cheap)
		}
	}
	if !h.NeedsRehash("not a hash") {
		t.Error("a malformed hash does not need a rehash")
	}
}

func TestNewHasherRefusesBadParams(t *testing.T) {
	for _, p := range []Params{
		{Memory: 4, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		{Memory: maxMemory + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		if _, err := NewHasher(Options{Params: p}); !errors.Is(err, ErrParams) {
			t.Errorf("NewHasher(%+v) = %v, want ErrParams", p, err)
		}
	}
	if _, err := NewHasher(Options{Concurrency: -1}); err == nil {
		t.Error("a negative concurrency is accepted")
	}
	if h := newHasher(t, Options{}); h.Concurrency() < 1 {
		t.Errorf("default concurrency %d", h.Concurrency())
	}
}

// VerifyAbsent derives a key with the current parameters, through a slot,
// exactly as Verify does, and never matches.
func TestVerifyAbsentCostsAVerify(t *testing.T) {
	h := newHasher(t, Options{Params: cheap})
	var calls []Params
	h.derive = func(pw, salt []byte, p Params) []byte {
		calls = append(calls, p)
		return argon2id(pw, salt, p)
	}
	enc, err := h.Hash(context.Background(), "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(context.Background(), enc, "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	if err := h.VerifyAbsent(context.Background(), "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[1] != calls[2] || calls[2] != cheap {
		t.Fatalf("derivations %+v: VerifyAbsent did not cost what Verify costs", calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.VerifyAbsent(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyAbsent(cancelled) = %v", err)
	}
}

// gate replaces a Hasher's key derivation with one that counts how many
// run at once and blocks until released.
type gate struct {
	running, peak atomic.Int64
	release       chan struct{}
}

func newGate(h *Hasher) *gate {
	g := &gate{release: make(chan struct{})}
	h.derive = func(pw, salt []byte, p Params) []byte {
		n := g.running.Add(1)
		for {
			old := g.peak.Load()
			if n <= old || g.peak.CompareAndSwap(old, n) {
				break
			}
		}
		<-g.release
		g.running.Add(-1)
		return argon2id(pw, salt, p)
	}
	return g
}

func TestConcurrencyIsBounded(t *testing.T) {
	const slots, callers = 2, 7
	h := newHasher(t, Options{Params: cheap, Concurrency: slots})
	g := newGate(h)
	enc, err := NewHasher(Options{Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := enc.Hash(context.Background(), "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch i % 3 {
			case 0:
				_, err = h.Hash(context.Background(), "a long enough passphrase")
			case 1:
				_, err = h.Verify(context.Background(), stored, "a long enough passphrase")
			default:
				err = h.VerifyAbsent(context.Background(), "a long enough passphrase")
			}
			errs <- err
		}()
	}
	testkit.Eventually(t, "all slots taken and the rest waiting", func() bool {
		return g.running.Load() == slots && h.Waiting() == callers-slots
	})
	close(g.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if p := g.peak.Load(); p != slots {
		t.Errorf("%d hashes ran at once, want at most (and, under this load, exactly) %d", p, slots)
	}
	if w := h.Waiting(); w != 0 {
		t.Errorf("%d still waiting", w)
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	h := newHasher(t, Options{Params: cheap, Concurrency: 1})
	g := newGate(h)
	held := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "the one that holds the slot")
		held <- err
	}()
	testkit.Eventually(t, "the slot taken", func() bool { return g.running.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		_, err := h.Verify(ctx, validPHC, "a long enough passphrase")
		waited <- err
	}()
	testkit.Eventually(t, "one caller waiting", func() bool { return h.Waiting() == 1 })
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("Verify while waiting, cancelled = %v, want context.Canceled", err)
	}
	if w := h.Waiting(); w != 0 {
		t.Errorf("%d waiting after the cancellation", w)
	}
	if r := g.running.Load(); r != 1 {
		t.Errorf("the cancelled caller ran a hash: %d running", r)
	}
	close(g.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	// A context already ended never takes a free slot.
	if _, err := h.Hash(ctx, "a long enough passphrase"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash(ended context) = %v", err)
	}
}
