package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// dsrEraseCmds are `custos dsr erase`, `dsr receipt` and `dsr erasures`:
// an erasure request carried out, its receipt read again, the tenant's
// erasure ledger. The receipt goes to --receipt-out for the subject
// (custos dsr verify-receipt checks it offline).
func dsrEraseCmds(e *env, cl *clientFlags) []*cobra.Command {
	var out string
	done := func(er client.Erasure, err error) error {
		if err != nil {
			return err
		}
		if out != "" {
			if er.Receipt == "" {
				return fmt.Errorf("the erasure of %s has no signed receipt yet; read it again with custos dsr receipt", er.Request)
			}
			if err := os.WriteFile(out, []byte(er.Receipt), 0o600); err != nil {
				return err
			}
		}
		if cl.format == "json" {
			return printJSON(e.stdout, er)
		}
		fmt.Fprintf(e.stdout, "erased %s (request %s) at %s: %s; data key %s; audit entry %d\n", er.Subject, er.Request,
			er.Erased.Format(time.RFC3339), counts(er.Counts), map[bool]string{true: "shredded", false: "none to shred"}[er.KeyShredded], er.AuditEntry)
		if out != "" {
			fmt.Fprintf(e.stdout, "receipt written to %s (check it: custos dsr verify-receipt --key audit.pub %s)\n", out, out)
		}
		return nil
	}
	erase := &cobra.Command{
		Use:   "erase TENANT REQUEST [--receipt-out FILE]",
		Short: "Carry out a verified erasure request: erase the subject everywhere, shred their key, get the signed receipt",
		Long: `erase erases the subject of a verified erasure request: their records, the
records that refer to them (erased or detached as each ref field's on_erase
says), their blobs, blind-index entries and consent ledger (kept only as
minimal proof), then shreds their data key. It completes the request and
prints the counts; --receipt-out writes the signed receipt for the subject.
Run it again after a failure: it finishes what is left.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			er, err := cl.api.Erase(cmd.Context(), args[0], args[1])
			return done(er, err)
		},
	}
	erase.Flags().StringVar(&out, "receipt-out", "", "write the signed receipt to this file")
	receipt := &cobra.Command{
		Use: "receipt TENANT REQUEST [--receipt-out FILE]", Short: "Read the erasure of a request again, with its receipt", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			er, err := cl.api.ErasureReceipt(cmd.Context(), args[0], args[1])
			return done(er, err)
		},
	}
	receipt.Flags().StringVar(&out, "receipt-out", "", "write the signed receipt to this file")
	list := &cobra.Command{
		Use: "erasures TENANT", Short: "The tenant's erasure ledger (pseudonyms, times, counts)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := cl.api.Erasures(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, l)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "REQUEST\tSUBJECT\tERASED\tKEY\tAUDIT ENTRY\tCOUNTS")
			for _, er := range l.Erasures {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%s\n", er.Request, er.Subject, er.Erased.Format(time.RFC3339), er.KeyShredded, er.AuditEntry, counts(er.Counts))
			}
			return tw.Flush()
		},
	}
	return []*cobra.Command{erase, receipt, list}
}

// counts prints counts by kind, sorted.
func counts(m map[string]uint64) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	return orNone(strings.Join(out, ", "))
}
