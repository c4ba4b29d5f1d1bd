package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// newOperatorUserCmd is `custos operator user`: the cluster's operator
// users (people with the Operator role, MFA mandatory), managed with the
// root token or an operator user's session. They log in with `custos
// login --username NAME` and no --tenant.
func newOperatorUserCmd(e *env, cl *clientFlags) *cobra.Command {
	uc := &cobra.Command{Use: "user", Short: "The cluster's operator users (people with the Operator role; MFA mandatory)"}
	var username string
	create := &cobra.Command{
		Use:   "create --username NAME",
		Short: "Create an operator user with an initial password (prompted, or a line on stdin); it enrols TOTP at its first login",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := initialPassword(cmd, e)
			if err != nil {
				return err
			}
			u, err := cl.api.CreateOperator(cmd.Context(), client.NewOperator{Username: username, Password: pw})
			if err != nil {
				return err
			}
			return showUser(e, cl, u)
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
			return showUsers(e, cl, us)
		},
	}
	get := &cobra.Command{
		Use: "get USER_ID", Short: "Show an operator user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := cl.api.Operator(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return showUser(e, cl, u)
		},
	}
	uc.AddCommand(create, list, get)
	addUserActions(e, cl, uc, "USER_ID", []userAction{
		{"disable", "Disable an operator user: it can no longer log in, and its sessions end on every node"},
		{"enable", "Enable a disabled operator user"},
		{"reset-mfa", "Remove an operator user's second factor and recovery codes (audited); it enrols again at its next login"},
		{"unlock", "Forget an operator user's failed login attempts (the backoff's delays) on every node"},
	}, func(ctx context.Context, args []string, action string) (client.User, error) {
		return cl.api.OperatorAction(ctx, args[0], action)
	})
	return uc
}
