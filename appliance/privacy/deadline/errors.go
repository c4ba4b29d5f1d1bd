package deadline

import "errors"

var (
	// ErrAlreadyExtended: the request's deadline was extended once; the
	// laws allow one extension, so a second is refused.
	ErrAlreadyExtended = errors.New("deadline already extended")
	// ErrExtensionTooLate: an extension decided after the original period
	// ended. Each law requires the subject to be told of the extension, with
	// its reasons, within the original period, so a late one is refused.
	ErrExtensionTooLate = errors.New("extension after the original period ended")
)
