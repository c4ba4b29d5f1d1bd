package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/client"
)

func printAPIKeys(e *env, keys []client.APIKey) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tNAME\tROLE/PERMISSIONS\tCREATED\tEXPIRES\tLAST USED")
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		access := strings.Join(k.Permissions, ",")
		if k.Role != "" {
			access = "role " + k.Role
		}
		access += formatScopes(k.Scopes)
		if k.ClientCertCN != "" {
			access += " client-cert CN=" + k.ClientCertCN
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, access, k.CreatedAt.UTC().Format(time.RFC3339), at(k.ExpiresAt), at(k.LastUsed))
	}
	tw.Flush()
}

// parseScopes reads --scope flags, NAME=VALUE[,VALUE...] each; a name
// given twice adds its values. The server checks names and values.
func parseScopes(flags []string) (map[string][]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	for _, f := range flags {
		name, values, ok := strings.Cut(f, "=")
		if !ok || name == "" || values == "" {
			return nil, fmt.Errorf("--scope %q: want NAME=VALUE[,VALUE...], such as property=villa-a", f)
		}
		out[name] = append(out[name], strings.Split(values, ",")...)
	}
	return out, nil
}

// formatScopes is parseScopes' inverse for people: " NAME=V1,V2" for each
// scope, names sorted, to append to a role.
func formatScopes(scopes map[string][]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(scopes)) {
		b.WriteString(" " + name + "=" + strings.Join(scopes[name], ","))
	}
	return b.String()
}

func newAPIKeyCmd(e *env, cl *clientFlags) *cobra.Command {
	ac := &cobra.Command{Use: "apikey", Short: "Tenant API keys (operator)"}
	var name, role, perms, certCN string
	var scopes []string
	var expires time.Duration
	create := &cobra.Command{
		Use: "create TENANT --name NAME (--role ROLE [--scope NAME=VALUE[,VALUE] ...] | --permissions read,write)", Short: "Create an API key for a tenant (the token is shown once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nk := client.NewAPIKey{Name: name, Role: role, ClientCertCN: certCN}
			if perms != "" {
				nk.Permissions = strings.Split(perms, ",")
			}
			var err error
			if nk.Scopes, err = parseScopes(scopes); err != nil {
				return err
			}
			if expires > 0 {
				at := time.Now().Add(expires).UTC().Truncate(time.Second) // sent as RFC 3339, whole seconds
				nk.ExpiresAt = &at
			}
			k, err := cl.api.CreateAPIKey(cmd.Context(), args[0], nk)
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, k)
			}
			printAPIKeys(e, []client.APIKey{k})
			fmt.Fprintf(e.stdout, "\nToken (shown once; stored only as a hash):\n  %s\n", k.Token)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the key is for")
	create.Flags().StringVar(&role, "role", "", "a built-in tenant role: "+strings.Join(apikeys.Roles(), ", "))
	create.Flags().StringVar(&perms, "permissions", "", "the old form, instead of --role; comma-separated: read, write, delete, export, admin")
	create.Flags().StringArrayVar(&scopes, "scope", nil, "with --role: an attribute scope, NAME=VALUE[,VALUE...] (repeatable; the key sees only records and blobs whose attribute NAME has one of the values)")
	create.Flags().DurationVar(&expires, "expires-in", 0, "expire after this long (default: never)")
	create.Flags().StringVar(&certCN, "client-cert-cn", "", "bind the key to a client certificate with this subject common name, verified by the nodes' [api] tls_client_ca_file (mutual TLS: a second factor for a machine client)")
	list := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's API keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := cl.api.APIKeys(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, out)
			}
			printAPIKeys(e, out.APIKeys)
			return nil
		},
	}
	del := &cobra.Command{
		Use: "delete TENANT ID", Short: "Revoke an API key at once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.api.DeleteAPIKey(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "API key %s of %s revoked.\n", args[1], args[0])
			return nil
		},
	}
	ac.AddCommand(create, list, del)
	return ac
}
