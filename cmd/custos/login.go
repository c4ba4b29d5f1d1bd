package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custos/custos/appliance/client"
)

// callbackPath is where the CLI's loopback listener takes the provider's
// redirect.
const callbackPath = "/oidc/callback"

// redirect is what the provider sent the browser back with.
type redirect struct{ state, code, err string }

func newLoginCmd(e *env, cl *clientFlags) *cobra.Command {
	var method, tenant, listen, username string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "login [--tenant TENANT] (--username NAME | --method oidc)",
		Short: "Sign in and keep the session's tokens in the user's configuration directory (mode 0600)",
		Long: "Sign in as a person of a tenant (--tenant), or without --tenant as one of the cluster's operator users\n" +
			"(custos operator user create; MFA is mandatory for operators: the first session may only enrol).\n" +
			"--method password (the default) asks for the password and, when\n" +
			"the account has a second factor, a code from the authenticator app (or a recovery code); it reads\n" +
			"them without echo from a terminal, or a line each from standard input.\n" +
			"--method oidc signs in at the tenant's identity provider, as\n" +
			"`vault login -method=oidc` does: the CLI listens on a loopback address (127.0.0.1, a random port),\n" +
			"prints the provider's URL to open in a browser, and takes the provider's redirect back. The\n" +
			"session's tokens are kept for the API address (CUSTOS_CONFIG_DIR, else the user's configuration\n" +
			"directory); later commands send them unless --token or CUSTOS_TOKEN is given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" && method == "oidc" {
				return errors.New("--tenant is required with --method oidc (single sign-on is a tenant's)")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			var g client.Grant
			var err error
			switch method {
			case "password":
				if username == "" {
					return errors.New("--username is required")
				}
				g, err = loginPassword(ctx, newPrompter(cmd, e), cl.api, tenant, username)
			case "oidc":
				g, err = loginOIDC(ctx, e, cl.api, tenant, listen)
			default:
				return fmt.Errorf("--method %q: the methods are password and oidc", method)
			}
			if err != nil {
				return err
			}
			c := credentials{Address: cl.api.Address(), Tenant: tenant, Method: method, Session: g.Session, AccessToken: g.AccessToken,
				RefreshToken: g.RefreshToken, ExpiresAt: time.Now().Add(time.Duration(g.ExpiresIn) * time.Second).UTC()}
			path, err := saveCredentials(e, c)
			if err != nil {
				return err
			}
			if tenant == "" {
				fmt.Fprintf(e.stdout, "Signed in as an operator (session %s); credentials saved in %s\n", g.Session, path)
			} else {
				fmt.Fprintf(e.stdout, "Signed in to tenant %s (session %s); credentials saved in %s\n", tenant, g.Session, path)
			}
			if g.MFAEnrolmentRequired {
				fmt.Fprintln(e.stdout, "Your role requires MFA: this session may only enrol a second factor (custos mfa enrol, then custos mfa confirm CODE).")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&method, "method", "password", "how to sign in: password (and a TOTP code when the account has one) or oidc (the tenant's identity provider)")
	f.StringVar(&username, "username", "", "your username (--method password)")
	f.StringVar(&tenant, "tenant", "", "the tenant to sign in to (none: an operator user signs in)")
	f.StringVar(&listen, "listen", "127.0.0.1:0", "the loopback address that takes the provider's redirect")
	f.DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the sign-in in the browser")
	return cmd
}

// loginPassword logs in with a password, and a code when the account has
// a second factor (the server answers mfa-required without one).
func loginPassword(ctx context.Context, p *prompter, api *client.Client, tenant, username string) (client.Grant, error) {
	pw, err := p.secret("password: ")
	if err != nil {
		return client.Grant{}, err
	}
	in := client.Login{Tenant: tenant, Username: username, Password: pw}
	g, err := api.Login(ctx, in)
	if problem(err) == "mfa-required" {
		if in.Code, err = p.secret("code (authenticator app, or a recovery code): "); err != nil {
			return client.Grant{}, err
		}
		g, err = api.Login(ctx, in)
	}
	return g, err
}

// sessionToken is the access token of the session `custos login` kept for
// addr ("" when there is none), refreshed (and the session saved) when it
// has expired or is about to.
func sessionToken(ctx context.Context, e *env, addr string, o client.Options) (string, error) {
	creds, ok, err := loadCredentials(e)
	if err != nil || !ok {
		return "", err
	}
	api := client.New(addr, o)
	if api.Address() != creds.Address {
		return "", nil
	}
	if time.Until(creds.ExpiresAt) > 30*time.Second || creds.RefreshToken == "" {
		return creds.AccessToken, nil
	}
	g, err := api.Refresh(ctx, creds.RefreshToken)
	if err != nil {
		return "", fmt.Errorf("the stored session has expired and could not be refreshed (log in again): %w", err)
	}
	creds.AccessToken, creds.RefreshToken = g.AccessToken, g.RefreshToken
	creds.ExpiresAt = time.Now().Add(time.Duration(g.ExpiresIn) * time.Second).UTC()
	if _, err := saveCredentials(e, creds); err != nil {
		return "", err
	}
	return creds.AccessToken, nil
}

// prompter reads what a person types: without echo from a terminal, a
// line at a time from anything else (a pipe in scripts and tests).
type prompter struct {
	in  io.Reader
	out io.Writer
	r   *bufio.Reader
}

func newPrompter(cmd *cobra.Command, e *env) *prompter {
	return &prompter{in: cmd.InOrStdin(), out: e.stderr}
}

func (p *prompter) secret(label string) (string, error) {
	fmt.Fprint(p.out, label)
	if f, ok := p.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(p.out)
		return string(b), err
	}
	if p.r == nil {
		p.r = bufio.NewReader(p.in)
	}
	line, err := p.r.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(strings.TrimSpace(label), ":"), err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// problem is the slug of err's problem, "" for other errors.
func problem(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Problem != nil {
		return ce.Problem.Slug()
	}
	return ""
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

func newLogoutCmd(e *env, cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "logout", Short: "End the stored session (on every node) and forget it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, ok, err := loadCredentials(e)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintln(e.stdout, "not logged in")
				return nil
			}
			// The session's own address: its token goes to no other.
			err = client.New(creds.Address, cl.options(creds.AccessToken)).Logout(cmd.Context())
			if err != nil && problem(err) != "unauthorized" { // an ended session is logged out already
				return err
			}
			if err := removeCredentials(e); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "logged out")
			return nil
		},
	}
}

