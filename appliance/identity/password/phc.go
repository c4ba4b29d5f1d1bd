package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2id parameters of a hash.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen int    // bytes of random salt
	KeyLen  int    // bytes of derived key
}

// OWASP returns the parameters new hashes use: argon2id with 19 MiB,
// 2 passes, 1 lane, a 16-byte salt and a 32-byte key (the package
// documentation says why).
func OWASP() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds the parser accepts. They keep a corrupt or planted hash from
// costing unbounded memory or time, and are far above any sensible choice.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 32
	maxThreads = 64
	minSalt    = 8 // bytes; the PHC format's minimum (new hashes use 16)
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
)

// check reports whether p lies within the parser's bounds.
func (p Params) check() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: p=%d is not 1 to %d", ErrParams, p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: m=%d is not 8p to %d KiB", ErrParams, p.Memory, maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: t=%d is not 1 to %d", ErrParams, p.Time, maxTime)
	case p.SaltLen < minSalt || p.SaltLen > maxSalt:
		return fmt.Errorf("%w: salt of %d bytes is not %d to %d", ErrParams, p.SaltLen, minSalt, maxSalt)
	case p.KeyLen < minKey || p.KeyLen > maxKey:
		return fmt.Errorf("%w: key of %d bytes is not %d to %d", ErrParams, p.KeyLen, minKey, maxKey)
	}
	return nil
}

// phc is a parsed argon2id hash.
type phc struct {
	params Params
	salt   []byte
	key    []byte
}

var b64 = base64.RawStdEncoding.Strict()

// String encodes h as a PHC string.
func (h phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parse decodes a PHC string of an argon2id hash, version 19, with exactly
// the parameters m, t and p in that order, within the bounds above, and
// refuses anything that does not re-encode to the same string (leading
// zeros, a sign, padding, line breaks base64 would skip, trailing bits).
func parse(s string) (phc, error) {
	fail := func(why string) (phc, error) { return phc{}, fmt.Errorf("%w: %s", ErrMalformedHash, why) }
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("not a PHC string of five fields")
	}
	if parts[1] != "argon2id" {
		return fail("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return fail("not version 19")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("parameters are not m, t and p")
	}
	var nums [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return fail("parameters are not m, t and p")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fail("parameter " + name + " is not a number")
		}
		nums[i] = n
	}
	if nums[2] > maxThreads {
		return fail("parameters out of bounds")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return fail("salt is not base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return fail("key is not base64")
	}
	h := phc{
		params: Params{Memory: uint32(nums[0]), Time: uint32(nums[1]), Threads: uint8(nums[2]), SaltLen: len(salt), KeyLen: len(key)},
		salt:   salt,
		key:    key,
	}
	if err := h.params.check(); err != nil {
		return fail("parameters out of bounds")
	}
	if h.String() != s {
		return fail("not in canonical form")
	}
	return h, nil
}
