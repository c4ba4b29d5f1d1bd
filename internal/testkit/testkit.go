// Package testkit is the project's one test toolkit: the helpers the tests
// of every package share instead of keeping a copy each (as etcd's
// tests/framework). This package holds waiting and disk scans; its
// subpackages start things:
//
//   - testkit (here): Poll and Eventually wait for a condition with a
//     deadline and fail with a message that says what was awaited and what
//     was last seen. Tests never sleep and hope; the deadline only ends a
//     broken test, so it is generous. ScanFiles and FilesHolding look for
//     secrets written to disk in the clear.
//   - testkit/storetest: in-process raftstore nodes and clusters on
//     loopback (real TLS, real disks in t.TempDir, Raft timeouts shrunk).
//   - testkit/e2e: the custos binary built once, real processes (start,
//     wait, kill -9), three-node clusters on loopback, the CLI.
//
// This package imports nothing of the project, so that every package's
// tests can use it — raftstore's own white-box tests included, which
// cannot import anything that imports raftstore.
package testkit

import (
	"errors"
	"testing"
	"time"
)

// Timeout is how long Eventually waits. Only a broken test waits that long.
const Timeout = 20 * time.Second

// The first and the longest pause between two polls: a condition that
// holds soon is seen soon, one that takes seconds is not asked hundreds of
// times (some conditions are HTTP calls to real processes).
const (
	firstInterval = 2 * time.Millisecond
	maxInterval   = 100 * time.Millisecond
)

// Eventually calls cond until it returns true; if it has not after
// Timeout, it fails tb with "timed out after 20s waiting for what".
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyEqual(tb, what, cond, true)
}

var errNotYet = errors.New("not yet")

// EventuallyEqual calls get until it returns want; if it has not after
// Timeout, it fails tb with "timed out after 20s waiting for what", and for
// anything but a bool " to be want (last got)".
func EventuallyEqual[T comparable](tb testing.TB, what string, get func() T, want T) {
	tb.Helper()
	eventuallyEqual(tb, Timeout, what, get, want)
}

func eventuallyEqual[T comparable](tb testing.TB, timeout time.Duration, what string, get func() T, want T) {
	tb.Helper()
	var got T
	err := Wait(timeout, func() error {
		if got = get(); got != want {
			return errNotYet
		}
		return nil
	})
	if err == nil {
		return
	}
	if _, isBool := any(want).(bool); isBool {
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		return
	}
	tb.Fatalf("timed out after %v waiting for %s to be %v (last %v)", timeout, what, want, got)
}

// Poll calls cond until it returns nil. If it has not within timeout, Poll
// fails tb with "what: not within timeout: " and cond's last error, which
// should say what was seen ("2 entries queued, want 3"); if cond returns
// an error marked Permanent, Poll fails at once with "what: " and that
// error.
func Poll(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Wait(timeout, cond); err != nil {
		if IsPermanent(err) {
			tb.Fatalf("%s: %v", what, err)
			return
		}
		tb.Fatalf("%s: not within %v: %v", what, timeout, err)
	}
}

// Wait is Poll for code that decides itself what a timeout means: it
// returns nil once cond does, cond's last error when timeout has passed,
// or at once a Permanent one.
func Wait(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if IsPermanent(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
		interval = min(2*interval, maxInterval)
	}
}

// permanentError marks an error that no amount of waiting cures.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that no amount of waiting cures (a process
// died): Poll and Wait give up at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
