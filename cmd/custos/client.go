package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// clientFlags are the API client settings shared by the CLI commands:
// flags, falling back to CUSTOS_ADDR, CUSTOS_TOKEN, CUSTOS_FORMAT and
// CUSTOS_CACERT (the CA the API's certificate chains to, as Vault's
// VAULT_CACERT), and for the token last to the session `custos login`
// kept for the address (refreshed when its access token has expired). api is the client they
// configure, made before a command runs.
type clientFlags struct {
	addr, token, format string
	caCert              string // --ca-cert / CUSTOS_CACERT
	certFile, keyFile   string // --client-cert, --client-key / CUSTOS_CLIENT_CERT, CUSTOS_CLIENT_KEY
	timeout             time.Duration
	roots               *x509.CertPool    // from caCert; nil: the system's
	certs               []tls.Certificate // from certFile and keyFile
	api                 *client.Client
}

// options are the client options of a request with token.
func (c *clientFlags) options(token string) client.Options {
	return client.Options{Token: token, Timeout: c.timeout, RootCAs: c.roots, Certificates: c.certs}
}

func (c *clientFlags) register(root *cobra.Command, e *env) {
	pf := root.PersistentFlags()
	pf.StringVar(&c.addr, "addr", "", "API address (env CUSTOS_ADDR, default "+client.DefaultAddress+")")
	pf.StringVar(&c.token, "token", "", "operator token, API key or access token (env CUSTOS_TOKEN; else the session custos login kept for this address)")
	pf.StringVar(&c.format, "format", "", "output: table or json (env CUSTOS_FORMAT)")
	pf.StringVar(&c.caCert, "ca-cert", "", "PEM file of the CA that signs the API's certificate: the cluster CA custos operator init prints (env CUSTOS_CACERT; default: the system's roots)")
	pf.StringVar(&c.certFile, "client-cert", "", "PEM client certificate for mutual TLS, for an API key bound to one (env CUSTOS_CLIENT_CERT)")
	pf.StringVar(&c.keyFile, "client-key", "", "PEM key of --client-cert (env CUSTOS_CLIENT_KEY)")
	pf.DurationVar(&c.timeout, "timeout", 30*time.Second, "request timeout")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if c.addr == "" {
			c.addr = e.get("CUSTOS_ADDR")
		}
		if c.addr == "" {
			c.addr = client.DefaultAddress
		}
		if c.caCert == "" {
			c.caCert = e.get("CUSTOS_CACERT")
		}
		if c.caCert != "" {
			roots, err := client.LoadCACert(c.caCert)
			if err != nil {
				return err
			}
			c.roots = roots
		}
		if c.certFile == "" {
			c.certFile = e.get("CUSTOS_CLIENT_CERT")
		}
		if c.keyFile == "" {
			c.keyFile = e.get("CUSTOS_CLIENT_KEY")
		}
		if c.certFile != "" || c.keyFile != "" {
			pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
			if err != nil {
				return fmt.Errorf("--client-cert and --client-key: %w", err)
			}
			c.certs = []tls.Certificate{pair}
		}
		if c.token == "" {
			c.token = e.get("CUSTOS_TOKEN")
		}
		if c.token == "" && usesSession(cmd) {
			// A session `custos login` kept, for this address only: its
			// token goes to no other server. An expired access token is
			// refreshed first (and the session saved).
			tok, err := sessionToken(cmd.Context(), e, c.addr, c.options(""))
			if err != nil {
				fmt.Fprintf(e.stderr, "warning: %v (not used)\n", err)
			}
			c.token = tok
		}
		if c.format == "" {
			c.format = e.get("CUSTOS_FORMAT")
		}
		if c.format == "" {
			c.format = "table"
		}
		if c.format != "table" && c.format != "json" {
			return fmt.Errorf("--format must be table or json, not %q", c.format)
		}
		c.api = client.New(c.addr, c.options(c.token))
		return nil
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// printPeers prints the peers; HEARTBEAT is the leader's view of each
// follower ("-" when the answering node is not the leader, or for itself).
func printPeers(w io.Writer, peers []client.Peer) {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tADDRESS\tVOTER\tLEADER\tHEARTBEAT")
	for _, p := range peers {
		hb := p.Heartbeat
		switch {
		case hb == "":
			hb = "-"
		case !p.LastContact.IsZero():
			hb += " (last contact " + p.LastContact.UTC().Format(time.RFC3339) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\n", p.ID, p.Address, p.Voter, p.Leader, hb)
	}
	tw.Flush()
}

// usesSession reports whether cmd sends its requests with the stored
// session: every client command but login and logout (which handle the
// session themselves), the server, and the offline dsr verifiers (which
// must reach no server, not even to refresh a session).
func usesSession(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		switch c.Name() {
		case "login", "logout", "server", "verify-export", "verify-receipt":
			return false
		}
	}
	return true
}
