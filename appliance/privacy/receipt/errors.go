package receipt

import (
	"errors"
	"fmt"
)

// Errors. Every failure of verification wraps one of them.
var (
	// ErrSignature: the artifact is not signed by the given key, carries
	// other signatures, or its signature is not in canonical form.
	ErrSignature = errors.New("receipt: signature does not verify")
	// ErrFormat: the signed text is not a well-formed artifact in
	// canonical form.
	ErrFormat = errors.New("receipt: malformed artifact")
	// ErrKey: the verifier key is not a signed-note verifier key.
	ErrKey = errors.New("receipt: bad verifier key")
	// ErrFileMismatch: a listed file's size or SHA-256 differs from the
	// manifest.
	ErrFileMismatch = errors.New("receipt: file does not match the manifest")
	// ErrFileMissing: a listed file is absent.
	ErrFileMissing = errors.New("receipt: listed file is missing")
	// ErrFileUnlisted: a file is present that the manifest does not list.
	ErrFileUnlisted = errors.New("receipt: file is not listed in the manifest")
	// ErrArchive: a zip archive holds an entry that cannot be checked
	// unambiguously (duplicate, non-local or irregular name).
	ErrArchive = errors.New("receipt: unsafe archive")
)

// FileError names the file a verification failure is about.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }
