package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

// exportFlags are the choices of `custos dsr export` and `custos tenant
// export`.
type exportFlags struct {
	format, compression, from, to, out string
	quiet                              bool
}

func (f *exportFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.format, "format", "json", "records as json, csv or parquet")
	cmd.Flags().StringVar(&f.compression, "compression", "zip", "zip, or gzip (a .tar.gz)")
	cmd.Flags().StringVar(&f.from, "from", "", "only what existed or happened at or after this RFC 3339 time")
	cmd.Flags().StringVar(&f.to, "to", "", "only what existed or happened at or before this RFC 3339 time")
	cmd.Flags().StringVarP(&f.out, "out", "o", "", "the archive file to write")
	cmd.Flags().BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
}

func (f *exportFlags) options() (client.ExportOptions, error) {
	o := client.ExportOptions{Format: f.format, Compression: f.compression}
	for _, t := range []struct {
		name, v string
		dst     **time.Time
	}{{"from", f.from, &o.From}, {"to", f.to, &o.To}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return o, fmt.Errorf("--%s: not an RFC 3339 time: %q", t.name, t.v)
		}
		*t.dst = &v
	}
	if f.out == "" {
		return o, errors.New("export needs --out FILE")
	}
	return o, nil
}

// runExport builds an export with build (showing the time it takes on
// stderr), downloads it to --out (through a temporary file, its SHA-256
// checked) and prints what it holds.
func runExport(cmd *cobra.Command, e *env, cl *clientFlags, f *exportFlags, tenant string, build func(ctx context.Context, o client.ExportOptions) (client.Export, error)) error {
	o, err := f.options()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	p := newProgress(e.stderr, f.quiet)
	stop := p.ticking("building the export")
	x, err := build(ctx, o)
	stop()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.out), ".custos-export-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	w := p.counting(io.MultiWriter(tmp, h), x.Size, "downloading")
	if err := cl.api.DownloadExport(ctx, tenant, x.ID, w); err != nil {
		tmp.Close()
		return err
	}
	p.done()
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != x.SHA256 {
		return fmt.Errorf("the download's SHA-256 %s is not the export's %s", got, x.SHA256)
	}
	if err := os.Rename(tmp.Name(), f.out); err != nil {
		return err
	}
	if cl.format == "json" {
		return printJSON(e.stdout, x)
	}
	fmt.Fprintf(e.stdout, "export %s (%s, %s) written to %s: %d bytes, sha256 %s\n", x.ID, x.Format, x.Compression, f.out, x.Size, x.SHA256)
	fmt.Fprintf(e.stdout, "holds %d files: %d records, %d blobs, %d consent events, %d requests, %d audit entries\n",
		x.Counts["files"], x.Counts["records"], x.Counts["blobs"], x.Counts["consent-events"], x.Counts["requests"], x.Counts["audit-entries"])
	fmt.Fprintf(e.stdout, "downloadable again until %s; check it with: custos dsr verify-export --key audit.pub %s\n", x.ExpiresAt.Format(time.RFC3339), f.out)
	return nil
}

// progress reports a long export on stderr: a ticking line while the
// server builds it, then bytes as they download.
type progress struct {
	w     io.Writer
	quiet bool
	bar   *progressbar.ProgressBar // on a terminal
}

func newProgress(w io.Writer, quiet bool) *progress { return &progress{w: w, quiet: quiet} }

// ticking prints what and the seconds elapsed every second until the
// returned stop is called.
func (p *progress) ticking(what string) (stop func()) {
	if p.quiet {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(p.w, "\r%s: done in %s\n", what, time.Since(start).Round(time.Millisecond))
				return
			case <-t.C:
				fmt.Fprintf(p.w, "\r%s… %ds", what, int(time.Since(start).Seconds()))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// counting wraps w to print the bytes written of total.
func (p *progress) counting(w io.Writer, total int64, what string) io.Writer {
	if p.quiet {
		return w
	}
	if bar := newBar(p.w, total, what); bar != nil {
		p.bar = bar
		return barWriter(w, bar)
	}
	return &countingWriter{w: w, p: p, total: total, what: what}
}

func (p *progress) done() {
	if p.bar != nil {
		finishBar(p.bar)
		return
	}
	if !p.quiet {
		fmt.Fprintln(p.w)
	}
}

type countingWriter struct {
	w     io.Writer
	p     *progress
	total int64
	n     int64
	what  string
	last  time.Time
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) > 200*time.Millisecond || c.n == c.total {
		c.last = now
		fmt.Fprintf(c.p.w, "\r%s: %d of %d bytes", c.what, c.n, c.total)
	}
	return n, err
}

// untarExport unpacks a gzip'd tar export into a new temporary directory
// for verification, refusing entries a verifier could not check
// unambiguously (names that are not local slash paths, repeated names,
// anything but regular files and directories). The caller removes the
// directory.
func untarExport(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("%s: not a gzip'd tar: %w", p, err)
	}
	dir, err := os.MkdirTemp("", "custos-verify-*")
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%s: %w", p, err)
	}
	seen := map[string]bool{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir, nil
		}
		if err != nil {
			return fail(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !fs.ValidPath(name) || name == "." || strings.Contains(name, "\\") || seen[name] {
			return fail(fmt.Errorf("entry name %q is not a single local path", h.Name))
		}
		seen[name] = true
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return fail(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return fail(err)
			}
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fail(err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fail(err)
			}
		default:
			return fail(fmt.Errorf("entry %q is neither a regular file nor a directory", h.Name))
		}
	}
}
