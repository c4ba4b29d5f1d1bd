package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

func printUsers(e *env, us []client.User) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tUSERNAME\tROLE\tMFA\tDISABLED\tCREATED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", u.ID, u.Username, u.Role+formatScopes(u.Scopes), u.MFA, u.Disabled, u.CreatedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}

// showUsers prints a list of users (tenant or operator) in the chosen
// format: a JSON array or the users table.
func showUsers(e *env, cl *clientFlags, us []client.User) error {
	if cl.format == "json" {
		return printJSON(e.stdout, us)
	}
	printUsers(e, us)
	return nil
}

// showUser prints one user in the chosen format: a JSON object or a
// one-row users table.
func showUser(e *env, cl *clientFlags, u client.User) error {
	if cl.format == "json" {
		return printJSON(e.stdout, u)
	}
	printUsers(e, []client.User{u})
	return nil
}

// initialPassword prompts for a new user's initial password (or reads a
// line on stdin), for `user create` and `operator user create` alike.
func initialPassword(cmd *cobra.Command, e *env) (string, error) {
	return newPrompter(cmd, e).secret("initial password: ")
}

// userAction is one of the account actions a tenant's and an operator
// user share (disable, enable, reset-mfa, unlock), with its help line.
type userAction struct{ use, short string }

// addUserActions adds a command per action to parent: operands (such as
// "TENANT USER_ID") name its arguments, do calls the API, and the user it
// returns is shown.
func addUserActions(e *env, cl *clientFlags, parent *cobra.Command, operands string, actions []userAction,
	do func(ctx context.Context, args []string, action string) (client.User, error)) {
	for _, a := range actions {
		parent.AddCommand(&cobra.Command{
			Use: a.use + " " + operands, Short: a.short, Args: cobra.ExactArgs(len(strings.Fields(operands))),
			RunE: func(cmd *cobra.Command, args []string) error {
				u, err := do(cmd.Context(), args, a.use)
				if err != nil {
					return err
				}
				return showUser(e, cl, u)
			},
		})
	}
}

func newUserCmd(e *env, cl *clientFlags) *cobra.Command {
	uc := &cobra.Command{Use: "user", Short: "A tenant's users (people who log in)"}
	var username, role string
	var scopes []string
	create := &cobra.Command{
		Use:   "create TENANT --username NAME --role ROLE [--scope NAME=VALUE[,VALUE] ...]",
		Short: "Create a user with an initial password (prompted, or a line on stdin); the operator creates only a tenant's first Owner",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := parseScopes(scopes)
			if err != nil {
				return err
			}
			pw, err := initialPassword(cmd, e)
			if err != nil {
				return err
			}
			u, err := cl.api.CreateUser(cmd.Context(), args[0], client.NewUser{Username: username, Password: pw, Role: role, Scopes: sc})
			if err != nil {
				return err
			}
			return showUser(e, cl, u)
		},
	}
	create.Flags().StringVar(&username, "username", "", "the username (case-insensitive, unique in the tenant)")
	create.Flags().StringVar(&role, "role", "", "a built-in role (owner, manager, ..., read-only) or the tenant's custom role")
	create.Flags().StringArrayVar(&scopes, "scope", nil, "attribute scope NAME=VALUE[,VALUE...] (repeatable)")
	_ = create.MarkFlagRequired("username")
	_ = create.MarkFlagRequired("role")
	list := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's users", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			us, err := cl.api.Users(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return showUsers(e, cl, us)
		},
	}
	get := &cobra.Command{
		Use: "get TENANT USER_ID", Short: "Show a user", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := cl.api.User(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return showUser(e, cl, u)
		},
	}
	var newRole string
	var newScopes []string
	var unscoped bool
	set := &cobra.Command{
		Use: "set-role TENANT USER_ID [--role ROLE] [--scope NAME=VALUE ... | --unscoped]", Short: "Change a user's role or scopes (effective on its sessions at once)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p client.UserPatch
			if newRole != "" {
				p.Role = &newRole
			}
			sc, err := parseScopes(newScopes)
			if err != nil {
				return err
			}
			if sc != nil || unscoped {
				if sc == nil {
					sc = map[string][]string{}
				}
				p.Scopes = &sc
			}
			u, err := cl.api.UpdateUser(cmd.Context(), args[0], args[1], p)
			if err != nil {
				return err
			}
			return showUser(e, cl, u)
		},
	}
	set.Flags().StringVar(&newRole, "role", "", "the new role")
	set.Flags().StringArrayVar(&newScopes, "scope", nil, "the new attribute scopes NAME=VALUE[,VALUE...] (repeatable)")
	set.Flags().BoolVar(&unscoped, "unscoped", false, "remove the user's scopes")
	uc.AddCommand(create, list, get, set)
	addUserActions(e, cl, uc, "TENANT USER_ID", []userAction{
		{"disable", "Disable a user: it can no longer log in, and its sessions end on every node"},
		{"enable", "Enable a disabled user"},
		{"reset-mfa", "Remove a user's second factor and recovery codes (audited); a user whose role requires MFA then enrols again"},
		{"unlock", "Forget a user's failed login attempts (the backoff's delays) on every node"},
	}, func(ctx context.Context, args []string, action string) (client.User, error) {
		return cl.api.UserAction(ctx, args[0], args[1], action)
	})
	return uc
}

