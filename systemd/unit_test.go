// Package systemd holds custos.service, the unit the package installs, and
// its test: systemd's own analyzer must accept it (verify) and rate its
// sandbox "OK" (security, exposure at most 1.5), on an offline root that
// holds the unit, an executable at its ExecStart path and the host's
// systemd units (the targets it is ordered against).
package systemd_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const unit = "custos.service"

// maxExposure is what systemd-analyze security calls "OK" at most.
const maxExposure = 1.5

// analyzer is systemd-analyze; make test installs it (package systemd)
// where it is missing.
func analyzer(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not installed on this machine (make test-tools installs it): %v", err)
	}
	return p
}

// offlineRoot is a directory tree systemd-analyze --root reads as a
// system: the host's units, the unit under test, and executables where
// ExecStart and ExecReload point (custos; kill, which every system has).
func offlineRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	units := filepath.Join(root, "usr", "lib", "systemd", "system")
	if err := os.CopyFS(units, os.DirFS("/usr/lib/systemd/system")); err != nil {
		t.Fatalf("copy the host's units: %v", err)
	}
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(units, unit), data, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "usr", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, exe := range []string{"custos", "kill"} {
		if err := os.WriteFile(filepath.Join(bin, exe), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestVerify: systemd-analyze verify reports nothing at all — an unknown
// key or a bad value is only a warning to it, and a warning fails here.
// (--man=no: the man page is the package's, checked by its test.)
func TestVerify(t *testing.T) {
	sa, root := analyzer(t), offlineRoot(t)
	out, err := exec.Command(sa, "verify", "--man=no", "--root="+root, unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unit) + `: ([0-9.]+) (\S+)`)

// TestSecurity: the sandbox is rated at most 1.5 ("OK").
func TestSecurity(t *testing.T) {
	sa, root := analyzer(t), offlineRoot(t)
	out, err := exec.Command(sa, "security", "--offline=true", "--root="+root, "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposure.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	level, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f %s", level, m[2])
	if level > maxExposure {
		t.Fatalf("exposure %.1f > %.1f:\n%s", level, maxExposure, out)
	}
}

// TestDirectives: what the unit must say, as lines of it (what the
// analyzer does not demand: the notify protocol, the watchdog, the
// configuration path, no core dumps, no capabilities).
func TestDirectives(t *testing.T) {
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, want := range []string{
		"Type=notify",
		"NotifyAccess=main",
		"ExecStart=/usr/bin/custos server --config /etc/custos/custos.toml",
		"ExecReload=kill -HUP $MAINPID",
		"WatchdogSec=30s",
		"Restart=on-failure",
		"User=custos",
		"Group=custos",
		"StateDirectory=custos",
		"StateDirectoryMode=0700",
		"ConfigurationDirectory=custos",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"PrivateDevices=yes",
		"NoNewPrivileges=yes",
		"CapabilityBoundingSet=",
		"AmbientCapabilities=",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter=@system-service",
		"MemoryDenyWriteExecute=yes",
		"LimitNOFILE=65536",
		"LimitCORE=0",
		"UMask=0077",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("%s has no line %q", unit, want)
		}
	}
}
