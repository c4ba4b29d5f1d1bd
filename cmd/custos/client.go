package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// clientFlags are the API client settings shared by the CLI commands:
// flags, falling back to CUSTOS_ADDR, CUSTOS_TOKEN and CUSTOS_FORMAT.
type clientFlags struct {
	addr, token, format string
	timeout             time.Duration
}

func (c *clientFlags) register(root *cobra.Command, e *env) {
	pf := root.PersistentFlags()
	pf.StringVar(&c.addr, "addr", "", "API address (env CUSTOS_ADDR, default http://127.0.0.1:8200)")
	pf.StringVar(&c.token, "token", "", "operator token (env CUSTOS_TOKEN)")
	pf.StringVar(&c.format, "format", "", "output: table or json (env CUSTOS_FORMAT)")
	pf.DurationVar(&c.timeout, "timeout", 30*time.Second, "request timeout")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if c.addr == "" {
			c.addr = e.get("CUSTOS_ADDR")
		}
		if c.addr == "" {
			c.addr = "http://127.0.0.1:8200"
		}
		if !strings.Contains(c.addr, "://") {
			c.addr = "http://" + c.addr
		}
		c.addr = strings.TrimRight(c.addr, "/")
		if c.token == "" {
			c.token = e.get("CUSTOS_TOKEN")
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
		return nil
	}
}

// problem is an RFC 9457 error body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// do sends a request and decodes a JSON answer into out (if non-nil). Any
// non-2xx answer becomes a one-line error.
func (c *clientFlags) do(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, method, path, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return answerError(method, path, resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// download streams a GET answer into w (exports can be large: no
// timeout but ctx's).
func (c *clientFlags) download(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.send(ctx, "GET", path, nil, "*/*")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return answerError("GET", path, resp.StatusCode, data)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("download %s: %w", path, err)
	}
	return nil
}

func (c *clientFlags) send(ctx context.Context, method, path string, body any, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %v", c.addr, unwrapURL(err))
	}
	return resp, nil
}

// answerError is the one-line error of a non-2xx answer.
func answerError(method, path string, status int, data []byte) error {
	var p problem
	if json.Unmarshal(data, &p) == nil && p.Title != "" {
		if p.Detail != "" {
			return fmt.Errorf("%s (%d): %s", p.Title, status, p.Detail)
		}
		return fmt.Errorf("%s (%d)", p.Title, status)
	}
	return fmt.Errorf("%s %s: HTTP %d", method, path, status)
}

func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func pathEscape(s string) string { return url.PathEscape(s) }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

type peerJSON struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

func printPeers(w io.Writer, peers []peerJSON) {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tADDRESS\tVOTER\tLEADER")
	for _, p := range peers {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", p.ID, p.Address, p.Voter, p.Leader)
	}
	tw.Flush()
}
