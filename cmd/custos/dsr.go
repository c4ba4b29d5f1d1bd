package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/privacy/receipt"
)

// newDSRCmd is `custos dsr`: data-subject requests. The verify commands
// run offline — they need the cluster's audit key and the artifact, no
// server — so that a subject, or their lawyer, can check what they were
// given.
func newDSRCmd(e *env, cl *clientFlags) *cobra.Command {
	dc := &cobra.Command{Use: "dsr", Short: "Data-subject requests: record, handle and export them; verify exports and erasure receipts offline"}

	var exportKey string
	verifyExport := &cobra.Command{
		Use:   "verify-export --key FILE DIR|FILE.zip|FILE.tar.gz",
		Short: "Verify a data-subject export offline (exit 0 only if it is complete and authentic)",
		Long: `verify-export needs no server: with the cluster's audit key (custos audit
key > audit.pub) it checks the export's signed manifest (` + receipt.ManifestName + `), then
every listed file's size and SHA-256, and that the export holds no file the
manifest does not list. The export is a directory, a zip archive or a
gzip'd tar (.tar.gz). A failure names the first bad file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := readKey(exportKey, "verify-export")
			if err != nil {
				return err
			}
			files, closeFn, err := openExport(args[0])
			if err != nil {
				return err
			}
			defer closeFn()
			m, err := receipt.VerifyExport(key, files)
			if err != nil {
				return fmt.Errorf("%s is NOT a valid export: %w", args[0], err)
			}
			if cl.format == "json" {
				return printJSON(e.stdout, manifestView(m))
			}
			var total uint64
			for _, f := range m.Files {
				total += f.Size
			}
			fmt.Fprintf(e.stdout, "OK: export of %s for tenant %s, request %s, made %s; %d files (%d bytes) complete and unaltered\n",
				m.Subject, m.Tenant, m.Request, m.Created.Format(time.RFC3339), len(m.Files), total)
			return nil
		},
	}
	verifyExport.Flags().StringVar(&exportKey, "key", "", "the cluster's audit key file (custos audit key > audit.pub)")

	var receiptKey string
	verifyReceipt := &cobra.Command{
		Use:   "verify-receipt --key FILE RECEIPT",
		Short: "Verify an erasure receipt offline (exit 0 only if it is authentic and well formed)",
		Long: `verify-receipt needs no server: with the cluster's audit key (custos audit
key > audit.pub) it checks the receipt's signature and every field, and that
the checkpoint it names is of the tenant's audit chain under the same key.
To prove the erasure's audit entry is in that checkpoint, verify an audit
export of the tenant's chain (custos audit verify) and find the entry there.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := readKey(receiptKey, "verify-receipt")
			if err != nil {
				return err
			}
			msg, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			r, err := receipt.VerifyReceipt(key, msg)
			if err != nil {
				return fmt.Errorf("%s is NOT a valid erasure receipt: %w", args[0], err)
			}
			if cl.format == "json" {
				return printJSON(e.stdout, receiptView(r))
			}
			counts := make([]string, len(r.Counts))
			for i, c := range r.Counts {
				counts[i] = fmt.Sprintf("%s %d", c.Kind, c.N)
			}
			shredded := "not shredded"
			if r.KeyShredded {
				shredded = "shredded"
			}
			fmt.Fprintf(e.stdout, "OK: %s erased from tenant %s at %s (request %s); erased: %s; data key %s; audit entry %d under checkpoint %s size %d\n",
				r.Subject, r.Tenant, r.Erased.Format(time.RFC3339), r.Request, orNone(strings.Join(counts, ", ")), shredded,
				r.Entry, r.Checkpoint.Origin, r.Checkpoint.Size)
			return nil
		},
	}
	verifyReceipt.Flags().StringVar(&receiptKey, "key", "", "the cluster's audit key file (custos audit key > audit.pub)")

	var ef exportFlags
	var tenant string
	export := &cobra.Command{
		Use:   "export REQUEST --tenant T --out FILE [--format json|csv|parquet] [--compression zip|gzip]",
		Short: "Answer a verified access, export or portability request with an export of its subject's data",
		Long: `export takes the request up, has the cluster build the export of
everything the tenant holds about its subject (records in the format asked,
blobs as files, consent ledger, requests, audit entries about the subject)
with a manifest signed by the cluster's audit key, completes the request,
and downloads the archive to --out, its SHA-256 checked. Progress goes to
stderr. The export can be downloaded again until it expires (24 h by
default); give the subject the archive and the audit key
(custos audit key), and they can check it with verify-export.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tenant == "" {
				return errors.New("dsr export needs --tenant")
			}
			return runExport(cmd, e, cl, &ef, tenant, func(ctx context.Context, o client.ExportOptions) (client.Export, error) {
				return cl.api.ExportRequest(ctx, tenant, args[0], o)
			})
		},
	}
	export.Flags().StringVar(&tenant, "tenant", "", "the tenant the request is of")
	ef.register(export)

	dc.AddCommand(export, verifyExport, verifyReceipt)
	dc.AddCommand(dsrRequestCmds(e, cl)...)
	dc.AddCommand(dsrEraseCmds(e, cl)...)
	return dc
}

func readKey(file, cmd string) ([]byte, error) {
	if file == "" {
		return nil, fmt.Errorf("dsr %s needs --key FILE (from `custos audit key`)", cmd)
	}
	return os.ReadFile(file)
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// openExport opens an export directory, or a zip archive of one.
func openExport(p string) (fs.FS, func(), error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return os.DirFS(p), func() {}, nil
	}
	if strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz") {
		dir, err := untarExport(p)
		if err != nil {
			return nil, nil, err
		}
		return os.DirFS(dir), func() { os.RemoveAll(dir) }, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	files, err := receipt.ZipFS(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return files, func() { f.Close() }, nil
}

// manifestJSON and receiptJSON are the --format json views.
type manifestJSON struct {
	Tenant  string     `json:"tenant"`
	Subject string     `json:"subject"`
	Request string     `json:"request_id"`
	Created time.Time  `json:"created"`
	From    *time.Time `json:"from,omitempty"`
	To      *time.Time `json:"to,omitempty"`
	Files   []fileJSON `json:"files"`
}

type fileJSON struct {
	Path   string `json:"path"`
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256"`
}