func newMFACmd(e *env, cl *clientFlags) *cobra.Command {
	mc := &cobra.Command{Use: "mfa", Short: "Your second factor (TOTP)"}
	var qr string
	enrol := &cobra.Command{
		Use: "enrol [--qr FILE.png]", Short: "Start a TOTP enrolment: prints the otpauth URI to add to an authenticator app", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			en, err := cl.api.EnrolMFA(cmd.Context())
			if err != nil {
				return err
			}
			if qr != "" {
				if err := os.WriteFile(qr, en.QR, 0o600); err != nil {
					return fmt.Errorf("write the QR code: %w", err)
				}
			}
			if cl.format == "json" {
				return printJSON(e.stdout, map[string]string{"otpauth_uri": en.URI, "qr_png": base64.StdEncoding.EncodeToString(en.QR)})
			}
			fmt.Fprintln(e.stdout, en.URI)
			fmt.Fprintln(e.stderr, "add it to your authenticator app (it holds the secret: show it to nobody), then run `custos mfa confirm CODE`")
			return nil
		},
	}
	enrol.Flags().StringVar(&qr, "qr", "", "also write the QR code (PNG) to this file")
	confirm := &cobra.Command{
		Use: "confirm CODE", Short: "Complete the enrolment with a code from the app; prints the 10 recovery codes (once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			codes, err := cl.api.ConfirmMFA(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, map[string][]string{"recovery_codes": codes})
			}
			fmt.Fprintln(e.stderr, "recovery codes (each works once; keep them somewhere safe — they are not shown again):")
			for _, c := range codes {
				fmt.Fprintln(e.stdout, c)
			}
			return nil
		},
	}
	mc.AddCommand(enrol, confirm)
	return mc
}

func newWhoamiCmd(e *env, cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "whoami", Short: "Who the session is now: user, tenant, current role and scopes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := cl.api.Session(cmd.Context())
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, s)
			}
			of := s.Tenant
			if of == "" {
				of = "the cluster"
			}
			fmt.Fprintf(e.stdout, "%s %s of %s, role %s, session %s\n", s.Kind, s.ID, of, s.Role, s.Session)
			if s.MFAEnrolmentRequired {
				fmt.Fprintln(e.stdout, "this session may only enrol a second factor (custos mfa enrol)")
			}
			return nil
		},
	}
}
