package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/node"
	"github.com/spf13/cobra"
)

func newOperatorCmd(e *env, cl *clientFlags) *cobra.Command {
	op := &cobra.Command{Use: "operator", Short: "Cluster set-up, membership, the root token and operator users"}

	var sealRecipients, backupRecipients []string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Initialize the first node of a new cluster (offline, on its data directory)",
		Long: `init creates the cluster CA, this node's certificates (cluster and API), the
operator token and a join token, and prints the two tokens once, and the
cluster CA that clients trust the API with (--ca-cert). Start the node with
` + "`custos server`" + ` afterwards; it bootstraps the cluster on first start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if cfg.Dev {
				return fmt.Errorf("operator init is for cluster nodes; dev mode initializes itself")
			}
			sec, err := node.Init(cfg.DataDir, cfg.NodeID, node.InitOptions{SealIdentity: cfg.Keyring.SealIdentity, SealRecipients: sealRecipients, Region: cfg.Region, BackupRecipients: backupRecipients})
			if err != nil {
				return err
			}
			if _, err := node.EnsureAPICertificate(cfg, cfg.DataDir); err != nil {
				return err
			}
			caPath := node.CACertPath(cfg.DataDir)
			caPEM, err := os.ReadFile(caPath)
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, map[string]any{
					"operator_token": sec.OperatorToken, "join_token": sec.JoinToken, "node_id": cfg.NodeID, "region": cfg.Region,
					"seal_identity": sec.SealIdentity, "seal_recipients": sec.SealRecipients, "audit_key": sec.AuditKey,
					"ca_cert_file": caPath, "ca_cert": string(caPEM),
				})
			}
			fmt.Fprintf(e.stdout, "Initialized node %q (region %s) in %s.\n\nOperator token (shown once; stored only as a hash):\n  %s\n\nJoin token (give it to nodes joining with `custos operator join`):\n  %s\n\n",
				cfg.NodeID, cfg.Region, cfg.DataDir, sec.OperatorToken, sec.JoinToken)
			if sec.SealIdentity != "" {
				fmt.Fprintf(e.stdout, "Seal identity (mode 0600; copy it to every node's keyring.seal_identity, keep an offline copy —\nwithout it no tenant key can be opened):\n  %s\n\n", sec.SealIdentity)
			} else {
				fmt.Fprintf(e.stdout, "Tenant roots are sealed to your recipients:\n  %s\nPoint every node's keyring.seal_identity at a matching identity file.\n\n", strings.Join(sec.SealRecipients, "\n  "))
			}
			fmt.Fprintf(e.stdout, "Audit checkpoint key (give it to auditors: custos audit verify --key):\n  %s\n\n", sec.AuditKey)
			fmt.Fprintf(e.stdout, "Cluster CA (every node's API certificate is issued from it; give it to clients:\ncustos --ca-cert %s, or CUSTOS_CACERT):\n%s\n", caPath, caPEM)
			fmt.Fprintln(e.stdout, "Start the node with: custos server --config <file>")
			return nil
		},
	}
	config.RegisterServerFlags(initCmd.Flags())
	initCmd.Flags().StringArrayVar(&sealRecipients, "seal-recipient", nil, "seal tenant roots to this age recipient (repeatable) instead of creating a seal identity")
	initCmd.Flags().StringArrayVar(&backupRecipients, "backup-recipient", nil, "encrypt backups to this age recipient (repeatable): a key the cluster does not hold")

	var joinAddr, joinToken string
	joinCmd := &cobra.Command{
		Use:   "join",
		Short: "Fetch this node's cluster certificate from a running node (offline for this node)",
		Long: `join authenticates the cluster by the CA fingerprint inside the join token,
presents the token, and stores this node's certificate in its data directory.
Then start the node with cluster.join listing a member; it becomes a voter.
A node whose region differs from the cluster's is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if joinAddr == "" && len(cfg.Cluster.Join) > 0 {
				joinAddr = cfg.Cluster.Join[0]
			}
			if joinToken == "" {
				joinToken = cfg.Cluster.JoinToken.Reveal()
			}
			if joinAddr == "" || joinToken == "" {
				return fmt.Errorf("operator join needs --join ADDR (a member's cluster address) and --join-token")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if err := node.FetchJoinCredentials(ctx, cfg.DataDir, joinAddr, joinToken, cfg.NodeID, cfg.Region); err != nil {
				return err
			}
			if _, err := node.EnsureAPICertificate(cfg, cfg.DataDir); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Node %q holds a cluster certificate. Start it with cluster.join = [%q].\n", cfg.NodeID, joinAddr)
			return nil
		},
	}
	config.RegisterServerFlags(joinCmd.Flags())
	joinCmd.Flags().StringVar(&joinAddr, "join", "", "cluster address of a running member")
	joinCmd.Flags().StringVar(&joinToken, "join-token", "", "join token printed by operator init")

	raftCmd := &cobra.Command{Use: "raft", Short: "Raft membership"}
	raftCmd.AddCommand(
		&cobra.Command{
			Use: "list-peers", Short: "List the cluster's peers", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				out, err := cl.api.Peers(cmd.Context())
				if err != nil {
					return err
				}
				if cl.format == "json" {
					return printJSON(e.stdout, out)
				}
				printPeers(e.stdout, out.Peers)
				return nil
			},
		},
		&cobra.Command{
			Use: "remove-peer ID", Short: "Remove a peer (idempotent)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := cl.api.RemovePeer(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Peer %s removed.\n", args[0])
				return nil
			},
		},
		&cobra.Command{
			Use: "transfer-leader [ID]", Short: "Hand leadership to a peer (any if no ID)", Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				if err := cl.api.TransferLeader(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, "Leadership transferred.")
				return nil
			},
		},
	)
	backupCmd, restoreCmd := newBackupCmd(e, cl)
	op.AddCommand(initCmd, joinCmd, raftCmd, backupCmd, restoreCmd, newRootTokenCmd(e, cl), newOperatorUserCmd(e, cl))
	return op
}
