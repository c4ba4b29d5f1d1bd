package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/node"
	"github.com/custos/custos/keyring"
)

// newBackupCmd is `operator backup` (take one, verify one, set the
// recipients) and `operator restore`.
func newBackupCmd(e *env, cl *clientFlags) (*cobra.Command, *cobra.Command) {
	var out string
	bk := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Take a backup of the whole state, encrypted to the cluster's backup recipients",
		Long: `backup asks the node for a consistent backup (the state at one raft index,
after a read barrier) and writes it to FILE as it arrives: an age file
encrypted to the backup recipients set at init or with
` + "`custos operator backup recipients`" + `, its manifest signed with the audit key.
Nobody reads it without a backup identity; check it with ` + "`custos operator backup verify`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("-o FILE is required")
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s exists", out)
			}
			var n int64
			err := backup.WriteFile(out, func(w io.Writer) error {
				bar := newBar(e.stderr, -1, "backup")
				defer finishBar(bar)
				var err error
				n, err = cl.api.Backup(cmd.Context(), barWriter(w, bar))
				return err
			})
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, map[string]any{"file": out, "bytes": n})
			}
			fmt.Fprintf(e.stdout, "Backup written to %s (%d bytes).\n", out, n)
			return nil
		},
	}
	bk.Flags().StringVarP(&out, "output", "o", "", "the backup file to write (it must not exist)")

	var identity, auditKey string
	verify := &cobra.Command{
		Use:   "verify FILE --identity ID",
		Short: "The restore drill: restore a backup into a temporary directory, self-check its audit chains, count what it holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, f, bar, err := openBackup(e, identity, args[0], "restore drill")
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := backup.Drill(cmd.Context(), barReader(f, bar), ids, filepath.Dir(args[0]), backup.ReadOptions{AuditKey: auditKey})
			finishBar(bar)
			if err != nil {
				return err
			}
			if cl.format == "json" {
				if err := printJSON(e.stdout, rep); err != nil {
					return err
				}
			} else {
				m := rep.Manifest
				fmt.Fprintf(e.stdout, "Backup of %s at raft index %d (term %d, revision %d), %d bytes of state.\n", m.Time.Format("2006-01-02 15:04:05Z07:00"), m.Index, m.Term, m.Revision, m.Size)
				fmt.Fprintf(e.stdout, "Manifest signed by %s\n", strings.SplitN(rep.AuditKey, "+", 2)[0])
				fmt.Fprintf(e.stdout, "tenants %d\nchains %d\nbuckets %d\nkeys %d\nerasures %d\n", len(m.Tenants), len(m.Chains), rep.Buckets, rep.Keys, rep.Erasures)
				for _, c := range rep.Audit.Chains {
					status := "ok"
					if !c.OK {
						status = "FAILED: " + c.Problem
					}
					fmt.Fprintf(e.stdout, "audit %s %d entries %s\n", c.Chain, c.Size, status)
				}
				fmt.Fprintf(e.stdout, "Restore drill done in %s.\n", rep.Duration.Round(1e6))
			}
			if !rep.Audit.OK {
				return fmt.Errorf("the audit self-check of the restored state failed")
			}
			return nil
		},
	}
	verify.Flags().StringVar(&identity, "identity", "", "a backup identity file (age)")
	verify.Flags().StringVar(&auditKey, "audit-key", "", "the audit verifier key the manifest must be signed with (default: the key in the backup)")

	recipients := &cobra.Command{
		Use:   "recipients set RECIPIENT...",
		Short: "Replace the age recipients backups are encrypted to",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "set" {
				return fmt.Errorf("usage: custos operator backup recipients set age1… [age1…]")
			}
			if err := cl.api.SetBackupRecipients(cmd.Context(), args[1:]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Backups are now encrypted to %d recipient(s).\n", len(args)-1)
			return nil
		},
	}
	bk.AddCommand(verify, recipients)

	var ledgers []string
	var rIdentity, rAuditKey, archive, toTime string
	var toIndex uint64
	restore := &cobra.Command{
		Use:   "restore FILE --identity ID [--ledger NEWER_BACKUP]...",
		Short: "Make this node's data directory the first node of a new cluster holding a backup's state (offline)",
		Long: `restore checks the backup (decrypted with a backup identity, its manifest
signed by the audit key and describing the state), loads it into the data
directory with new cluster credentials, and prints a new join token. The
operator token, seal identity and audit key are the backed-up cluster's.

--ledger names newer backups of the cluster being replaced (take one with
` + "`custos operator backup`" + ` if it still runs; else the newest you have): their
erasure ledgers are re-applied at the node's first start, before it
serves, so that no subject erased after the backup comes back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			ids, f, bar, err := openBackup(e, rIdentity, args[0], "restore")
			if err != nil {
				return err
			}
			defer f.Close()
			defer finishBar(bar)
			o := node.RestoreOptions{Backup: barReader(f, bar), Identities: ids, AuditKey: rAuditKey, Archive: archive, Until: backup.Until{Index: toIndex}}
			if toTime != "" {
				if o.Until.Time, err = time.Parse(time.RFC3339Nano, toTime); err != nil {
					return fmt.Errorf("--to-time: %w", err)
				}
			}
			if (toIndex != 0 || toTime != "") && archive == "" {
				return fmt.Errorf("--to-index and --to-time need --archive DIR (the backup directory holding log/)")
			}
			for _, l := range ledgers {
				lf, err := os.Open(l)
				if err != nil {
					return err
				}
				defer lf.Close()
				o.Ledgers = append(o.Ledgers, io.Reader(lf))
			}
			res, err := node.Restore(cmd.Context(), cfg.DataDir, cfg.NodeID, o)
			if err != nil {
				return err
			}
			// New cluster credentials: a new CA, which clients trust the
			// API's new certificates with.
			if _, err := node.EnsureAPICertificate(cfg, cfg.DataDir); err != nil {
				return err
			}
			caPath := node.CACertPath(cfg.DataDir)
			m := res.Manifest
			if cl.format == "json" {
				return printJSON(e.stdout, map[string]any{"join_token": res.JoinToken, "index": res.Index, "backup_index": m.Index, "term": m.Term,
					"time": m.Time, "tenants": m.Tenants, "erasures_to_reapply": res.Erasures, "audit_key": res.AuditKey, "node_id": cfg.NodeID,
					"ca_cert_file": caPath})
			}
			if res.Index != m.Index {
				fmt.Fprintf(e.stdout, "Log archive replayed from index %d to %d.\n", m.Index, res.Index)
			}
			fmt.Fprintf(e.stdout, "Restored the backup of %s (raft index %d, %d tenants) into %s.\n%d erasures of newer ledgers will be re-applied at the first start.\n\nJoin token (new cluster credentials):\n  %s\n\nThe operator token, seal identity and audit key are the backed-up cluster's.\nStart the node with: custos server --config <file>\n\nThe new cluster CA (give it to clients: custos --ca-cert, or CUSTOS_CACERT):\n  %s\n",
				m.Time.Format("2006-01-02 15:04:05Z07:00"), m.Index, len(m.Tenants), cfg.DataDir, res.Erasures, res.JoinToken, caPath)
			return nil
		},
	}
	config.RegisterServerFlags(restore.Flags())
	restore.Flags().StringVar(&rIdentity, "identity", "", "a backup identity file (age)")
	restore.Flags().StringVar(&rAuditKey, "audit-key", "", "the audit verifier key the backups must be signed with (default: the key in the backup)")
	restore.Flags().StringArrayVar(&ledgers, "ledger", nil, "a newer backup whose erasure ledgers are re-applied (repeatable)")
	restore.Flags().StringVar(&archive, "archive", "", "a log archive to replay after the backup (the backup directory, or its log/): point-in-time restore")
	restore.Flags().Uint64Var(&toIndex, "to-index", 0, "replay the archive up to this raft index (inclusive)")
	restore.Flags().StringVar(&toTime, "to-time", "", "replay the archive up to this RFC 3339 time (entries the leader appended at or before it)")
	return bk, restore
}

// openBackup loads the backup identity and opens the backup file, with a
// progress bar of its size.
func openBackup(e *env, identity, path, what string) ([]age.Identity, *os.File, *progressbar.ProgressBar, error) {
	ids, err := loadBackupIdentity(identity)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	return ids, f, newBar(e.stderr, fileSize(f), what), nil
}

// fileSize is f's size (-1 when unknown).
func fileSize(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return -1
	}
	return fi.Size()
}

func loadBackupIdentity(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, fmt.Errorf("--identity is required: a backup identity file (the recipients' private half)")
	}
	return keyring.LoadSealIdentities(path)
}
