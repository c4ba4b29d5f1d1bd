package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// parseMapping reads one --map flag: "CLAIM=VALUE -> ROLE [ATTR=V1,V2 ...]"
// (claim names hold no '='; the value is everything up to the last " -> ";
// scopes are space-separated, their values comma-separated). The server
// checks names, roles and values; this only splits.
func parseMapping(s string) (client.SSOMapping, error) {
	bad := fmt.Errorf("--map %q: want CLAIM=VALUE -> ROLE [ATTR=V1,V2 ...], such as 'groups=custos-owners -> owner' or 'email_domain=example.org -> read-only'", s)
	left, right, ok := cutLast(s, " -> ")
	if !ok {
		return client.SSOMapping{}, bad
	}
	claim, value, ok := strings.Cut(strings.TrimSpace(left), "=")
	fields := strings.Fields(right)
	if !ok || claim == "" || value == "" || len(fields) == 0 {
		return client.SSOMapping{}, bad
	}
	scopes, err := parseScopes(fields[1:])
	if err != nil {
		return client.SSOMapping{}, bad
	}
	return client.SSOMapping{Claim: claim, Value: value, Role: fields[0], Scopes: scopes}, nil
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// readSecret reads a client secret from a file ("-": standard input),
// without its trailing newline: a secret is never a flag, which other
// users of the machine could read in the process list.
func readSecret(path string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 4096))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("client secret: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func newSSOCmd(e *env, cl *clientFlags) *cobra.Command {
	sc := &cobra.Command{Use: "sso", Short: "A tenant's single sign-on through its OpenID Connect provider (the tenant's Owner, or the operator)"}
	var (
		file, secretFile                string
		s                               client.SSOSettings
		maps, scopes, allowed, amr, acr []string
		trustMFA                        bool
	)
	configure := &cobra.Command{
		Use:   "configure TENANT (--issuer URL | --preset google | --preset entra --entra-tenant ID) --client-id ID --redirect-url URL [--map 'CLAIM=VALUE -> ROLE [ATTR=V,...]' ...]",
		Short: "Set a tenant's single sign-on (replaces the settings; the client secret is read from a file, never a flag)",
		Long: "Set a tenant's single sign-on. --file reads the whole settings as JSON (as PUT /v1/tenants/{id}/sso takes them);\n" +
			"flags given beside it replace its fields. Mappings are tried in order; the first whose claim holds its value\n" +
			"gives the role and attribute scopes; none: --default-role, or the sign-in is refused. The client secret is\n" +
			"read from --client-secret-file (\"-\": standard input); without one an update keeps the stored secret.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.SSOSettings{}
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				dec := json.NewDecoder(strings.NewReader(string(b)))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&in); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) {
					*dst = v
				}
			}
			set("preset", &in.Preset, s.Preset)
			set("issuer", &in.Issuer, s.Issuer)
			set("discovery-url", &in.DiscoveryURL, s.DiscoveryURL)
			set("entra-tenant", &in.EntraTenant, s.EntraTenant)
			set("client-id", &in.ClientID, s.ClientID)
			set("redirect-url", &in.RedirectURL, s.RedirectURL)
			set("default-role", &in.DefaultRole, s.DefaultRole)
			if f.Changed("jit") {
				in.JIT = s.JIT
			}
			if f.Changed("allowed-tenant") {
				in.AllowedTenants = allowed
			}
			if f.Changed("scope") {
				in.Scopes = scopes
			}
			if f.Changed("trust-idp-mfa") {
				in.MFA.TrustIdP = trustMFA
			}
			if f.Changed("amr") {
				in.MFA.AMR = amr
			}
			if f.Changed("acr") {
				in.MFA.ACR = acr
			}
			if f.Changed("map") {
				in.Mappings = nil
				for _, m := range maps {
					mp, err := parseMapping(m)
					if err != nil {
						return err
					}
					in.Mappings = append(in.Mappings, mp)
				}
			}
			if secretFile != "" {
				sec, err := readSecret(secretFile, cmd.InOrStdin())
				if err != nil {
					return err
				}
				in.ClientSecret = sec
			}
			cfg, err := cl.api.ConfigureSSO(cmd.Context(), args[0], in)
			if err != nil {
				return err
			}
			return printSSO(e, cl, cfg)
		},
	}
	cf := configure.Flags()
	cf.StringVar(&file, "file", "", "the settings as JSON (flags beside it replace its fields)")
	cf.StringVar(&s.Preset, "preset", "", "google or entra")
	cf.StringVar(&s.Issuer, "issuer", "", "the provider's issuer URL (may hold {tenantid}: a template, with --discovery-url and --allowed-tenant)")
	cf.StringVar(&s.DiscoveryURL, "discovery-url", "", "where the discovery document is, when not below the issuer")
	cf.StringVar(&s.EntraTenant, "entra-tenant", "", "entra: the directory's tenant id, or organizations or common (a multi-tenant application)")
	cf.StringSliceVar(&allowed, "allowed-tenant", nil, "a directory (tid) a templated issuer accepts (repeat or comma-separate)")
	cf.StringVar(&s.ClientID, "client-id", "", "the client id registered at the provider")
	cf.StringVar(&secretFile, "client-secret-file", "", `a file holding the client secret ("-": standard input)`)
	cf.StringVar(&s.RedirectURL, "redirect-url", "", "the callback registered at the provider, such as https://custos.example/v1/auth/oidc/callback")
	cf.StringSliceVar(&scopes, "scope", nil, "scopes besides openid (default: email, profile)")
	cf.StringArrayVar(&maps, "map", nil, "a mapping, 'CLAIM=VALUE -> ROLE [ATTR=V1,V2 ...]' (repeat; tried in order)")
	cf.StringVar(&s.DefaultRole, "default-role", "", "the role when no mapping matches (none: refused)")
	cf.BoolVar(&s.JIT, "jit", false, "create users at their first sign-in")
	cf.BoolVar(&trustMFA, "trust-idp-mfa", false, "the provider's MFA (amr/acr) satisfies the MFA rule of roles that require it")
	cf.StringSliceVar(&amr, "amr", nil, "amr values that count as MFA (default with --trust-idp-mfa: RFC 8176's second factors)")
	cf.StringSliceVar(&acr, "acr", nil, "acr values that count as MFA")

	show := &cobra.Command{
		Use: "show TENANT", Short: "Show a tenant's single sign-on (never the client secret)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cl.api.SSO(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printSSO(e, cl, cfg)
		},
	}
	test := &cobra.Command{
		Use: "test TENANT", Short: "Have the node discover the tenant's provider afresh and open the client secret (exit 1 when it fails)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := cl.api.TestSSO(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				if err := printJSON(e.stdout, res); err != nil {
					return err
				}
			} else {
				tw := table(e.stdout)
				row := func(k, v string) {
					if v != "" {
						fmt.Fprintf(tw, "%s\t%s\n", k, v)
					}
				}
				row("ok", fmt.Sprint(res.OK))
				row("error", res.Error)
				row("issuer", res.Issuer)
				row("authorization", res.AuthorizationEndpoint)
				row("token", res.TokenEndpoint)
				row("userinfo", res.UserInfoEndpoint)
				row("keys", res.JWKSURI)
				row("algorithms", strings.Join(res.SigningAlgorithms, ","))
				row("client secret", res.ClientSecret)
				tw.Flush()
			}
			if !res.OK {
				return fmt.Errorf("the single sign-on of %s does not work: %s", args[0], res.Error)
			}
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove TENANT", Short: "Remove a tenant's single sign-on (sessions already started go on)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.api.DeleteSSO(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "single sign-on of %s removed\n", args[0])
			return nil
		},
	}
	sc.AddCommand(configure, show, test, remove)
	return sc
}

