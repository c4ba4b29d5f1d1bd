package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// dsrRequestCmds are `custos dsr create|list|show|transition|rectify|
// summary`: data subjects' requests, tracked by the server.
func dsrRequestCmds(e *env, cl *clientFlags) []*cobra.Command {
	return []*cobra.Command{dsrCreateCmd(e, cl), dsrListCmd(e, cl), dsrShowCmd(e, cl), dsrTransitionCmd(e, cl), dsrRectifyCmd(e, cl), dsrSummaryCmd(e, cl)}
}

// showDSR prints a request: JSON, or a few lines a person reads.
func showDSR(e *env, cl *clientFlags, r client.DSR) error {
	if cl.format == "json" {
		return printJSON(e.stdout, r)
	}
	tw := table(e.stdout)
	fmt.Fprintf(tw, "Request\t%s\nKind\t%s\nSubject\t%s\nStatus\t%s\nReceived\t%s\nDue\t%s (%s, %s)\n",
		r.ID, r.Kind, orNone(r.Subject), r.Status, r.Received.Format(time.RFC3339), r.Due.Format(time.RFC3339), r.Basis, r.TimeZone)
	if v := r.Verification; v != nil {
		fmt.Fprintf(tw, "Verified\t%s by %s: %s\n", v.At.Format(time.RFC3339), v.Method, v.Evidence)
	}
	if x := r.Extension; x != nil {
		fmt.Fprintf(tw, "Extended\tby %s on %s (was due %s): %s\n", x.By, x.At.Format(time.RFC3339), x.OriginalDue.Format(time.RFC3339), x.Reason)
	}
	if r.Rejection != "" {
		fmt.Fprintf(tw, "Rejected\t%s\n", r.Rejection)
	}
	if p := r.Rectification; p != nil {
		fields, _ := json.Marshal(p.Fields)
		fmt.Fprintf(tw, "Rectification\t%s/%s %s\n", p.Collection, p.Record, fields)
	}
	if res := r.Result; res != nil {
		fmt.Fprintf(tw, "Result\texport %s; counts %v; %s\n", orNone(res.Export), res.Counts, res.Note)
	}
	return tw.Flush()
}

func dsrCreateCmd(e *env, cl *clientFlags) *cobra.Command {
	var received, collection, record, fields string
	var attrs []string
	cmd := &cobra.Command{
		Use:   "create TENANT KIND SUBJECT",
		Short: "Record a data subject's request (access, export, portability, rectification, erasure, restriction, opt-out)",
		Long: `create records a request as received now (or --received, when it arrived
earlier), due by the tenant's regulation mode in its time zone. A
rectification names the record and the new field values:
  custos dsr create acme rectification guest-1 --collection guests --record g1 --fields '{"email":"new@example.org"}'
An open request of the same kind for the same subject is refused (409
duplicate-request, naming it).`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.NewDSR{Kind: args[1], Subject: args[2]}
			if received != "" {
				at, err := time.Parse(time.RFC3339, received)
				if err != nil {
					return fmt.Errorf("--received: %w", err)
				}
				in.Received = &at
			}
			if len(attrs) > 0 {
				in.Attributes = map[string]string{}
				for _, a := range attrs {
					name, value, ok := strings.Cut(a, "=")
					if !ok {
						return fmt.Errorf("--attribute %q: want NAME=VALUE", a)
					}
					in.Attributes[name] = value
				}
			}
			if collection != "" || record != "" || fields != "" {
				p := &client.DSRPatch{Collection: collection, Record: record}
				if err := json.Unmarshal([]byte(fields), &p.Fields); err != nil {
					return fmt.Errorf("--fields must be a JSON object: %w", err)
				}
				in.Rectification = p
			}
			r, err := cl.api.CreateDSR(cmd.Context(), args[0], in)
			if err != nil {
				return err
			}
			return showDSR(e, cl, r)
		},
	}
	cmd.Flags().StringVar(&received, "received", "", "when it arrived (RFC 3339), if before now")
	cmd.Flags().StringArrayVar(&attrs, "attribute", nil, "NAME=VALUE attribute scope of the request (repeatable)")
	cmd.Flags().StringVar(&collection, "collection", "", "rectification: the record's collection")
	cmd.Flags().StringVar(&record, "record", "", "rectification: the record's id")
	cmd.Flags().StringVar(&fields, "fields", "", "rectification: the new field values (a JSON object; null removes)")
	return cmd
}

