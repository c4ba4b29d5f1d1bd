package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type apiKeyJSON struct {
	ID          string     `json:"id"`
	Tenant      string     `json:"tenant"`
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	LastUsed    *time.Time `json:"last_used,omitempty"`
	Token       string     `json:"token,omitempty"`
}

func printAPIKeys(e *env, keys []apiKeyJSON) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tNAME\tPERMISSIONS\tCREATED\tEXPIRES\tLAST USED")
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Permissions, ","), k.CreatedAt.UTC().Format(time.RFC3339), at(k.ExpiresAt), at(k.LastUsed))
	}
	tw.Flush()
}

func newAPIKeyCmd(e *env, cl *clientFlags) *cobra.Command {
	ac := &cobra.Command{Use: "apikey", Short: "Tenant API keys (operator)"}
	var name, perms string
	var expires time.Duration
	create := &cobra.Command{
		Use: "create TENANT --name NAME --permissions read,write", Short: "Create an API key for a tenant (the token is shown once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"name": name, "permissions": strings.Split(perms, ",")}
			if perms == "" {
				body["permissions"] = []string{}
			}
			if expires > 0 {
				body["expires_at"] = time.Now().Add(expires).UTC().Format(time.RFC3339)
			}
			var k apiKeyJSON
			if err := cl.do(cmd.Context(), "POST", "/v1/tenants/"+pathEscape(args[0])+"/apikeys", body, &k); err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, k)
			}
			printAPIKeys(e, []apiKeyJSON{k})
			fmt.Fprintf(e.stdout, "\nToken (shown once; stored only as a hash):\n  %s\n", k.Token)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the key is for")
	create.Flags().StringVar(&perms, "permissions", "", "comma-separated: read, write, delete, export, admin")
	create.Flags().DurationVar(&expires, "expires-in", 0, "expire after this long (default: never)")
	list := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's API keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				APIKeys []apiKeyJSON `json:"apikeys"`
			}
			if err := cl.do(cmd.Context(), "GET", "/v1/tenants/"+pathEscape(args[0])+"/apikeys", nil, &out); err != nil {
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
			if err := cl.do(cmd.Context(), "DELETE", "/v1/tenants/"+pathEscape(args[0])+"/apikeys/"+pathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "API key %s of %s revoked.\n", args[1], args[0])
			return nil
		},
	}
	ac.AddCommand(create, list, del)
	return ac
}
