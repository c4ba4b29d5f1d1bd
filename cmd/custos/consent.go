package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

func printPurposes(e *env, ps []client.Purpose) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tBASIS\tREQUIRED\tDEFAULT\tSALE\tON WITHDRAW\tVERSION\tDESCRIPTION")
	for _, p := range ps {
		def := "off"
		if p.DefaultOn {
			def = "on"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%v\t%s\t%d\t%s\n", p.ID, p.Basis, p.Required, def, p.Sale, p.OnWithdraw, p.PolicyVersion, p.Description)
	}
	tw.Flush()
}

func printConsentState(e *env, st client.ConsentState) {
	fmt.Fprintf(e.stdout, "as of %s: %d events, do not sell: %v, restrict processing: %v\n", st.At.Format(time.RFC3339), st.Events, st.DoNotSell, st.RestrictProcessing)
	tw := table(e.stdout)
	fmt.Fprintln(tw, "PURPOSE\tALLOWED\tDECISION\tSINCE\tSOURCE\tGRANTED VERSION\tPOLICY VERSION")
	for _, p := range st.Purposes {
		since := ""
		if p.Since != nil {
			since = p.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%d\t%d\n", p.Purpose, p.Allowed, p.Decision, since, p.Source, p.GrantedVersion, p.PolicyVersion)
	}
	tw.Flush()
}

func printConsentEvents(e *env, evs []client.ConsentEvent) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "SEQ\tAT\tKIND\tPURPOSES\tSOURCE\tACTOR\tEVIDENCE")
	for _, ev := range evs {
		what := strings.Join(ev.Purposes, ",")
		switch {
		case ev.All:
			what = "*"
		case ev.Kind == "flag":
			what = fmt.Sprintf("%s=%v", ev.Flag, ev.On)
		}
		evidence := ""
		switch {
		case ev.EvidenceBlob != "":
			evidence = "blob " + ev.EvidenceBlob
		case ev.EvidenceText != "":
			evidence = fmt.Sprintf("%q (%s)", ev.EvidenceText, ev.EvidenceDigest)
		case ev.EvidenceDigest != "":
			evidence = ev.EvidenceDigest + " (text withheld)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s:%s\t%s\n", ev.Seq, ev.At.Format(time.RFC3339), ev.Kind, what, ev.Source, ev.Actor.Type, ev.Actor.ID, evidence)
	}
	tw.Flush()
}

