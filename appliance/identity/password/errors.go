package password

import "errors"

var (
	// ErrMalformedHash is returned for a stored hash that is not a PHC
	// string this package accepts (see Verify).
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrParams is returned by NewHasher for parameters outside the bounds
	// the parser accepts, so that every hash it makes verifies.
	ErrParams = errors.New("password: invalid argon2id parameters")
)
