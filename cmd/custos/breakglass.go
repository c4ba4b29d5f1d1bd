package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// printGrants prints break-glass grants as a table.
func printGrants(e *env, gs []client.BreakGlassGrant) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tSTATE\tOPERATOR\tREQUESTED\tEXPIRES\tAPPROVED BY\tREASON")
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, g := range gs {
		by := g.ApprovedBy
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.State, g.Operator, g.RequestedAt.UTC().Format(time.RFC3339), at(g.ExpiresAt), by, g.Reason)
	}
	tw.Flush()
}

// newBreakGlassCmd is `custos breakglass`: an operator's time-limited
// access to a tenant's data, approved by the tenant.
func newBreakGlassCmd(e *env, cl *clientFlags) *cobra.Command {
	bc := &cobra.Command{Use: "breakglass", Short: "An operator's time-limited access to a tenant's data, approved by the tenant's Owner"}
	one := func(cmd *cobra.Command, g client.BreakGlassGrant, err error) error {
		if err != nil {
			return err
		}
		if cl.format == "json" {
			return printJSON(e.stdout, g)
		}
		printGrants(e, []client.BreakGlassGrant{g})
		return nil
	}
	var reason string
	var duration time.Duration
	request := &cobra.Command{
		Use: "request TENANT --reason TEXT [--duration 1h]", Short: "Ask for access to a tenant's data (operator; pending until the tenant approves)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if duration%time.Second != 0 {
				return fmt.Errorf("--duration must be whole seconds")
			}
			g, err := cl.api.RequestBreakGlass(cmd.Context(), args[0], reason, duration)
			return one(cmd, g, err)
		},
	}
	request.Flags().StringVar(&reason, "reason", "", "why the data is needed (shown to the tenant, recorded)")
	request.Flags().DurationVar(&duration, "duration", 0, "how long, once approved (default 1h; at most the tenant's policy allows)")
	approve := &cobra.Command{
		Use: "approve TENANT ID", Short: "Approve a pending request (the tenant's Owner)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := cl.api.ApproveBreakGlass(cmd.Context(), args[0], args[1])
			return one(cmd, g, err)
		},
	}
	revoke := &cobra.Command{
		Use: "revoke TENANT ID", Short: "End a pending or active grant now (the tenant's Owner)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := cl.api.RevokeBreakGlass(cmd.Context(), args[0], args[1])
			return one(cmd, g, err)
		},
	}
	list := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's grants with their state", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := cl.api.BreakGlassGrants(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, out)
			}
			printGrants(e, out.Grants)
			return nil
		},
	}
	var auto bool
	var maxDuration time.Duration
	policy := &cobra.Command{
		Use: "policy TENANT [--auto-approve] [--max-duration 4h]", Short: "Show a tenant's break-glass policy, or set it with flags (the tenant's Owner)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p client.BreakGlassPolicy
			var err error
			if cmd.Flags().Changed("auto-approve") || cmd.Flags().Changed("max-duration") {
				p, err = cl.api.SetBreakGlassPolicy(cmd.Context(), args[0], client.BreakGlassPolicy{AutoApprove: auto, MaxDurationSeconds: int64(maxDuration / time.Second)})
			} else {
				p, err = cl.api.BreakGlassPolicy(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, p)
			}
			fmt.Fprintf(e.stdout, "auto-approve: %v\nmax duration: %s\n", p.AutoApprove, time.Duration(p.MaxDurationSeconds)*time.Second)
			return nil
		},
	}
	policy.Flags().BoolVar(&auto, "auto-approve", false, "approve requests at once (recorded as approved by the policy)")
	policy.Flags().DurationVar(&maxDuration, "max-duration", 4*time.Hour, "the longest grant")
	bc.AddCommand(request, approve, revoke, list, policy)
	return bc
}
