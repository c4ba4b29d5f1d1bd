// Package packaging holds what `make package` builds the custos .deb and
// .rpm from (nfpm.yaml, build.sh, the maintainer scripts, the default
// configuration) and the test of what comes out: built as make package
// builds it (a static, stripped binary; nfpm from tools/nfpm), the .deb's
// contents, modes, owners and conffile, an install into a throw-away root
// whose binary then runs, lintian without errors, and the .rpm's files,
// modes, owners and config flags.
package packaging_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

const version = "0.0.0-test"

// debVersion is version as nfpm writes it for dpkg (and rpm): "-" → "~",
// and the release.
const debVersion = "0.0.0~test-1"

// built is the run's one build of the packages, shared by the tests (the
// build is most of their time), removed by TestMain.
var built struct {
	once     sync.Once
	dir      string
	deb, rpm string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// repoRoot is the repository's root (this package's parent).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// run runs a command and returns its output; a failure fails t.
func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// need fails t when a tool the test drives is not installed (make test
// installs them: make test-tools).
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed on this machine (make test-tools installs it)", tool)
		}
	}
}

// packages builds the .deb and the .rpm once: the binary as make package
// builds it, with bin/nfpm (make builds it once per version).
func packages(t *testing.T) (deb, rpm string) {
	t.Helper()
	built.once.Do(func() {
		root := repoRoot(t)
		dir, err := os.MkdirTemp("", "custos-package-test-*")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		bin := filepath.Join(dir, "custos")
		steps := []*exec.Cmd{
			exec.Command("make", "-s", "bin/nfpm"),
			exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+version+" -s -w", "-o", bin, "./cmd/custos"),
			exec.Command("packaging/build.sh", bin, "bin/nfpm", dir, version),
		}
		for _, c := range steps {
			c.Dir, c.Env = root, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
			if out, err := c.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("%s: %w\n%s", strings.Join(c.Args, " "), err, out)
				return
			}
		}
		built.deb = filepath.Join(dir, "custos_"+debVersion+"_amd64.deb")
		built.rpm = filepath.Join(dir, "custos-"+strings.TrimSuffix(debVersion, "-1")+"-1.x86_64.rpm")
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.deb, built.rpm
}

// entry is one file of a package: its mode string (ls -l), owner, group.
type entry struct{ mode, owner, group string }

// The files whose mode and owner the package promises, in both formats.
var promised = map[string]entry{
	"/usr/bin/custos":                                     {"-rwxr-xr-x", "root", "root"},
	"/usr/lib/systemd/system/custos.service":              {"-rw-r--r--", "root", "root"},
	"/etc/custos":                                         {"drwxr-x---", "root", "custos"},
	"/etc/custos/custos.toml":                             {"-rw-r-----", "root", "custos"},
	"/var/lib/custos":                                     {"drwx------", "custos", "custos"},
	"/usr/share/bash-completion/completions/custos":       {"-rw-r--r--", "root", "root"},
	"/usr/share/zsh/vendor-completions/_custos":           {"-rw-r--r--", "root", "root"},
	"/usr/share/fish/vendor_completions.d/custos.fish":    {"-rw-r--r--", "root", "root"},
	"/usr/share/man/man1/custos.1.gz":                     {"-rw-r--r--", "root", "root"},
	"/usr/share/man/man1/custos-server.1.gz":              {"-rw-r--r--", "root", "root"},
	"/usr/share/doc/custos/operations.md":                 {"-rw-r--r--", "root", "root"},
	"/usr/share/doc/custos/grafana/custos-dashboard.json": {"-rw-r--r--", "root", "root"},
}

// dpkgList matches a line of dpkg-deb --contents: mode owner/group size
// date time ./path.
var dpkgList = regexp.MustCompile(`^([-dlrwxst]{10}) (\S+)/(\S+) +\d+ \S+ \S+ \.(/\S*?)/?$`)

