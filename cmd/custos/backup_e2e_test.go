package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EBackupRestore (issue 14, acceptance 4): on a cluster of three
// custos processes, a backup taken with `custos operator backup`; then a
// subject erased and more written; the backup restored with `custos
// operator restore` into a fresh one-node cluster with the newer
// cluster's ledger (a newer backup): the erased subject stays gone (the
// ledger re-applied before the node serves), everything else is as at
// the backup's index (a record written after it is absent), and the
// tenant's audit chain verifies across the restore against a checkpoint
// kept before the backup. A backup altered by one byte is refused; a
// backup does not open without the backup identity; the restore drill
// (`backup verify`) self-checks the audit chains and counts.
func TestE2EBackupRestore(t *testing.T) {
	bin := e2e.Binary(t)
	// Every node archives into one directory when it leads (shared
	// storage, as the operations guide recommends).
	backups := t.TempDir()
	c := e2e.StartClusterWith(t, bin, fmt.Sprintf("[audit]\ncheckpoint_interval = \"1s\"\n[backup]\ndir = %q\narchive_log = true\narchive_interval = \"1s\"\n", backups))
	n := c.Nodes[0]
	ctx := context.Background()
	must := e2e.Must(t)
	dir := t.TempDir()
	file := e2e.Files(t, dir)

	// The backup identity: the operators', never the cluster's.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := file("backup.key", id.String()+"\n")
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	otherFile := file("other.key", other.String()+"\n")
	if r := c.CLI(n, "operator", "backup", "-o", filepath.Join(dir, "none.age")); r.Code == 0 || !strings.Contains(r.Stderr, "backup recipients") {
		t.Fatalf("a backup without recipients: %v", r)
	}
	must(c.CLI(n, "operator", "backup", "recipients", "set", id.Recipient().String()), "backup recipients")

	must(c.CLI(n, "tenant", "create", "acme"), "tenant create")
	api := c.TenantAPI(n, "acme")
	const (
		subject = "subj-backup-erased"
		keeper  = "subj-backup-kept"
		col     = "guests"
	)
	if _, err := api.PutCollection(ctx, "acme", col, rawJSON(`{"fields":[{"name":"email","type":"string","classification":"pii","index":true}]}`)); err != nil {
		t.Fatal(err)
	}
	create := func(a *client.Client, rid, subj string) {
		t.Helper()
		if _, err := a.CreateRecord(ctx, "acme", col, map[string]any{"id": rid, "subject": subj, "fields": map[string]any{"email": rid + "@example.com"}}); err != nil {
			t.Fatalf("record %s: %v", rid, err)
		}
	}
	create(api, "g1", subject)
	create(api, "g2", keeper)
	req, err := api.CreateDSR(ctx, "acme", client.NewDSR{Kind: "erasure", Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.TransitionDSR(ctx, "acme", req.ID, client.DSRTransition{To: "verified", Evidence: &client.DSREvidence{Method: "document", Text: "passport seen"}}); err != nil {
		t.Fatal(err)
	}
	// An auditor's checkpoint of the tenant's chain, kept before the backup.
	var cp e2e.CLIResult
	testkit.Poll(t, 20*time.Second, "a checkpoint of the tenant's chain", func() error {
		if cp = c.CLI(n, "audit", "checkpoint", "--tenant", "acme"); cp.Code != 0 {
			return fmt.Errorf("audit checkpoint: %v", cp)
		}
		return nil
	})
	cpFile := file("old-checkpoint.txt", cp.Stdout)
	keyOut := c.CLI(n, "audit", "key")
	must(keyOut, "audit key")
	keyFile := file("audit.pub", keyOut.Stdout)

	// The backup, through a follower (a consistent read: at one index).
	b1 := filepath.Join(dir, "b1.age")
	must(c.CLI(c.Nodes[1], "operator", "backup", "-o", b1), "backup")

	// After it: the subject erased, another record written; the index
	// between it and the next write noted.
	must(c.TenantCLI(n, "acme", "dsr", "erase", "acme", req.ID), "dsr erase")
	create(api, "g3", keeper)
	// The leader committed each write before it was acknowledged (its
	// applied_index is the state file's, which commits a few ms later).
	_, st, err := c.Leader()
	if err != nil {
		t.Fatal(err)
	}
	between := st.CommitIndex
	create(api, "g4", keeper)
	if _, st, err = c.Leader(); err != nil {
		t.Fatal(err)
	}
	after := st.CommitIndex
	b2 := filepath.Join(dir, "b2.age")
	must(c.CLI(n, "operator", "backup", "-o", b2), "newer backup")

	// The drill on the first backup.
	v := e2e.RunCLI(t, bin, "operator", "backup", "verify", b1, "--identity", idFile)
	must(v, "backup verify")
	if !strings.Contains(v.Stdout, "tenants 1\n") || !strings.Contains(v.Stdout, "audit tenant:acme") || strings.Contains(v.Stdout, "FAILED") {
		t.Fatalf("backup verify: %s", v.Stdout)
	}
	// Without the identity, nothing opens.
	if r := e2e.RunCLI(t, bin, "operator", "backup", "verify", b1, "--identity", otherFile); r.Code == 0 || !strings.Contains(r.Stderr, "identity does not open") {
		t.Fatalf("a backup opened with another identity: %v", r)
	}
	// One byte altered, anywhere: refused.
	raw, err := os.ReadFile(b1)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(raw) / 2, len(raw) - 5} {
		bad := append([]byte(nil), raw...)
		bad[at] ^= 0x01
		altered := file(fmt.Sprintf("altered-%d.age", at), string(bad))
		if r := e2e.RunCLI(t, bin, "operator", "backup", "verify", altered, "--identity", idFile); r.Code == 0 || !strings.Contains(r.Stderr, "damaged") {
			t.Fatalf("a backup altered at byte %d: %v", at, r)
		}
	}

	// Restore into a fresh node, with the newer cluster's ledger.
	ports := e2e.FreePorts(t, 2)
	rn := &e2e.Node{ID: "r1", APIAddr: ports[0], ClusterAddr: ports[1], DataDir: filepath.Join(dir, "r1"),
		ConfigPath: filepath.Join(dir, "r1.toml"), StdoutPath: filepath.Join(dir, "r1.stdout.log"), StderrPath: filepath.Join(dir, "r1.log")}
	file("r1.toml", fmt.Sprintf("node_id = \"r1\"\nregion = \"local\"\ndata_dir = %q\n[api]\nlisten_address = %q\n[cluster]\nlisten_address = %q\nheartbeat_timeout = \"500ms\"\nelection_timeout = \"500ms\"\nleader_lease_timeout = \"250ms\"\n",
		rn.DataDir, rn.APIAddr, rn.ClusterAddr))
	e2e.DumpOnFailure(t, rn.StderrPath)
	if r := e2e.RunCLI(t, bin, "operator", "restore", b1, "--config", rn.ConfigPath, "--identity", otherFile); r.Code == 0 {
		t.Fatalf("a restore with another identity: %v", r)
	}
	rr := e2e.RunCLI(t, bin, "operator", "restore", b1, "--config", rn.ConfigPath, "--identity", idFile, "--ledger", b2)
	must(rr, "operator restore")
	if !strings.Contains(rr.Stdout, "1 erasures of newer ledgers") || !strings.Contains(rr.Stdout, "custos-join.") {
		t.Fatalf("operator restore: %s", rr.Stdout)
	}
	seal, err := os.ReadFile(c.SealIdentity)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rn.DataDir, "seal.age"), seal, 0o600); err != nil {
		t.Fatal(err)
	}
	rn.Proc = e2e.StartProc(t, rn.ID, bin, rn.StdoutPath, rn.StderrPath, "server", "--config", rn.ConfigPath)
	e2e.TrustCAFile(t, filepath.Join(rn.DataDir, "tls", "ca.crt"), rn.APIAddr) // the new cluster's CA, as restore printed
	rapi := e2e.NewAPIClient(t, rn.APIAddr, c.OwnerKey("acme"), 10*time.Second, nil)
	testkit.Poll(t, 60*time.Second, "the restored node serves", func() error {
		_, err := rapi.Health(ctx)
		return err
	})
	gone := func(err error) bool {
		var ce *client.Error
		return errors.As(err, &ce) && ce.Status == http.StatusNotFound
	}
	if _, err := rapi.Record(ctx, "acme", col, "g1", false); !gone(err) {
		t.Errorf("the erased subject's record after the restore: %v", err)
	}
	if ids, err := rapi.FindRecords(ctx, "acme", col, "email", `"g1@example.com"`, 10); err != nil || len(ids.IDs) != 0 {
		t.Errorf("find the erased subject after the restore: %v %v", ids, err)
	}
	if _, err := rapi.Record(ctx, "acme", col, "g2", false); err != nil {
		t.Errorf("the kept subject's record after the restore: %v", err)
	}
	for _, rid := range []string{"g3", "g4"} {
		if _, err := rapi.Record(ctx, "acme", col, rid, false); !gone(err) {
			t.Errorf("record %s, written after the backup, after the restore: %v", rid, err)
		}
	}
	if l, err := rapi.Erasures(ctx, "acme"); err != nil || len(l.Erasures) != 1 || l.Erasures[0].Request != req.ID {
		t.Errorf("the restored ledger: %+v %v", l, err)
	}
	// The restored cluster grows with its new join token: a second node
	// joins, becomes a voter and serves the restored data.
	joinToken := regexp.MustCompile(`custos-join\.\S+`).FindString(rr.Stdout)
	ports3 := e2e.FreePorts(t, 2)
	jn := &e2e.Node{ID: "r1b", APIAddr: ports3[0], ClusterAddr: ports3[1], DataDir: filepath.Join(dir, "r1b"),
		ConfigPath: filepath.Join(dir, "r1b.toml"), StdoutPath: filepath.Join(dir, "r1b.stdout.log"), StderrPath: filepath.Join(dir, "r1b.log")}
	file("r1b.toml", fmt.Sprintf("node_id = \"r1b\"\nregion = \"local\"\ndata_dir = %q\n[api]\nlisten_address = %q\n[cluster]\nlisten_address = %q\nheartbeat_timeout = \"500ms\"\nelection_timeout = \"500ms\"\nleader_lease_timeout = \"250ms\"\njoin = [%q]\n",
		jn.DataDir, jn.APIAddr, jn.ClusterAddr, rn.ClusterAddr))
	e2e.DumpOnFailure(t, jn.StderrPath, jn.StdoutPath, rn.StdoutPath)
	must(e2e.RunCLI(t, bin, "operator", "join", "--config", jn.ConfigPath, "--join-token", joinToken), "operator join the restored cluster")
	if err := os.WriteFile(filepath.Join(jn.DataDir, "seal.age"), seal, 0o600); err != nil {
		t.Fatal(err)
	}
	jn.Proc = e2e.StartProc(t, jn.ID, bin, jn.StdoutPath, jn.StderrPath, "server", "--config", jn.ConfigPath)
	e2e.TrustCAFile(t, filepath.Join(rn.DataDir, "tls", "ca.crt"), jn.APIAddr)
	japi := e2e.NewAPIClient(t, jn.APIAddr, c.OwnerKey("acme"), 10*time.Second, nil)
	testkit.Poll(t, 60*time.Second, "the joined node serves the restored data", func() error {
		if _, err := japi.Record(ctx, "acme", col, "g2", false); err != nil {
			return err
		}
		if _, err := japi.Record(ctx, "acme", col, "g1", false); !gone(err) {
			return fmt.Errorf("the erased subject on the joined node: %v", err)
		}
		return nil
	})
	// The tenant's chain verifies across the restore: a bundle of the
	// restored node extends the checkpoint kept before the backup.
	rcli := func(args ...string) e2e.CLIResult {
		return e2e.RunCLI(t, bin, append([]string{"--addr", rn.URL(), "--token", c.Token}, args...)...)
	}
	bundle := filepath.Join(dir, "acme.tar.gz")
	must(rcli("audit", "export", "--tenant", "acme", "-o", bundle), "audit export of the restored node")
	must(e2e.RunCLI(t, bin, "audit", "verify", "--key", keyFile, "--checkpoint", cpFile, bundle), "audit verify across the restore")
	// Point in time: the backup and the log archive, up to the index
	// between the writes of g3 and g4, give g3 and not g4 (nor the erased
	// subject: the erasure is in the log).
	testkit.Poll(t, 30*time.Second, "the log archive reaches the last write", func() error {
		ents, err := os.ReadDir(filepath.Join(backups, "log"))
		if err != nil {
			return err
		}
		for _, e := range ents {
			var first, last uint64
			if _, err := fmt.Sscanf(e.Name(), "custos-log-%d-%d.age", &first, &last); err == nil && last >= after {
				return nil
			}
		}
		return fmt.Errorf("%d segments, none reaches %d", len(ents), after)
	})
	ports2 := e2e.FreePorts(t, 2)
	p2 := filepath.Join(dir, "r2")
	file("r2.toml", fmt.Sprintf("node_id = \"r2\"\nregion = \"local\"\ndata_dir = %q\n[api]\nlisten_address = %q\n[cluster]\nlisten_address = %q\nheartbeat_timeout = \"500ms\"\nelection_timeout = \"500ms\"\nleader_lease_timeout = \"250ms\"\n",
		p2, ports2[0], ports2[1]))
	pr := e2e.RunCLI(t, bin, "operator", "restore", b1, "--config", filepath.Join(dir, "r2.toml"), "--identity", idFile,
		"--archive", backups, "--to-index", fmt.Sprint(between))
	must(pr, "point-in-time restore")
	if !strings.Contains(pr.Stdout, fmt.Sprintf("to %d.", between)) {
		t.Fatalf("point-in-time restore: %s", pr.Stdout)
	}
	if err := os.WriteFile(filepath.Join(p2, "seal.age"), seal, 0o600); err != nil {
		t.Fatal(err)
	}
	e2e.DumpOnFailure(t, filepath.Join(dir, "r2.log"))
	e2e.StartProc(t, "r2", bin, filepath.Join(dir, "r2.stdout.log"), filepath.Join(dir, "r2.log"), "server", "--config", filepath.Join(dir, "r2.toml"))
	e2e.TrustCAFile(t, filepath.Join(p2, "tls", "ca.crt"), ports2[0])
	papi := e2e.NewAPIClient(t, ports2[0], c.OwnerKey("acme"), 10*time.Second, nil)
	testkit.Poll(t, 60*time.Second, "the point-in-time node serves", func() error {
		_, err := papi.Health(ctx)
		return err
	})
	for rid, want := range map[string]bool{"g1": false, "g2": true, "g3": true, "g4": false} {
		_, err := papi.Record(ctx, "acme", col, rid, false)
		if want && err != nil || !want && !gone(err) {
			t.Errorf("point in time: record %s: %v (want present: %v)", rid, err, want)
		}
	}

	// The restore is in the system chain (the backup's own backup.taken
	// follows its dump, so it is not).
	for _, action := range []string{"cluster.restore", "backup.recipients"} {
		sys := rcli("audit", "list", "--all", "--action", action, "--format", "json")
		must(sys, "audit list")
		if !strings.Contains(sys.Stdout, `"`+action+`"`) {
			t.Errorf("no %s in the system chain after the restore: %s", action, sys.Stdout)
		}
	}
}
