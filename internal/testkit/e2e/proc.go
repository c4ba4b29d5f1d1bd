package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is one run of a long-lived custos process.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	Started time.Time     // when it was started
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, valid after done

	mu      sync.Mutex
	stopped bool // SIGSTOPped and not yet continued
}

// StartProc starts bin with args, appending stdout and stderr to the given
// files (so a restarted node keeps one log). The process is SIGKILLed at
// cleanup if it is still alive.
func StartProc(t testing.TB, name, bin, stdoutPath, stderrPath string, args ...string) *Proc {
	t.Helper()
	return StartProcEnv(t, name, bin, nil, stdoutPath, stderrPath, args...)
}

// StartProcEnv is StartProc with env ("KEY=value") added to the test's
// cleaned environment, such as NOTIFY_SOCKET for a node run as systemd
// would.
func StartProcEnv(t testing.TB, name, bin string, env []string, stdoutPath, stderrPath string, args ...string) *Proc {
	t.Helper()
	open := func(p string) *os.File {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatalf("%s: open log: %v", name, err)
		}
		return f
	}
	stdout, stderr := open(stdoutPath), open(stderrPath)
	fmt.Fprintf(stderr, "==== %s: start %s %s\n", time.Now().Format("15:04:05.000"), name, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(cleanEnv(), env...)
	p := &Proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		t.Fatalf("%s: start: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// cleanEnv is the environment of the test without CUSTOS_ variables, so a
// developer's shell cannot change what the tests run, and without
// systemd's notification variables, so tests run from a service do not
// notify its manager. A race-enabled binary
// sleeps a second at exit by default (GORACE atexit_sleep_ms), which would
// add a second to every CLI call and every stop; races are still reported
// (and make the exit status 66) without it.
func cleanEnv() []string {
	var env []string
	gorace := false
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GORACE=") {
			gorace = true
		}
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID":
			continue
		}
		if !strings.HasPrefix(kv, "CUSTOS_") {
			env = append(env, kv)
		}
	}
	if !gorace {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return env
}

// CheckNoRaces fails the test if any of the log files holds a report of
// the race detector (the e2e tests run race-enabled binaries).
func CheckNoRaces(t testing.TB, files ...string) {
	t.Cleanup(func() {
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if i := bytes.Index(data, []byte("WARNING: DATA RACE")); i >= 0 {
				end := min(len(data), i+4000)
				t.Errorf("%s: the race detector reported a data race:\n%s", filepath.Base(f), data[i:end])
			}
		}
	})
}

// CheckNoSecrets fails the test, at its end, when one of files (node
// logs) carries one of the secrets secrets returns then (tokens the
// harness made or learned during the test): a node must never log a
// credential. The harness's own "==== " lines, which echo a command
// line (a dev node's --dev-token), are not the node's and are skipped.
func CheckNoSecrets(t testing.TB, secrets func() []string, files ...string) {
	t.Cleanup(func() {
		var check []string
		for _, s := range secrets() {
			if len(s) >= 8 { // shorter strings are no credential and match by chance
				check = append(check, s)
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for i, line := range bytes.Split(data, []byte("\n")) {
				if bytes.HasPrefix(line, []byte("==== ")) {
					continue
				}
				for _, s := range check {
					if bytes.Contains(line, []byte(s)) {
						t.Errorf("%s:%d: the node logged a secret (%.6s…)", filepath.Base(f), i+1, s)
					}
				}
			}
		}
	})
}

func (p *Proc) PID() int { return p.cmd.Process.Pid }

func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process if it is still running. It goes through
// os.Process, which (on Linux, through a pidfd) never signals another
// process that reused the pid of one already reaped.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s: already exited", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.name, sig, err)
	}
	return nil
}

// Kill SIGKILLs the process (continuing it first if it is stopped) and
// waits for it to exit.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	p.mu.Lock()
	if p.stopped {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.stopped = false
	}
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Wait waits up to d for the process to exit and returns its exit code.
func (p *Proc) Wait(d time.Duration) (code int, ok bool) {
	if !p.Exited() {
		select {
		case <-p.done:
		case <-time.After(d):
			return 0, false
		}
	}
	if p.err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), true
	}
	return -1, true
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DumpOnFailure prints the last 50 lines of each file when the test has
// failed.
func DumpOnFailure(t testing.TB, files ...string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, f := range files {
			t.Logf("---- last 50 lines of %s ----\n%s", filepath.Base(f), Tail(f, 50))
		}
	})
}

// ReadLines reads a file's lines (for banners written to stdout).
func ReadLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}
