package testkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestEventuallySaysWhatItSawLast(t *testing.T) {
	r := &recorder{TB: t}
	eventuallyEqual(r, 0, "entries queued", func() int { return 2 }, 3)
	if want := "timed out after 0s waiting for entries queued to be 3 (last 2)"; r.failed != want {
		t.Fatalf("EventuallyEqual failed with %q, want %q", r.failed, want)
	}
	r = &recorder{TB: t}
	eventuallyEqual(r, 0, "a leader", func() bool { return false }, true)
	if want := "timed out after 0s waiting for a leader"; r.failed != want {
		t.Fatalf("Eventually failed with %q, want %q", r.failed, want)
	}
}

func TestWaitReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	err := Wait(time.Minute, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Wait: %v after %d calls, want nil after 3", err, calls)
	}
}

func TestWaitReturnsTheLastErrorAtTheDeadline(t *testing.T) {
	calls := 0
	err := Wait(20*time.Millisecond, func() error { calls++; return fmt.Errorf("seen %d", calls) })
	if err == nil || err.Error() != fmt.Sprintf("seen %d", calls) || calls < 2 {
		t.Fatalf("Wait: %v after %d calls, want the last call's error", err, calls)
	}
}

func TestPermanentEndsTheWaitAtOnce(t *testing.T) {
	dead := errors.New("process exited")
	calls := 0
	err := Wait(time.Minute, func() error { calls++; return fmt.Errorf("n1: %w", Permanent(dead)) })
	if calls != 1 || !errors.Is(err, dead) || !IsPermanent(err) {
		t.Fatalf("Wait: %v after %d calls, want the permanent error after 1", err, calls)
	}
	if Permanent(nil) != nil || IsPermanent(dead) {
		t.Fatal("Permanent(nil) is not nil, or a plain error counts as permanent")
	}
	r := &recorder{TB: t}
	Poll(r, time.Minute, "n1 healthy", func() error { return Permanent(dead) })
	if r.failed != "n1 healthy: process exited" {
		t.Fatalf("Poll failed with %q", r.failed)
	}
}

func TestFailureMessagesSayWhatWasAwaited(t *testing.T) {
	r := &recorder{TB: t}
	Poll(r, 10*time.Millisecond, "entries queued", func() error { return errors.New("2 queued, want 3") })
	if !strings.HasPrefix(r.failed, "entries queued: not within 10ms: 2 queued, want 3") {
		t.Fatalf("Poll failed with %q", r.failed)
	}
	r = &recorder{TB: t}
	Poll(r, time.Minute, "ok", func() error { return nil })
	Eventually(r, "true", func() bool { return true })
	EventuallyEqual(r, "a count", func() int { return 3 }, 3)
	if r.failed != "" {
		t.Fatalf("a condition that holds failed the test: %q", r.failed)
	}
}

func TestFilesHoldingFindsWhatIsOnDisk(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"a.bin": "xx SECRET xx", "sub/b.log": "nothing", "sub/c.db": "SECRET"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := FilesHolding(t, []byte("SECRET"), dir, filepath.Join(dir, "gone"))
	slices.Sort(got)
	if want := []string{filepath.Join(dir, "a.bin"), filepath.Join(dir, "sub/c.db")}; !slices.Equal(got, want) {
		t.Fatalf("FilesHolding = %v, want %v", got, want)
	}
}
