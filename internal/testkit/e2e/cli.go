package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CLIResult is one finished CLI invocation.
type CLIResult struct {
	Stdout, Stderr string
	Code           int
}

func (r CLIResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// RunCLI runs one short-lived custos command and waits (at most a minute)
// for it to finish.
func RunCLI(t testing.TB, bin string, args ...string) CLIResult {
	t.Helper()
	return RunCLIWith(t, bin, CLIInput{}, args...)
}

// CLIInput is what a command reads besides its arguments: its standard
// input (what a person types at a prompt) and environment variables added
// to the clean environment (such as XDG_CONFIG_HOME, where `custos
// login` keeps its session).
type CLIInput struct {
	Stdin string
	Env   []string
}

// RunCLIWith is RunCLI with standard input and environment. A command
// whose --addr names a node of a test cluster trusts the cluster's CA
// (CUSTOS_CACERT) unless it names a --ca-cert itself.
func RunCLIWith(t testing.TB, bin string, in CLIInput, args ...string) CLIResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(cleanEnv(), caEnv(args)...), in.Env...)
	cmd.Stdin = strings.NewReader(in.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := CLIResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("custos %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("custos %s: did not finish within a minute", strings.Join(args, " "))
	}
	return r
}

// RunningCLI is a custos command that runs while the test talks to it
// (custos login waits for a browser): its standard error is read line by
// line, its standard output kept for the end.
type RunningCLI struct {
	cmd    *exec.Cmd
	lines  chan string
	stdout bytes.Buffer
	done   chan struct{}
	err    error
}

// StartCLI starts a custos command with the test's clean environment plus
// extraEnv (KEY=VALUE), and ends it with the test.
func StartCLI(t testing.TB, bin string, extraEnv []string, args ...string) *RunningCLI {
	t.Helper()
	r := &RunningCLI{cmd: exec.Command(bin, args...), lines: make(chan string, 256), done: make(chan struct{})}
	r.cmd.Env = append(append(cleanEnv(), caEnv(args)...), extraEnv...)
	r.cmd.Stdout = &r.stdout
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("custos %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// Line returns the next line of standard error that match accepts,
// waiting at most d.
func (r *RunningCLI) Line(d time.Duration, match func(string) bool) (string, error) {
	timeout := time.After(d)
	var seen []string
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				return "", fmt.Errorf("the command ended without such a line; its standard error:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if match(l) {
				return l, nil
			}
		case <-timeout:
			return "", fmt.Errorf("no such line within %s; standard error so far:\n%s", d, strings.Join(seen, "\n"))
		}
	}
}

// Wait waits at most d for the command to end and returns its result
// (standard error: the lines Line did not take).
func (r *RunningCLI) Wait(d time.Duration) (CLIResult, error) {
	var rest []string
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-r.lines:
			if ok {
				rest = append(rest, l)
				continue
			}
			<-r.done
			res := CLIResult{Stdout: r.stdout.String(), Stderr: strings.Join(rest, "\n")}
			var ee *exec.ExitError
			switch {
			case r.err == nil:
			case errors.As(r.err, &ee):
				res.Code = ee.ExitCode()
			default:
				return res, r.err
			}
			return res, nil
		case <-timeout:
			return CLIResult{}, fmt.Errorf("the command did not end within %s", d)
		}
	}
}

// Must returns the end-to-end tests' check of a command: it fails t
// unless the command exited 0, naming what it was, and returns the result.
func Must(t testing.TB) func(r CLIResult, what string) CLIResult {
	return func(r CLIResult, what string) CLIResult {
		t.Helper()
		if r.Code != 0 {
			t.Fatalf("%s: %v", what, r)
		}
		return r
	}
}

// Files returns a writer of input files (schemas, records) into dir: it
// writes body to dir/name (0600) and returns the path, failing t if it
// cannot.
func Files(t testing.TB, dir string) func(name, body string) string {
	return func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}
