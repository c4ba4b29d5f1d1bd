package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
)

func blobsPath(tenant string) string { return "/v1/tenants/" + pathEscape(tenant) + "/blobs" }

type blobJSON struct {
	ID          string `json:"id"`
	Subject     string `json:"subject"`
	Collection  string `json:"collection"`
	Record      string `json:"record"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	CreatedAt   string `json:"created_at"`
}

func printBlobs(w io.Writer, list []blobJSON) {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tSUBJECT\tTYPE\tSIZE\tSHA256\tCREATED")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.16s…\t%s\n", b.ID, b.Subject, b.ContentType, b.Size, b.SHA256, b.CreatedAt)
	}
	tw.Flush()
}

func newBlobCmd(e *env, cl *clientFlags) *cobra.Command {
	bc := &cobra.Command{Use: "blob", Short: "A tenant's blobs: recordings and documents (streamed, encrypted, audited)"}
	var subject, collection, record, contentType string
	upload := &cobra.Command{
		Use:   "upload TENANT FILE [--subject S] [--record COLLECTION/ID] [--type MEDIA/TYPE]",
		Short: "Stream FILE into a new blob (its SHA-256 is checked by the server)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			// The server checks what it received against this digest.
			h := sha256.New()
			size, err := io.Copy(h, f)
			if err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			if contentType == "" {
				if contentType = mime.TypeByExtension(filepath.Ext(args[1])); contentType == "" {
					contentType = "application/octet-stream"
				}
			}
			q := url.Values{}
			if subject != "" {
				q.Set("subject", subject)
			}
			if collection != "" || record != "" {
				q.Set("collection", collection)
				q.Set("record", record)
			}
			path := blobsPath(args[0])
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			// A streamed upload has no overall timeout (ctx's only).
			var body io.Reader = f
			if size == 0 {
				body = http.NoBody // else net/http would send it chunked
			}
			req, err := http.NewRequestWithContext(cmd.Context(), "POST", cl.addr+path, body)
			if err != nil {
				return err
			}
			req.ContentLength = size
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("Custos-Content-SHA256", hex.EncodeToString(h.Sum(nil)))
			req.Header.Set("Accept", "application/json")
			if cl.token != "" {
				req.Header.Set("Authorization", "Bearer "+cl.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("cannot reach %s: %v", cl.addr, unwrapURL(err))
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusCreated {
				return answerError("POST", path, resp.StatusCode, data)
			}
			var b blobJSON
			if err := json.Unmarshal(data, &b); err != nil {
				return fmt.Errorf("decode answer: %w", err)
			}
			if cl.format == "json" {
				return printJSON(e.stdout, b)
			}
			printBlobs(e.stdout, []blobJSON{b})
			return nil
		},
	}
	upload.Flags().StringVar(&subject, "subject", "", "the subject the blob belongs to (its key encrypts it)")
	upload.Flags().StringVar(&collection, "collection", "", "with --record: the record's collection")
	upload.Flags().StringVar(&record, "record", "", "the record the blob belongs to")
	upload.Flags().StringVar(&contentType, "type", "", "media type (default: from the file name)")

	var out string
	download := &cobra.Command{
		Use: "download TENANT ID --out FILE", Short: "Stream a blob into FILE (- for standard output)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := blobsPath(args[0]) + "/" + pathEscape(args[1])
			if out == "-" {
				return cl.download(cmd.Context(), path, e.stdout)
			}
			tmp := out + ".part"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if err := cl.download(cmd.Context(), path, f); err != nil {
				f.Close()
				os.Remove(tmp)
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Blob %s written to %s.\n", args[1], out)
			return nil
		},
	}
	download.Flags().StringVar(&out, "out", "", "where to write the blob (- for standard output)")
	_ = download.MarkFlagRequired("out")

	stat := &cobra.Command{
		Use: "stat TENANT ID", Short: "A blob's metadata (not audited: no content)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b blobJSON
			if err := cl.do(cmd.Context(), "GET", blobsPath(args[0])+"/"+pathEscape(args[1])+"/metadata", nil, &b); err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, b)
			}
			printBlobs(e.stdout, []blobJSON{b})
			return nil
		},
	}
	var listSubject string
	var limit int
	list := &cobra.Command{
		Use: "list TENANT [--subject S]", Short: "List blobs (all pages)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []blobJSON
			after := ""
			for {
				q := url.Values{"limit": {strconv.Itoa(limit)}}
				if listSubject != "" {
					q.Set("subject", listSubject)
				}
				if after != "" {
					q.Set("after", after)
				}
				var page struct {
					Blobs []blobJSON `json:"blobs"`
					Next  string     `json:"next"`
				}
				if err := cl.do(cmd.Context(), "GET", blobsPath(args[0])+"?"+q.Encode(), nil, &page); err != nil {
					return err
				}
				all = append(all, page.Blobs...)
				if after = page.Next; after == "" {
					break
				}
			}
			if cl.format == "json" {
				return printJSON(e.stdout, all)
			}
			printBlobs(e.stdout, all)
			return nil
		},
	}
	list.Flags().StringVar(&listSubject, "subject", "", "only this subject's blobs")
	list.Flags().IntVar(&limit, "limit", 100, "page size (1-500)")
	del := &cobra.Command{
		Use: "delete TENANT ID", Short: "Delete a blob", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.do(cmd.Context(), "DELETE", blobsPath(args[0])+"/"+pathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Blob %s deleted.\n", args[1])
			return nil
		},
	}
	bc.AddCommand(upload, download, stat, list, del)
	return bc
}
