package roles

import "errors"

var (
	// ErrUnknownPermission is returned by ParsePermission for text that
	// names no permission of the table.
	ErrUnknownPermission = errors.New("roles: unknown permission")
	// ErrUnknownAPIKeyPermission is returned by FromAPIKey for a
	// permission an API key cannot hold.
	ErrUnknownAPIKeyPermission = errors.New("roles: unknown api key permission")
)
