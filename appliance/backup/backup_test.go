package backup_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/sealtest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
	"golang.org/x/mod/sumdb/note"
)

// setup is a store with an audit key, a few system-chain entries and a
// backup identity.
func setup(t testing.TB) (*raftstore.Store, *backup.Service, *age.X25519Identity, sealtest.Seal) {
	t.Helper()
	store := storetest.Start(t)
	seal := sealtest.Bootstrap(t, store, "custos-audit-test")
	ctx := context.Background()
	for i := range 20 {
		e := audit.System().Entry(time.Now().UTC(), "test.write", "thing", audit.OutcomeSuccess, map[string]string{"i": string(rune('a' + i))})
		if err := audit.Append(ctx, store, tenancy.SystemChain, e); err != nil {
			t.Fatal(err)
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	aud := audit.New(store, []age.Identity{seal.Identity}, nil)
	svc := backup.New(store, backup.Deps{
		Recipients: func(context.Context) ([]string, error) { return []string{id.Recipient().String()}, nil },
		Signer:     func(ctx context.Context) (note.Signer, error) { return aud.Signer(ctx) },
	})
	return store, svc, id, seal
}

func TestBackupRoundTripAndRefusals(t *testing.T) {
	_, svc, id, seal := setup(t)
	ctx := context.Background()
	var buf bytes.Buffer
	m, err := svc.Backup(ctx, audit.System(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if m.Index == 0 || len(m.Chains) != 1 || m.Chains[0].Name != tenancy.SystemChain || m.Chains[0].Size != 20 {
		t.Fatalf("manifest: %+v", m)
	}
	dir := t.TempDir()
	got, vkey, err := backup.Read(ctx, bytes.NewReader(buf.Bytes()), []age.Identity{id}, filepath.Join(dir, "ok.db"), backup.ReadOptions{AuditKey: seal.VerifierKey})
	if err != nil {
		t.Fatal(err)
	}
	if got.Text() != m.Text() || vkey != seal.VerifierKey {
		t.Fatalf("read back %q, want %q", got.Text(), m.Text())
	}
	// The state read back is the state at the manifest's index.
	off, err := raftstore.OpenOffline(filepath.Join(dir, "ok.db"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := off.Info()
	off.Close()
	if err != nil || info.Index != m.Index || info.Revision != m.Revision {
		t.Fatalf("restored state: %+v %v", info, err)
	}

	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	_, wrongVKey, err := audit.NewKeys("custos-audit-test")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(at int) []byte {
		b := bytes.Clone(buf.Bytes())
		b[at] ^= 1
		return b
	}
	n := buf.Len()
	cases := []struct {
		name string
		file []byte
		id   age.Identity
		key  string
		want error
	}{
		{"another identity", buf.Bytes(), other, "", backup.ErrIdentity},
		{"a byte of the header's MAC", flip(bytes.Index(buf.Bytes(), []byte("\n--- ")) + 6), id, "", backup.ErrDamaged},
		{"a byte of the body", flip(n / 2), id, "", backup.ErrDamaged},
		{"the last byte", flip(n - 1), id, "", backup.ErrDamaged},
		{"cut short", buf.Bytes()[:n-100], id, "", backup.ErrDamaged},
		{"another audit key", buf.Bytes(), id, wrongVKey, backup.ErrSignature},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad"+string(rune('a'+i))+".db")
			_, _, err := backup.Read(ctx, bytes.NewReader(c.file), []age.Identity{c.id}, path, backup.ReadOptions{AuditKey: c.key})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := os.Stat(path); err == nil {
				t.Fatalf("a refused backup left a state file")
			}
		})
	}
}

func TestDrill(t *testing.T) {
	_, svc, id, _ := setup(t)
	var buf bytes.Buffer
	if _, err := svc.Backup(context.Background(), audit.System(), &buf); err != nil {
		t.Fatal(err)
	}
	rep, err := backup.Drill(context.Background(), &buf, []age.Identity{id}, t.TempDir(), backup.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Audit.OK || len(rep.Audit.Chains) != 1 || rep.Keys == 0 {
		t.Fatalf("drill: %+v %+v", rep, rep.Audit)
	}
}

func TestSchedulerKeeps(t *testing.T) {
	_, svc, _, _ := setup(t)
	dir := t.TempDir()
	sc := backup.NewScheduler(svc, backup.ScheduleConfig{Dir: dir, Interval: time.Hour, Keep: 2, IsLeader: func() bool { return true }})
	if !sc.LastBackup().IsZero() {
		t.Fatal("a last backup before any")
	}
	for range 3 {
		if _, err := sc.Once(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	files, err := backup.Files(dir)
	if err != nil || len(files) != 2 {
		t.Fatalf("kept %v %v, want 2", files, err)
	}
	if sc.LastBackup().IsZero() {
		t.Fatal("no last backup")
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add("custos-backup-manifest/1\nindex 5\nterm 2\nrevision 9\ntime 2026-01-02T03:04:05Z\nsize 10\nsha256 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntenant acme\nchain system 3 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	f.Add("custos-backup-manifest/1\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := backup.ParseManifest(text)
		if err != nil {
			return
		}
		if m.Text() != text {
			t.Fatalf("parsed %q, renders %q", text, m.Text())
		}
	})
}