// newConsentCmd is `custos consent`: purposes, blob kinds and subjects'
// consent (appliance/privacy/consent through the API).
func newConsentCmd(e *env, cl *clientFlags) *cobra.Command {
	cc := &cobra.Command{Use: "consent", Short: "Processing purposes, blob kinds and data subjects' consent (grant, withdraw, state as of a time, history)"}
	out := func(v any, text func()) error {
		if cl.format == "json" {
			return printJSON(e.stdout, v)
		}
		text()
		return nil
	}

	pc := &cobra.Command{Use: "purpose", Short: "A tenant's processing purposes"}
	var np client.NewPurpose
	var ifMatch int
	purposeFlags := func(c *cobra.Command) {
		c.Flags().StringVar(&np.Description, "description", "", "what the processing is (required)")
		c.Flags().StringVar(&np.Basis, "basis", "consent", "legal basis: consent, contract, legitimate-interest or legal-obligation")
		c.Flags().BoolVar(&np.Required, "required", false, "the purpose is required")
		c.Flags().BoolVar(&np.DefaultOn, "default-on", false, "without a decision the purpose is allowed (legitimate interest only)")
		c.Flags().BoolVar(&np.Sale, "sale", false, "the purpose sells or shares data (refused under do-not-sell)")
		c.Flags().StringVar(&np.OnWithdraw, "on-withdraw", "", "what a withdrawal does to the data it covers: keep (default), erase or anonymise")
	}
	create := &cobra.Command{
		Use: "create TENANT ID --description TEXT [--basis B] [...]", Short: "Create a purpose (policy version 1)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			np.ID = args[1]
			p, err := cl.api.CreatePurpose(cmd.Context(), args[0], np)
			if err != nil {
				return err
			}
			return out(p, func() { printPurposes(e, []client.Purpose{p}) })
		},
	}
	purposeFlags(create)
	update := &cobra.Command{
		Use: "update TENANT ID --description TEXT [--basis B] [--if-match VERSION] [...]", Short: "Change a purpose's terms (a new policy version)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cl.api.UpdatePurpose(cmd.Context(), args[0], args[1], np, ifMatch)
			if err != nil {
				return err
			}
			return out(p, func() { printPurposes(e, []client.Purpose{p}) })
		},
	}
	purposeFlags(update)
	update.Flags().IntVar(&ifMatch, "if-match", 0, "the policy version last read (refused when the purpose moved on)")
	plist := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's purposes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := cl.api.Purposes(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return out(ps, func() { printPurposes(e, ps) })
		},
	}
	pget := &cobra.Command{
		Use: "get TENANT ID [--versions]", Short: "Show a purpose (--versions: every version)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if versions, _ := cmd.Flags().GetBool("versions"); versions {
				vs, err := cl.api.PurposeVersions(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				return out(vs, func() { printPurposes(e, vs) })
			}
			p, err := cl.api.Purpose(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return out(p, func() { printPurposes(e, []client.Purpose{p}) })
		},
	}
	pget.Flags().Bool("versions", false, "every version of the purpose, oldest first")
	pc.AddCommand(create, update, plist, pget)

	kc := &cobra.Command{Use: "kind", Short: "A tenant's blob kinds and the purposes their blobs require"}
	var kindPurposes []string
	kput := &cobra.Command{
		Use: "put TENANT KIND [--purpose P ...]", Short: "Define or change a blob kind", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := cl.api.PutBlobKind(cmd.Context(), args[0], args[1], kindPurposes)
			if err != nil {
				return err
			}
			return out(k, func() {
				fmt.Fprintf(e.stdout, "%s (version %d): %s\n", k.Kind, k.Version, strings.Join(k.Purposes, ", "))
			})
		},
	}
	kput.Flags().StringSliceVar(&kindPurposes, "purpose", nil, "a purpose a blob of the kind requires of its subject (repeatable)")
	klist := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's blob kinds", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := cl.api.BlobKinds(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return out(ks, func() {
				tw := table(e.stdout)
				fmt.Fprintln(tw, "KIND\tVERSION\tPURPOSES")
				for _, k := range ks {
					fmt.Fprintf(tw, "%s\t%d\t%s\n", k.Kind, k.Version, strings.Join(k.Purposes, ","))
				}
				tw.Flush()
			})
		},
	}
	kc.AddCommand(kput, klist)

	var at string
	get := &cobra.Command{
		Use: "get TENANT SUBJECT [--at RFC3339]", Short: "A subject's consent now, or as of a past time (audited)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t time.Time
			if at != "" {
				var err error
				if t, err = time.Parse(time.RFC3339Nano, at); err != nil {
					return fmt.Errorf("--at: must be an RFC 3339 time such as 2026-03-03T12:00:00Z")
				}
			}
			st, err := cl.api.ConsentState(cmd.Context(), args[0], args[1], t)
			if err != nil {
				return err
			}
			return out(st, func() { printConsentState(e, st) })
		},
	}
	get.Flags().StringVar(&at, "at", "", "the state as of this past time (RFC 3339)")
	history := &cobra.Command{
		Use: "history TENANT SUBJECT", Short: "A subject's consent ledger, oldest first (audited)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			evs, err := cl.api.ConsentHistory(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return out(evs, func() { printConsentEvents(e, evs) })
		},
	}
	var (
		source, evidenceText, evidenceBlob string
		policyVersion                      int
		all                                bool
	)
	evidence := func() *client.Evidence {
		if evidenceText == "" && evidenceBlob == "" {
			return nil
		}
		return &client.Evidence{Text: evidenceText, Blob: evidenceBlob}
	}
	eventFlags := func(c *cobra.Command) {
		c.Flags().StringVar(&source, "source", "api", "where the subject decided: ivr, web, app, api or import")
		c.Flags().StringVar(&evidenceText, "evidence-text", "", "the evidence: a text (a transcript, the wording accepted)")
		c.Flags().StringVar(&evidenceBlob, "evidence-blob", "", "the evidence: a blob id (such as the IVR greeting's recording)")
	}
	grant := &cobra.Command{
		Use: "grant TENANT SUBJECT PURPOSE... [--source S] [--evidence-text T | --evidence-blob ID]", Short: "Record a subject's consent to purposes", Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := cl.api.Grant(cmd.Context(), args[0], args[1], client.ConsentChange{Purposes: args[2:], Source: source, PolicyVersion: policyVersion, Evidence: evidence()})
			if err != nil {
				return err
			}
			return out(ev, func() { printConsentEvents(e, []client.ConsentEvent{ev}) })
		},
	}
	eventFlags(grant)
	grant.Flags().IntVar(&policyVersion, "policy-version", 0, "the policy version the subject was shown (0: the current ones)")
	withdraw := &cobra.Command{
		Use: "withdraw TENANT SUBJECT (PURPOSE... | --all) [--source S] [--evidence-text T | --evidence-blob ID]", Short: "Record a subject's withdrawal of purposes, or of all", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 2) {
				return fmt.Errorf("withdraw names purposes, or --all")
			}
			ev, err := cl.api.Withdraw(cmd.Context(), args[0], args[1], client.ConsentChange{Purposes: args[2:], All: all, Source: source, Evidence: evidence()})
			if err != nil {
				return err
			}
			return out(ev, func() { printConsentEvents(e, []client.ConsentEvent{ev}) })
		},
	}
	eventFlags(withdraw)
	withdraw.Flags().BoolVar(&all, "all", false, "withdraw every purpose")
	var off bool
	flag := &cobra.Command{
		Use: "flag TENANT SUBJECT (do-not-sell | restrict-processing) [--off]", Short: "Set (or with --off clear) a subject's flag", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := cl.api.SetConsentFlag(cmd.Context(), args[0], args[1], client.ConsentFlag{Flag: args[2], On: !off, Source: source, Evidence: evidence()})
			if err != nil {
				return err
			}
			return out(ev, func() { printConsentEvents(e, []client.ConsentEvent{ev}) })
		},
	}
	eventFlags(flag)
	flag.Flags().BoolVar(&off, "off", false, "clear the flag")
	cc.AddCommand(pc, kc, get, history, grant, withdraw, flag)
	return cc
}
