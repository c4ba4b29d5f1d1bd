package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
)

// DevNode is a dev-mode custos process with a fixed operator token.
type DevNode struct {
	Bin, Addr, Token       string
	Dir                    string
	StdoutPath, StderrPath string
	Proc                   *Proc
	owners                 owners
}

// StartDevNode starts `custos server --dev` on a free port with token and
// waits until it is healthy.
func StartDevNode(t *testing.T, bin, token string) *DevNode {
	t.Helper()
	d := &DevNode{Bin: bin, Addr: FreePort(t), Token: token, Dir: t.TempDir()}
	d.StdoutPath, d.StderrPath = filepath.Join(d.Dir, "dev.stdout.log"), filepath.Join(d.Dir, "dev.log")
	DumpOnFailure(t, d.StdoutPath, d.StderrPath)
	CheckNoRaces(t, d.StderrPath)
	CheckNoSecrets(t, func() []string { return append([]string{token}, d.owners.tokens()...) }, d.StderrPath)
	d.Proc = StartProc(t, "dev", bin, d.StdoutPath, d.StderrPath, "server", "--dev", "--dev-listen-address", d.Addr, "--dev-token", token)
	testkit.Poll(t, 30*time.Second, "dev node healthy", d.Healthy)
	return d
}

// Healthy is nil when /v1/sys/health answers 200.
func (d *DevNode) Healthy() error {
	if d.Proc.Exited() {
		return testkit.Permanent(fmt.Errorf("dev node exited:\n%s", Tail(d.StderrPath, 30)))
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + d.Addr + "/v1/sys/health")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: HTTP %d", resp.StatusCode)
	}
	return nil
}

// CLI runs the CLI against the node with its token.
func (d *DevNode) CLI(t *testing.T, args ...string) CLIResult {
	t.Helper()
	return RunCLI(t, d.Bin, append([]string{"--addr", "http://" + d.Addr, "--token", d.Token}, args...)...)
}
