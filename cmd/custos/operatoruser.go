package main

import (
	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// newOperatorUserCmd is `custos operator user`: the cluster's operator
// users (people with the Operator role, MFA mandatory), managed with the
// root token or an operator user's session. They log in with `custos
// login --username NAME` and no --tenant.
func newOperatorUserCmd(e *env, cl *clientFlags) *cobra.Command {
	uc := &cobra.Command{Use: "user", Short: "The cluster's operator users (people with the Operator role; MFA mandatory)"}
	show := func(u client.User) error {
		if cl.format == "json" {
			return printJSON(e.stdout, u)
		}
		printUsers(e, []client.User{u})
		return nil
	}
	var username string
	create := &cobra.Command{
		Use:   "create --username NAME",
		Short: "Create an operator user with an initial password (prompted, or a line on stdin); it enrols TOTP at its first login",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := newPrompter(cmd, e).secret("initial password: ")
			if err != nil {
				return err
			}
			u, err := cl.api.CreateOperator(cmd.Context(), client.NewOperator{Username: username, Password: pw})
			if err != nil {
				return err
			}
			return show(u)
		},
	}
	create.Flags().StringVar(&username, "username", "", "the username (case-insensitive, unique among operators)")
	_ = create.MarkFlagRequired("username")
	list := &cobra.Command{
		Use: "list", Short: "List the operator users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			us, err := cl.api.Operators(cmd.Context())
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, us)
			}
			printUsers(e, us)
			return nil
		},
	}
	get := &cobra.Command{
		Use: "get USER_ID", Short: "Show an operator user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := cl.api.Operator(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return show(u)
		},
	}
	uc.AddCommand(create, list, get)
	for _, a := range []struct{ use, short string }{
		{"disable", "Disable an operator user: it can no longer log in, and its sessions end on every node"},
		{"enable", "Enable a disabled operator user"},
		{"reset-mfa", "Remove an operator user's second factor and recovery codes (audited); it enrols again at its next login"},
		{"unlock", "Forget an operator user's failed login attempts (the backoff's delays) on every node"},
	} {
		uc.AddCommand(&cobra.Command{
			Use: a.use + " USER_ID", Short: a.short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				u, err := cl.api.OperatorAction(cmd.Context(), args[0], a.use)
				if err != nil {
					return err
				}
				return show(u)
			},
		})
	}
	return uc
}
