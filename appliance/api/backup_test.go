package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/appliance/client"
)

// failingBackup writes part of a backup, then fails.
type failingBackup struct{}

func (failingBackup) Backup(_ context.Context, _ audit.Principal, w io.Writer) (backup.Manifest, error) {
	if _, err := w.Write(bytes.Repeat([]byte("x"), 256<<10)); err != nil {
		return backup.Manifest{}, err
	}
	return backup.Manifest{}, errors.New("the disk went away")
}

// A backup streams to the client and opens with the backup identity; one
// that fails once the stream has begun is a broken transfer for the
// client, never a complete-looking file.
func TestBackupStream(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	serve := func(deps api.Deps) *client.Client {
		app := e.server(deps, api.Options{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = app.Listener(ln) }()
		t.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
		return client.New("http://"+ln.Addr().String(), client.Options{Token: goodToken, HTTPClient: &http.Client{Timeout: 30 * time.Second}})
	}
	var buf bytes.Buffer
	if _, err := serve(e.deps()).Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	m, _, err := backup.Read(context.Background(), &buf, []age.Identity{e.seal}, t.TempDir()+"/state.db", backup.ReadOptions{AuditKey: e.vkey})
	if err != nil || len(m.Tenants) != 1 || m.Tenants[0] != "acme" {
		t.Fatalf("the streamed backup: %+v %v", m, err)
	}
	deps := e.deps()
	deps.Backup = failingBackup{}
	n, err := serve(deps).Backup(context.Background(), io.Discard)
	if err == nil {
		t.Fatalf("a backup that failed midway came through as complete (%d bytes)", n)
	}
}
