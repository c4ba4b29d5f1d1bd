package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// vaultFlags are the --key-provider vault settings of `tenant create` and
// `keyring provider`. Credentials come from files (or the environment), never
// from the command line, where other users could read them.
type vaultFlags struct {
	provider, address, mount, key, authMethod, authMount, caFile string
	tokenFile, roleID, secretIDFile                              string
}

func (v *vaultFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&v.provider, "key-provider", "", "age (default: a root held by the cluster) or vault (bring your own key)")
	f.StringVar(&v.address, "vault-address", "", "Vault address, e.g. https://vault.example:8200")
	f.StringVar(&v.mount, "vault-mount", "transit", "transit mount")
	f.StringVar(&v.key, "vault-key", "", "transit key name")
	f.StringVar(&v.authMethod, "vault-auth", "token", "token or approle")
	f.StringVar(&v.authMount, "vault-auth-mount", "", "AppRole mount (default approle)")
	f.StringVar(&v.caFile, "vault-ca-cert", "", "PEM file of the CA of Vault's TLS certificate")
	f.StringVar(&v.tokenFile, "vault-token-file", "", "file holding the Vault token (default: $VAULT_TOKEN)")
	f.StringVar(&v.roleID, "vault-role-id", "", "AppRole role id")
	f.StringVar(&v.secretIDFile, "vault-secret-id-file", "", "file holding the AppRole secret id")
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// keyProvider is the key provider the flags choose (the zero value when
// --key-provider is not given).
func (v *vaultFlags) keyProvider() (client.KeyProvider, error) {
	if v.provider != "vault" {
		return client.KeyProvider{Kind: v.provider}, nil
	}
	vault := &client.Vault{Address: v.address, Mount: v.mount, Key: v.key, AuthMethod: v.authMethod, AuthMount: v.authMount}
	if v.caFile != "" {
		pem, err := os.ReadFile(v.caFile)
		if err != nil {
			return client.KeyProvider{}, fmt.Errorf("read %s: %w", v.caFile, err)
		}
		vault.CACertPEM = string(pem)
	}
	switch v.authMethod {
	case "approle":
		vault.RoleID = v.roleID
		if v.secretIDFile != "" {
			s, err := readSecretFile(v.secretIDFile)
			if err != nil {
				return client.KeyProvider{}, err
			}
			vault.SecretID = s
		}
	default:
		vault.Token = os.Getenv("VAULT_TOKEN")
		if v.tokenFile != "" {
			s, err := readSecretFile(v.tokenFile)
			if err != nil {
				return client.KeyProvider{}, err
			}
			vault.Token = s
		}
	}
	return client.KeyProvider{Kind: v.provider, Vault: vault}, nil
}

func printKeyStatus(e *env, st client.KeyStatus) {
	tw := table(e.stdout)
	provider := st.Provider.Kind
	if v := st.Provider.Vault; v != nil {
		provider += fmt.Sprintf(" (%s %s/%s)", v.Address, v.Mount, v.Key)
	}
	fmt.Fprintf(tw, "Tenant\t%s\n", st.Tenant)
	fmt.Fprintf(tw, "Provider\t%s\n", provider)
	fmt.Fprintf(tw, "Current KEK\t%d (versions %v)\n", st.CurrentKEK, st.KEKs)
	fmt.Fprintf(tw, "Data keys\t%d\n", st.DataKeys)
	state := "done"
	if st.Rewrapping || st.Pending > 0 {
		state = "running"
	}
	fmt.Fprintf(tw, "Rewrap\t%s (%d of %d data keys still under an older KEK)\n", state, st.Pending, st.DataKeys)
	if len(st.TransitVersions) > 0 {
		fmt.Fprintf(tw, "Transit versions\t%v\n", st.TransitVersions)
	}
	tw.Flush()
}

func newKeyringCmd(e *env, cl *clientFlags) *cobra.Command {
	kc := &cobra.Command{Use: "keyring", Short: "Tenant keys: status, rotation, cache purge, provider"}
	status := &cobra.Command{
		Use: "status TENANT", Short: "Show a tenant's keys and rewrap progress", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := cl.api.KeyStatus(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, st)
			}
			printKeyStatus(e, st)
			return nil
		},
	}
	var wait time.Duration
	rotate := &cobra.Command{
		Use: "rotate TENANT", Short: "Add a KEK version; data keys are rewrapped in the background", Args: cobra.ExactArgs(1),
		Long: `rotate adds a key-encryption key version and makes it current. Existing data
keys are rewrapped under it in the background (no data is re-encrypted);
--wait waits for that to finish. For a Vault tenant the transit key is rotated
first.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := cl.api.RotateKeys(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			st := out.Status
			deadline := time.Now().Add(wait)
			for wait > 0 && (st.Rewrapping || st.Pending > 0) {
				if time.Now().After(deadline) {
					return fmt.Errorf("rewrap of %s still running after %s: %d data keys to go", args[0], wait, st.Pending)
				}
				time.Sleep(200 * time.Millisecond)
				if st, err = cl.api.KeyStatus(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			if cl.format == "json" {
				return printJSON(e.stdout, st)
			}
			fmt.Fprintf(e.stdout, "Rotated %s to KEK %d.\n", args[0], out.CurrentKEK)
			printKeyStatus(e, st)
			return nil
		},
	}
	rotate.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the rewrap to finish (0: don't wait)")
	purge := &cobra.Command{
		Use: "purge-cache TENANT", Short: "Drop the tenant's unwrapped keys from memory on every node", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			purged, err := cl.api.PurgeKeyCache(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, map[string]int{"purged": purged})
			}
			fmt.Fprintf(e.stdout, "Purged %s's cached keys (%d on this node; other nodes follow within a second).\n", args[0], purged)
			return nil
		},
	}
	var vf vaultFlags
	provider := &cobra.Command{
		Use: "provider TENANT", Short: "Move a tenant's root to another provider, or give a Vault tenant new credentials", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kp, err := vf.keyProvider()
			if err != nil {
				return err
			}
			if kp.Kind == "" {
				return fmt.Errorf("keyring provider needs --key-provider")
			}
			st, err := cl.api.SetKeyProvider(cmd.Context(), args[0], kp)
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, st)
			}
			printKeyStatus(e, st)
			return nil
		},
	}
	vf.register(provider)
	kc.AddCommand(status, rotate, purge, provider)
	return kc
}
