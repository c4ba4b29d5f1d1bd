package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
)

func newAuditCmd(e *env, cl *clientFlags) *cobra.Command {
	ac := &cobra.Command{Use: "audit", Short: "The audit log: list, checkpoints, export and offline verification"}
	var tenant string

	var f struct {
		actor, action, target, from, to string
		limit                           int
		all                             bool
	}
	list := &cobra.Command{
		Use: "list", Short: "List audit entries (the system chain, or a tenant's with --tenant)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter := client.AuditFilter{Actor: f.actor, Action: f.action, Target: f.target, From: f.from, To: f.to, Limit: f.limit}
			var items []audit.Item
			var next uint64
			for {
				filter.After = next
				page, err := cl.api.Audit(cmd.Context(), tenant, filter)
				if err != nil {
					return err
				}
				items = append(items, page.Entries...)
				next = page.Next
				if !f.all || next == 0 {
					break
				}
			}
			if cl.format == "json" {
				return printJSON(e.stdout, map[string]any{"entries": items, "next": next})
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tOUTCOME")
			for _, it := range items {
				x := it.Entry
				fmt.Fprintf(tw, "%d\t%s\t%s:%s\t%s\t%s\t%s\n", it.Seq, x.Time.UTC().Format(time.RFC3339), x.Actor.Type, x.Actor.ID, x.Action, x.Target, x.Outcome)
			}
			tw.Flush()
			if next > 0 {
				fmt.Fprintf(e.stdout, "(more after seq %d: --all lists everything)\n", next)
			}
			return nil
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "a tenant's chain (default: the system chain)")
	list.Flags().StringVar(&f.actor, "actor", "", "only entries by this actor id")
	list.Flags().StringVar(&f.action, "action", "", `only this action, or a prefix ending in "." (tenant.)`)
	list.Flags().StringVar(&f.target, "target", "", "only entries about this target")
	list.Flags().StringVar(&f.from, "from", "", "only entries at or after this RFC 3339 time")
	list.Flags().StringVar(&f.to, "to", "", "only entries at or before this RFC 3339 time (inclusive)")
	list.Flags().IntVar(&f.limit, "limit", 100, "entries per page (1..1000)")
	list.Flags().BoolVar(&f.all, "all", false, "follow every page")

	key := &cobra.Command{
		Use: "key", Short: "Print the cluster's audit checkpoint key (give it to auditors)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), cl.timeout)
			defer cancel()
			return cl.api.AuditKey(ctx, e.stdout)
		},
	}

	var cpTenant string
	checkpoint := &cobra.Command{
		Use: "checkpoint", Short: "Print a chain's latest signed checkpoint (keep it: verify --checkpoint proves later bundles extend it)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), cl.timeout)
			defer cancel()
			return cl.api.AuditCheckpoint(ctx, cpTenant, e.stdout)
		},
	}
	checkpoint.Flags().StringVar(&cpTenant, "tenant", "", "a tenant's chain (default: the system chain)")

	var exTenant, out, from, to string
	export := &cobra.Command{
		Use: "export -o FILE", Short: "Export a chain as a verifiable bundle (tar.gz)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("audit export needs -o FILE")
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), ".audit-export-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if err := cl.api.AuditExport(cmd.Context(), exTenant, from, to, tmp); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return err
			}
			return printCovered(e, out)
		},
	}
	export.Flags().StringVar(&exTenant, "tenant", "", "a tenant's chain (default: the system chain)")
	export.Flags().StringVarP(&out, "output", "o", "", "bundle file to write")
	export.Flags().StringVar(&from, "from", "", "first entry at or after this RFC 3339 time")
	export.Flags().StringVar(&to, "to", "", "entries at or before this RFC 3339 time (inclusive), up to the first signed checkpoint that covers them (default: everything, signed now)")

	var keyFile, trusted string
	verify := &cobra.Command{
		Use:   "verify --key FILE [--checkpoint FILE] BUNDLE",
		Short: "Verify an exported bundle offline (exit 0 only if everything holds)",
		Long: `verify needs no server: with the cluster's audit key it checks every
checkpoint's signature, every entry's hash and place in the Merkle tree, the
hash-chain links, every checkpoint's root, and that no entry is missing.
With --checkpoint (a checkpoint you kept from earlier) it also proves the
bundle extends it: not rolled back, not a forked history. A failure names the
first bad place.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return errors.New("audit verify needs --key FILE (from `custos audit key`)")
			}
			kb, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			v, err := audit.Verifier(kb)
			if err != nil {
				return err
			}
			var trust []byte
			if trusted != "" {
				if trust, err = os.ReadFile(trusted); err != nil {
					return err
				}
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := audit.Verify(f, v, trust)
			if err != nil {
				return fmt.Errorf("%s is NOT valid: %w", args[0], err)
			}
			if cl.format == "json" {
				return printJSON(e.stdout, rep)
			}
			fmt.Fprintf(e.stdout, "OK: %s, entries %d..%d, %d signed checkpoints verified", rep.Origin, rep.First, rep.Size, rep.Checkpoints)
			if rep.Trusted > 0 {
				fmt.Fprintf(e.stdout, "; extends your checkpoint at size %d", rep.Trusted)
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	verify.Flags().StringVar(&keyFile, "key", "", "the cluster's audit key file (custos audit key > audit.pub)")
	verify.Flags().StringVar(&trusted, "checkpoint", "", "a checkpoint you kept from earlier (custos audit checkpoint > old.txt)")

	selfcheck := &cobra.Command{
		Use: "selfcheck", Short: "Show the node's latest audit self-check", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := cl.api.AuditSelfCheck(cmd.Context())
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, rep)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "CHAIN\tSIZE\tCHECKED\tOK\tPROBLEM")
			for _, c := range rep.Chains {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%v\t%s\n", c.Chain, c.Size, c.Checked, c.OK, c.Problem)
			}
			tw.Flush()
			if !rep.OK {
				return fmt.Errorf("the audit self-check of %s failed: %s", rep.Time.Format(time.RFC3339), firstProblem(rep))
			}
			return nil
		},
	}
	ac.AddCommand(list, key, checkpoint, export, verify, selfcheck)
	return ac
}

// printCovered says what range the bundle at path covers: an auditor who
// asked for "everything" sees where everything ended.
func printCovered(e *env, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sum, err := audit.Inspect(f)
	if err != nil {
		return err
	}
	if sum.First > sum.Size {
		fmt.Fprintf(e.stderr, "Wrote %s: %s, no entries in the range asked; ", path, sum.Chain)
	} else {
		fmt.Fprintf(e.stderr, "Wrote %s: %s, entries %d..%d, ", path, sum.Chain, sum.First, sum.Size)
	}
	fmt.Fprintf(e.stderr, "ending on the checkpoint at size %d signed %s (%d checkpoints in the bundle).\n",
		sum.Size, sum.SignedAt.UTC().Format(time.RFC3339), sum.Checkpoints)
	if sum.First > 1 {
		fmt.Fprintf(e.stderr, "Entries before %d are not in it (before --from, or removed by retention).\n", sum.First)
	}
	fmt.Fprintf(e.stderr, "Verify it offline with: custos audit verify --key audit.pub %s\n", path)
	return nil
}

func firstProblem(rep audit.CheckReport) string {
	for _, c := range rep.Chains {
		if !c.OK {
			return strings.TrimSpace(c.Chain + ": " + c.Problem)
		}
	}
	return ""
}
