package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// callbackPath is where the CLI's loopback listener takes the provider's
// redirect.
const callbackPath = "/oidc/callback"

// redirect is what the provider sent the browser back with.
type redirect struct{ state, code, err string }

func newLoginCmd(e *env, cl *clientFlags) *cobra.Command {
	var method, tenant, listen string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "login --method oidc --tenant TENANT",
		Short: "Sign in and keep the session's tokens in the user's configuration directory (mode 0600)",
		Long: "Sign in as a person of a tenant. --method oidc signs in at the tenant's identity provider, as\n" +
			"`vault login -method=oidc` does: the CLI listens on a loopback address (127.0.0.1, a random port),\n" +
			"prints the provider's URL to open in a browser, and takes the provider's redirect back. The\n" +
			"session's tokens are kept for the API address (CUSTOS_CONFIG_DIR, else the user's configuration\n" +
			"directory); later commands send them unless --token or CUSTOS_TOKEN is given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if method != "oidc" {
				return fmt.Errorf("--method %q: the methods are oidc", method)
			}
			if tenant == "" {
				return errors.New("--tenant is required")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			g, err := loginOIDC(ctx, e, cl.api, tenant, listen)
			if err != nil {
				return err
			}
			c := credentials{Address: cl.api.Address(), Tenant: tenant, Method: method, Session: g.Session, AccessToken: g.AccessToken,
				RefreshToken: g.RefreshToken, ExpiresAt: time.Now().Add(time.Duration(g.ExpiresIn) * time.Second).UTC()}
			path, err := saveCredentials(e, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Signed in to tenant %s (session %s); credentials saved in %s\n", tenant, g.Session, path)
			if g.MFAEnrolmentRequired {
				fmt.Fprintln(e.stdout, "Your role requires MFA: this session may only enrol a second factor.")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&method, "method", "", "how to sign in: oidc (the tenant's identity provider)")
	f.StringVar(&tenant, "tenant", "", "the tenant to sign in to")
	f.StringVar(&listen, "listen", "127.0.0.1:0", "the loopback address that takes the provider's redirect")
	f.DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the sign-in in the browser")
	return cmd
}

// loginOIDC runs the sign-in: a loopback listener, the start (which names
// it as the redirect), the URL printed for the person, the provider's
// redirect taken once with the sign-in's state, and the callback relayed
// with the binding the start gave.
func loginOIDC(ctx context.Context, e *env, api *client.Client, tenant, listen string) (client.Grant, error) {
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return client.Grant{}, fmt.Errorf("--listen %q: must be a loopback IP address and port, such as 127.0.0.1:0", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return client.Grant{}, fmt.Errorf("listen for the provider's redirect: %w", err)
	}
	defer ln.Close()
	redirectURI := "http://" + ln.Addr().String() + callbackPath
	st, err := api.StartSSO(ctx, tenant, redirectURI)
	if err != nil {
		return client.Grant{}, err
	}
	got := make(chan redirect, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != callbackPath || q.Get("state") != st.State {
			// Not the provider's redirect of this sign-in: someone
			// else on the machine, or a stale tab. Keep waiting.
			http.Error(w, "This is not the sign-in Custos is waiting for.", http.StatusBadRequest)
			return
		}
		select {
		case got <- redirect{state: q.Get("state"), code: q.Get("code"), err: q.Get("error")}:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "Custos received the sign-in. You can close this window and return to the terminal.")
		default:
			http.Error(w, "This sign-in was already received.", http.StatusConflict)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(e.stderr, "Complete the sign-in in your browser:\n\n    %s\n\nWaiting for the provider's redirect to %s ...\n", st.AuthURL, redirectURI)
	var rd redirect
	select {
	case rd = <-got:
	case <-ctx.Done():
		return client.Grant{}, fmt.Errorf("no sign-in within the time allowed (--wait): %w", ctx.Err())
	}
	return api.CompleteSSO(ctx, client.SSOCallback{State: rd.state, Code: rd.code, Binding: st.Binding, Error: rd.err})
}
