package blobs

import (
	"errors"
	"fmt"

	"github.com/custos/custos/appliance/identity/visibility"
)

// Errors. An invalid parameter of an upload or a listing is a
// *validation.FieldError (validation.ErrInvalid) naming the parameter.
var (
	// ErrNotFound: no blob has this id.
	ErrNotFound = errors.New("blobs: no such blob")
	// ErrTooLarge: the blob exceeds Config.MaxSize.
	ErrTooLarge = errors.New("blobs: the blob is larger than the limit")
	// ErrMediaType: the content type is missing, malformed or not allowed.
	ErrMediaType = errors.New("blobs: the content type is not accepted")
	// ErrIntegrity: a stored chunk or header does not open: altered, moved
	// or missing. It is never served.
	ErrIntegrity = errors.New("blobs: a stored blob failed its integrity check")
	// ErrTruncated: the body ended before its announced length (the
	// client went away).
	ErrTruncated = errors.New("blobs: the upload ended before its announced length")
	// ErrDigest: the body's SHA-256 is not the one the client announced.
	ErrDigest = errors.New("blobs: the upload does not match its announced SHA-256")
	// ErrAborted: the upload was swept or discarded while it ran.
	ErrAborted = errors.New("blobs: the upload was abandoned")
	// ErrContentWithheld: the caller may read blobs' metadata but not
	// their bytes (its role does not read roles.BlobClass in clear). It
	// wraps visibility.ErrWithheld.
	ErrContentWithheld = fmt.Errorf("blobs: content not read by this principal: %w", visibility.ErrWithheld)
)