func dsrListCmd(e *env, cl *clientFlags) *cobra.Command {
	var f client.DSRFilter
	var all bool
	cmd := &cobra.Command{
		Use: "list TENANT", Short: "List data subjects' requests (--status open|overdue|due-soon|<status>, --kind)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []client.DSR
			for {
				page, err := cl.api.DSRs(cmd.Context(), args[0], f)
				if err != nil {
					return err
				}
				rs = append(rs, page.Requests...)
				if !all || page.Next == "" {
					if cl.format == "json" {
						return printJSON(e.stdout, map[string]any{"requests": rs, "next": page.Next})
					}
					tw := table(e.stdout)
					fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tDUE\tRECEIVED\tSUBJECT")
					for _, r := range rs {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, r.Status, r.Due.Format(time.RFC3339), r.Received.Format(time.RFC3339), orNone(r.Subject))
					}
					tw.Flush()
					if page.Next != "" {
						fmt.Fprintf(e.stdout, "(more: --after %s, or --all)\n", page.Next)
					}
					return nil
				}
				f.After = page.Next
			}
		},
	}
	cmd.Flags().StringVar(&f.Status, "status", "", "open, overdue, due-soon, or a status (received, verified, in_progress, extended, completed, rejected)")
	cmd.Flags().StringVar(&f.Kind, "kind", "", "only this kind")
	cmd.Flags().StringVar(&f.After, "after", "", "start after this request id")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "page size (1..500)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func dsrShowCmd(e *env, cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "show TENANT ID", Short: "Show a data subject's request", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := cl.api.DSR(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return showDSR(e, cl, r)
		},
	}
}

func dsrTransitionCmd(e *env, cl *clientFlags) *cobra.Command {
	var t client.DSRTransition
	var method, evidence string
	cmd := &cobra.Command{
		Use:   "transition TENANT ID TO",
		Short: "Move a request: verified (--method, --evidence), in_progress, extended (--reason, --extension), completed (--note), rejected (--reason)",
		Long: `transition makes one step of the request's state machine:
received → verified → in_progress → completed, rejected from any open
status, extended once (by the law's most unless --extension says less).
Export, portability, erasure and rectification requests are completed by
their own commands. A step the request's state does not allow is refused
(409 invalid-transition) and changes nothing.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			t.To = args[2]
			if method != "" || evidence != "" {
				t.Evidence = &client.DSREvidence{Method: method, Text: evidence}
			}
			r, err := cl.api.TransitionDSR(cmd.Context(), args[0], args[1], t)
			if err != nil {
				return err
			}
			return showDSR(e, cl, r)
		},
	}
	cmd.Flags().StringVar(&t.Reason, "reason", "", "why (rejected, extended)")
	cmd.Flags().StringVar(&t.Extension, "extension", "", `extended: how long, such as "2 months" or "45 days" (default: the law's most)`)
	cmd.Flags().StringVar(&method, "method", "", "verified: account, email, phone, document, in-person, knowledge or other")
	cmd.Flags().StringVar(&evidence, "evidence", "", "verified: what was checked (stored sealed)")
	cmd.Flags().StringVar(&t.Note, "note", "", "completed: how it was answered")
	return cmd
}

func dsrRectifyCmd(e *env, cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "rectify TENANT ID", Short: "Apply a verified rectification request's patch and complete it", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := cl.api.RectifyDSR(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return showDSR(e, cl, r)
		},
	}
}

func dsrSummaryCmd(e *env, cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "summary TENANT", Short: "Count a tenant's requests: by status; open ones on track, due soon, overdue", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cl.api.DSRSummary(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, s)
			}
			fmt.Fprintf(e.stdout, "Open %d: on track %d, due soon %d, overdue %d\n", s.Open, s.OnTrack, s.DueSoon, s.Overdue)
			tw := table(e.stdout)
			for _, st := range []string{"received", "verified", "in_progress", "extended", "completed", "rejected"} {
				fmt.Fprintf(tw, "%s\t%d\n", st, s.ByStatus[st])
			}
			tw.Flush()
			if len(s.OverdueIDs) > 0 {
				fmt.Fprintf(e.stdout, "Overdue: %s\n", strings.Join(s.OverdueIDs, " "))
			}
			if len(s.DueSoonIDs) > 0 {
				fmt.Fprintf(e.stdout, "Due soon: %s\n", strings.Join(s.DueSoonIDs, " "))
			}
			return nil
		},
	}
}