func printSSO(e *env, cl *clientFlags, cfg client.SSOConfig) error {
	if cl.format == "json" {
		return printJSON(e.stdout, cfg)
	}
	tw := table(e.stdout)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("preset", cfg.Preset)
	row("issuer", cfg.Issuer)
	row("discovery url", cfg.DiscoveryURL)
	row("allowed tenants", strings.Join(cfg.AllowedTenants, ","))
	row("client id", cfg.ClientID)
	row("client secret", map[bool]string{true: "set (sealed)", false: "none"}[cfg.SecretSet])
	row("redirect url", cfg.RedirectURL)
	row("scopes", strings.Join(append([]string{"openid"}, cfg.Scopes...), " "))
	for i, m := range cfg.Mappings {
		row(fmt.Sprintf("mapping %d", i+1), m.Claim+"="+m.Value+" -> "+m.Role+formatScopes(m.Scopes))
	}
	row("default role", cfg.DefaultRole)
	row("just-in-time users", fmt.Sprint(cfg.JIT))
	mfa := "not trusted"
	if cfg.MFA.TrustIdP {
		mfa = "trusted: amr " + strings.Join(cfg.MFA.AMR, ",")
		if len(cfg.MFA.ACR) > 0 {
			mfa += "; acr " + strings.Join(cfg.MFA.ACR, ",")
		}
	}
	row("provider MFA", mfa)
	row("updated", cfg.UpdatedAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}