func printRole(e *env, r client.Role) {
	fmt.Fprintf(e.stdout, "%s (%s)\n", r.Name, r.Title)
	fmt.Fprintf(e.stdout, "  built in:     %v\n  requires MFA: %v\n", r.Builtin, r.RequiresMFA)
	fmt.Fprintf(e.stdout, "  permissions:  %s\n", strings.Join(r.Permissions, ", "))
	var vis []string
	for _, c := range []string{"pii", "sensitive", "internal"} {
		vis = append(vis, c+"="+r.Visibility[c])
	}
	fmt.Fprintf(e.stdout, "  visibility:   %s\n", strings.Join(vis, " "))
}

func newRoleCmd(e *env, cl *clientFlags) *cobra.Command {
	rc := &cobra.Command{Use: "role", Short: "The roles a tenant's users may hold (built in, and the tenant's custom roles)"}
	list := &cobra.Command{
		Use: "list TENANT", Short: "List the roles", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := cl.api.Roles(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, rs)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "NAME\tTITLE\tBUILT IN\tMFA\tPERMISSIONS")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%d\n", r.Name, r.Title, r.Builtin, r.RequiresMFA, len(r.Permissions))
			}
			tw.Flush()
			return nil
		},
	}
	show := &cobra.Command{
		Use: "show TENANT NAME", Short: "Show a role's permissions and visibility", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := cl.api.Role(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, r)
			}
			printRole(e, r)
			return nil
		},
	}
	var title, perms, visibility string
	var mfa bool
	create := &cobra.Command{
		Use:   "create TENANT NAME --permissions records:read,... --visibility pii=masked,sensitive=none,internal=clear",
		Short: "Define a custom role from the permission table's permissions",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cr := client.CustomRole{Name: args[1], Title: title, MFA: mfa, Visibility: map[string]string{}}
			if perms != "" {
				cr.Permissions = strings.Split(perms, ",")
			}
			for _, kv := range strings.Split(visibility, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--visibility %q: want pii=VALUE,sensitive=VALUE,internal=VALUE (clear, masked or none)", visibility)
				}
				cr.Visibility[k] = v
			}
			r, err := cl.api.CreateRole(cmd.Context(), args[0], cr)
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, r)
			}
			printRole(e, r)
			return nil
		},
	}
	create.Flags().StringVar(&title, "title", "", "the role's name for people")
	create.Flags().StringVar(&perms, "permissions", "", "resource:action permissions, comma-separated")
	create.Flags().StringVar(&visibility, "visibility", "", "how the role reads each field classification: pii=..,sensitive=..,internal=.. (clear, masked, none)")
	create.Flags().BoolVar(&mfa, "mfa", false, "require MFA of the role's users (a role with a privileged permission requires it anyway)")
	_ = create.MarkFlagRequired("permissions")
	_ = create.MarkFlagRequired("visibility")
	rc.AddCommand(list, show, create)
	return rc
}