func manifestView(m receipt.Manifest) manifestJSON {
	v := manifestJSON{Tenant: m.Tenant, Subject: m.Subject, Request: m.Request, Created: m.Created, Files: []fileJSON{}}
	if !m.From.IsZero() {
		v.From = &m.From
	}
	if !m.To.IsZero() {
		v.To = &m.To
	}
	for _, f := range m.Files {
		v.Files = append(v.Files, fileJSON{Path: f.Path, Size: f.Size, SHA256: fmt.Sprintf("%x", f.SHA256)})
	}
	return v
}

type receiptJSON struct {
	Tenant      string            `json:"tenant"`
	Subject     string            `json:"subject"`
	Request     string            `json:"request_id"`
	Erased      time.Time         `json:"erased"`
	KeyShredded bool              `json:"key_shredded"`
	Counts      map[string]uint64 `json:"counts"`
	Entry       uint64            `json:"audit_entry"`
	EntryHash   []byte            `json:"audit_entry_hash"`
	Checkpoint  struct {
		Origin string `json:"origin"`
		Size   uint64 `json:"size"`
		Root   []byte `json:"root"`
	} `json:"checkpoint"`
}

func receiptView(r receipt.Receipt) receiptJSON {
	v := receiptJSON{Tenant: r.Tenant, Subject: r.Subject, Request: r.Request, Erased: r.Erased, KeyShredded: r.KeyShredded,
		Counts: map[string]uint64{}, Entry: r.Entry, EntryHash: r.EntryHash[:]}
	for _, c := range r.Counts {
		v.Counts[c.Kind] = c.N
	}
	v.Checkpoint.Origin, v.Checkpoint.Size, v.Checkpoint.Root = r.Checkpoint.Origin, r.Checkpoint.Size, r.Checkpoint.Root[:]
	return v
}