func TestDeb(t *testing.T) {
	need(t, "dpkg-deb", "dpkg")
	deb, _ := packages(t)

	got := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(string(run(t, "", nil, "dpkg-deb", "--contents", deb))), "\n") {
		m := dpkgList.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("dpkg-deb --contents: unexpected line %q", line)
		}
		got[m[4]] = entry{m[1], m[2], m[3]}
	}
	checkEntries(t, "deb", got)
	for _, doc := range []string{"/usr/share/doc/custos/copyright", "/usr/share/doc/custos/changelog.Debian.gz"} {
		if _, ok := got[doc]; !ok {
			t.Errorf("deb: no %s", doc)
		}
	}

	fields := string(run(t, "", nil, "dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends"))
	for _, want := range []string{"Package: custos\n", "Version: " + debVersion + "\n", "Architecture: amd64\n", "Depends: passwd\n"} {
		if !strings.Contains(fields, want) {
			t.Errorf("deb control: no %q in\n%s", want, fields)
		}
	}
	if conf := strings.TrimSpace(string(run(t, "", nil, "dpkg-deb", "--info", deb, "conffiles"))); conf != "/etc/custos/custos.toml" {
		t.Errorf("deb conffiles: %q, want /etc/custos/custos.toml", conf)
	}

	// What ships is what the repository holds.
	x := t.TempDir()
	run(t, "", nil, "dpkg-deb", "--extract", deb, x)
	root := repoRoot(t)
	for pkgPath, repoPath := range map[string]string{
		"usr/lib/systemd/system/custos.service": "systemd/custos.service",
		"etc/custos/custos.toml":                "packaging/custos.toml",
	} {
		a, _ := os.ReadFile(filepath.Join(x, pkgPath))
		b, _ := os.ReadFile(filepath.Join(root, repoPath))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("deb: /%s is not %s", pkgPath, repoPath)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(x, "usr/share/doc/custos/grafana/custos-dashboard.json")); !json.Valid(b) {
		t.Error("deb: the Grafana dashboard is not JSON")
	}
	if page := gunzip(t, filepath.Join(x, "usr/share/man/man1/custos-server.1.gz")); !strings.Contains(page, "--config") {
		t.Errorf("deb: custos-server(1) does not document --config:\n%s", page)
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

func checkEntries(t *testing.T, format string, got map[string]entry) {
	t.Helper()
	var paths []string
	for p := range promised {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if e, ok := got[p]; !ok {
			t.Errorf("%s: no %s", format, p)
		} else if e != promised[p] {
			t.Errorf("%s: %s is %v, want %v", format, p, e, promised[p])
		}
	}
}

// TestDebInstall installs the .deb into a throw-away root with dpkg
// --root. Its maintainer scripts then run outside that root
// (--force-script-chrootless: the root holds no shell) with DPKG_ROOT
// naming it, so the preinst adds the user and group to the root's /etc
// and nothing of the host's; dpkg itself resolves the archive's owner
// names on the host, so the owners are checked in the archive (TestDeb)
// and the modes here.
func TestDebInstall(t *testing.T) {
	need(t, "dpkg")
	deb, _ := packages(t)
	root := t.TempDir()
	for _, d := range []string{"etc", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":           "root:x:0:\n",
		"etc/shadow":          "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":         "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hostUser := exec.Command("getent", "passwd", "custos").Run() == nil
	install := func() {
		t.Helper()
		run(t, "", nil, "dpkg", "--root="+root, "--force-script-chrootless", "--force-depends", "--log=/dev/null", "--install", deb)
	}
	install()

	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !regexp.MustCompile(`(?m)^custos:x:\d+:\d+:Custos node:/var/lib/custos:/usr/sbin/nologin$`).Match(passwd) {
		t.Errorf("the preinst did not add the user custos to the root:\n%s", passwd)
	}
	if !regexp.MustCompile(`(?m)^custos:x:\d+:$`).Match(group) {
		t.Errorf("the preinst did not add the group custos to the root:\n%s", group)
	}
	if !hostUser && exec.Command("getent", "passwd", "custos").Run() == nil {
		t.Error("the preinst added the user custos to the host")
	}
	for p, want := range promised {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		if got := fi.Mode().String(); got != want.mode {
			t.Errorf("installed %s: mode %s, want %s", p, got, want.mode)
		}
	}

	custos := filepath.Join(root, "usr/bin/custos")
	if out := string(run(t, "", nil, custos, "--version")); out != "custos version "+version+"\n" {
		t.Errorf("installed custos --version: %q", out)
	}
	// The unit's command line, with the installed configuration: it loads.
	unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/custos.service"))
	m := regexp.MustCompile(`(?m)^ExecStart=/usr/bin/custos (.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatalf("installed unit has no ExecStart of /usr/bin/custos:\n%s", unit)
	}
	conf := filepath.Join(root, "etc/custos/custos.toml")
	args := strings.Fields(strings.ReplaceAll(string(m[1]), "/etc/custos/custos.toml", conf))
	if dump := string(run(t, "", nil, custos, append(args, "--config-dump")...)); !strings.Contains(dump, `data_dir = "/var/lib/custos"`) {
		t.Errorf("custos %s --config-dump:\n%s", strings.Join(args, " "), dump)
	}

	// The configuration is a conffile: an operator's change survives a
	// reinstall.
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "# changed by the operator")
	f.Close()
	install()
	if b, _ := os.ReadFile(conf); !bytes.Contains(b, []byte("# changed by the operator")) {
		t.Error("reinstalling replaced the operator's configuration")
	}
}

// TestLintian: lintian finds no error in the .deb (warnings are logged).
// Two of its checks are left out, as they take minutes on this machine
// and look at what the package does not write itself: the rendering of
// every one of the ~120 man pages cobra generates (documentation/manual)
// and the spelling of every string in the Go binary (binaries/spelling).
func TestLintian(t *testing.T) {
	need(t, "lintian")
	deb, _ := packages(t)
	cmd := exec.Command("lintian", "--fail-on", "error", "--tag-display-limit", "0",
		"--dont-check-part", "documentation/manual,binaries/spelling", deb)
	out, err := cmd.CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if err != nil {
		t.Fatalf("lintian: %v", err)
	}
}

// TestRPM: the .rpm's digests check, and its files have the modes, owners
// and flags the .deb's have (the configuration %config(noreplace)).
func TestRPM(t *testing.T) {
	need(t, "rpm")
	_, rpm := packages(t)
	run(t, "", nil, "rpm", "--checksig", "--nosignature", rpm)
	out := run(t, "", nil, "rpm", "--query", "--package", "--queryformat",
		`[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]`, rpm)
	got, flags := map[string]entry{}, map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 { // no flags
			f = []string{f[0], f[1], f[2], "", f[3]}
		}
		if len(f) != 5 {
			t.Fatalf("rpm: unexpected line %q", line)
		}
		got[f[4]], flags[f[4]] = entry{f[0], f[1], f[2]}, f[3]
	}
	checkEntries(t, "rpm", got)
	if flags["/etc/custos/custos.toml"] != "cn" {
		t.Errorf("rpm: /etc/custos/custos.toml has flags %q, want cn (config, noreplace)", flags["/etc/custos/custos.toml"])
	}
	if req := string(run(t, "", nil, "rpm", "--query", "--package", "--requires", rpm)); !strings.Contains(req, "shadow-utils") {
		t.Errorf("rpm requires:\n%s", req)
	}
	if s := string(run(t, "", nil, "rpm", "--query", "--package", "--scripts", rpm)); !strings.Contains(s, "useradd") || !strings.Contains(s, "preinstall scriptlet") {
		t.Errorf("rpm scripts:\n%s", s)
	}
}
