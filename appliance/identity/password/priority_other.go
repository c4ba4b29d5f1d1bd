//go:build !linux

package password

// lowerThreadPriority does nothing where a thread's priority cannot be
// set alone: hashing is then only bounded.
func lowerThreadPriority() {}
