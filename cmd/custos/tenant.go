package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

func printTenants(e *env, ts []client.Tenant) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tDISPLAY NAME\tREGION\tSTATE\tKEYS\tCREATED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.DisplayName, t.Region, t.State, t.KeyProvider, t.CreatedAt)
	}
	tw.Flush()
}

// printTenantSettings prints a tenant's retention and privacy settings
// under its table row.
func printTenantSettings(e *env, t client.Tenant) {
	audit := "cluster default"
	if t.AuditRetentionDays > 0 {
		audit = fmt.Sprintf("%d days", t.AuditRetentionDays)
	}
	fmt.Fprintf(e.stdout, "Regulation: %s, time zone %s, DPDP response %d days; records kept %d days; audit kept: %s\n",
		t.Regulation, t.TimeZone, t.DPDPResponseDays, t.RetentionDays, audit)
}

// tenantUpdateCmd is custos tenant update: only the flags given change.
func tenantUpdateCmd(e *env, cl *clientFlags) *cobra.Command {
	var name, regulation, zone string
	var auditDays, dpdpDays, retentionDays int
	cmd := &cobra.Command{
		Use: "update ID", Short: "Change a tenant's name, retention or privacy settings", Args: cobra.ExactArgs(1),
		Long: `update changes only the settings whose flags are given. --regulation
(gdpr, ccpa, pipeda, dpdp) and --time-zone (an IANA name) decide the due
dates of data-subject requests; --dpdp-response-days is the period under
dpdp (1 to 90); --retention-days is how long a record of a collection
without its own retention_days is kept (default 365 in every mode; a GDPR
tenant may choose 730).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var p client.TenantPatch
			f := cmd.Flags()
			if f.Changed("display-name") {
				p.DisplayName = &name
			}
			if f.Changed("audit-retention-days") {
				p.AuditRetentionDays = &auditDays
			}
			if f.Changed("regulation") {
				p.Regulation = &regulation
			}
			if f.Changed("time-zone") {
				p.TimeZone = &zone
			}
			if f.Changed("dpdp-response-days") {
				p.DPDPResponseDays = &dpdpDays
			}
			if f.Changed("retention-days") {
				p.RetentionDays = &retentionDays
			}
			if p == (client.TenantPatch{}) {
				return fmt.Errorf("tenant update: give at least one setting to change")
			}
			t, err := cl.api.UpdateTenant(cmd.Context(), args[0], p)
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, t)
			}
			printTenants(e, []client.Tenant{t})
			printTenantSettings(e, t)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "display-name", "", "display name")
	cmd.Flags().IntVar(&auditDays, "audit-retention-days", 0, "how long audit entries are kept (0: the cluster's default)")
	cmd.Flags().StringVar(&regulation, "regulation", "", "regulation mode: gdpr, ccpa, pipeda or dpdp")
	cmd.Flags().StringVar(&zone, "time-zone", "", "IANA time zone deadlines are counted in, e.g. Europe/Berlin")
	cmd.Flags().IntVar(&dpdpDays, "dpdp-response-days", 0, "response period under dpdp, 1 to 90 days")
	cmd.Flags().IntVar(&retentionDays, "retention-days", 0, "default retention of records, in days (1 to 36500)")
	return cmd
}

func newTenantCmd(e *env, cl *clientFlags) *cobra.Command {
	tc := &cobra.Command{Use: "tenant", Short: "Manage tenants"}
	var displayName, region string
	var vf vaultFlags
	create := &cobra.Command{
		Use: "create ID", Short: "Create a tenant (and its keys)", Args: cobra.ExactArgs(1),
		Long: `create registers a tenant and creates its key hierarchy in the same
transaction. By default the tenant's root key is an age identity held by the
cluster (sealed to the seal recipients). With --key-provider vault it is a
transit key in the customer's Vault (bring your own key); Vault must answer.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := displayName
			if name == "" {
				name = args[0]
			}
			kp, err := vf.keyProvider()
			if err != nil {
				return err
			}
			t, err := cl.api.CreateTenant(cmd.Context(), client.NewTenant{ID: args[0], DisplayName: name, Region: region, KeyProvider: kp})
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, t)
			}
			printTenants(e, []client.Tenant{t})
			return nil
		},
	}
	create.Flags().StringVar(&displayName, "display-name", "", "display name (default: the id)")
	create.Flags().StringVar(&region, "region", "", "region; must be the cluster's (default: the cluster's)")
	vf.register(create)

	var limit int
	var after string
	var all bool
	list := &cobra.Command{
		Use: "list", Short: "List tenants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ts []client.Tenant
			cursor := after
			for {
				page, err := cl.api.Tenants(cmd.Context(), limit, cursor)
				if err != nil {
					return err
				}
				ts = append(ts, page.Tenants...)
				if !all || page.Next == "" {
					if cl.format == "json" {
						return printJSON(e.stdout, map[string]any{"tenants": ts, "next": page.Next})
					}
					printTenants(e, ts)
					if page.Next != "" {
						fmt.Fprintf(e.stdout, "(more: --after %s, or --all)\n", page.Next)
					}
					return nil
				}
				cursor = page.Next
			}
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, "page size (1..500)")
	list.Flags().StringVar(&after, "after", "", "start after this tenant id")
	list.Flags().BoolVar(&all, "all", false, "fetch every page")

	get := &cobra.Command{
		Use: "get ID", Short: "Show a tenant", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := cl.api.Tenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, t)
			}
			printTenants(e, []client.Tenant{t})
			printTenantSettings(e, t)
			return nil
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a tenant and all of its data", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.api.DeleteTenant(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Tenant %s deleted.\n", args[0])
			return nil
		},
	}
	// setState is suspend or resume: the tenant's new state is printed.
	setState := func(use, short string, do func(ctx context.Context, id string) (client.Tenant, error)) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				t, err := do(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if cl.format == "json" {
					return printJSON(e.stdout, t)
				}
				printTenants(e, []client.Tenant{t})
				return nil
			},
		}
	}
	suspend := setState("suspend", "Suspend a tenant: its data and keys are kept, its API keys refused on its data", func(ctx context.Context, id string) (client.Tenant, error) {
		return cl.api.SuspendTenant(ctx, id)
	})
	resume := setState("resume", "Resume a suspended tenant: its API keys work again", func(ctx context.Context, id string) (client.Tenant, error) {
		return cl.api.ResumeTenant(ctx, id)
	})
	var ef exportFlags
	export := &cobra.Command{
		Use:   "export ID --out FILE [--format json|csv] [--compression zip|gzip]",
		Short: "Export all of a tenant's data (the data return at the end of a contract)",
		Long: `export has the cluster build an archive of every collection's records and
every blob of the tenant, with a manifest signed by the cluster's audit key,
and downloads it to --out, its SHA-256 checked (progress on stderr). It takes
every record at once, so only the tenant's Owner may (collections:delete).
Check the archive with custos dsr verify-export.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd, e, cl, &ef, args[0], func(ctx context.Context, o client.ExportOptions) (client.Export, error) {
				return cl.api.ExportTenant(ctx, args[0], o)
			})
		},
	}
	ef.register(export)

	tc.AddCommand(create, list, get, tenantUpdateCmd(e, cl), del, suspend, resume, export)
	return tc
}

func newStatusCmd(e *env, cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "Show the node's and the cluster's state", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cl.format == "json" {
				// Everything the node says, not only what the table shows.
				var raw map[string]any
				if err := cl.api.Do(cmd.Context(), "GET", "/v1/sys/status", nil, &raw); err != nil {
					return err
				}
				return printJSON(e.stdout, raw)
			}
			st, err := cl.api.Status(cmd.Context())
			if err != nil {
				return err
			}
			tw := table(e.stdout)
			fmt.Fprintf(tw, "Node\t%s\nRegion\t%s\nVersion\t%s\nState\t%s\nLeader\t%s\nTerm\t%d\nCommit index\t%d\nApplied index\t%d\n",
				st.NodeID, st.Region, st.Version, st.State, st.LeaderID, st.Term, st.CommitIndex, st.AppliedIndex)
			tw.Flush()
			fmt.Fprintf(e.stdout, "\nPeers (%d):\n", len(st.Peers))
			printPeers(e.stdout, st.Peers)
			return nil
		},
	}
}
