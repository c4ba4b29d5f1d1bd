package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

func printBlobs(w io.Writer, list []client.Blob) {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tSUBJECT\tTYPE\tSIZE\tSHA256\tCREATED")
	for _, b := range list {
		sum := "(withheld)" // the caller's role does not read the content
		if b.SHA256 != "" {
			sum = fmt.Sprintf("%.16s…", b.SHA256)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", b.ID, b.Subject, b.ContentType, b.Size, sum, b.CreatedAt)
	}
	tw.Flush()
}

func newBlobCmd(e *env, cl *clientFlags) *cobra.Command {
	bc := &cobra.Command{Use: "blob", Short: "A tenant's blobs: recordings and documents (streamed, encrypted, audited)"}
	var subject, collection, record, contentType, kind string
	var attributes map[string]string
	upload := &cobra.Command{
		Use:   "upload TENANT FILE [--subject S] [--record COLLECTION/ID] [--type MEDIA/TYPE] [--kind KIND] [--attribute NAME=VALUE ...]",
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
			// A streamed upload has no overall timeout (ctx's only).
			b, err := cl.api.UploadBlob(cmd.Context(), args[0], client.BlobUpload{
				Body: f, Size: size, ContentType: contentType, SHA256: h.Sum(nil),
				Subject: subject, Collection: collection, Record: record, Attributes: attributes, Kind: kind,
			})
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, b)
			}
			printBlobs(e.stdout, []client.Blob{b})
			return nil
		},
	}
	upload.Flags().StringVar(&subject, "subject", "", "the subject the blob belongs to (its key encrypts it)")
	upload.Flags().StringVar(&collection, "collection", "", "with --record: the record's collection")
	upload.Flags().StringVar(&record, "record", "", "the record the blob belongs to")
	upload.Flags().StringVar(&contentType, "type", "", "media type (default: from the file name)")
	upload.Flags().StringVar(&kind, "kind", "", "the tenant's blob kind (such as call-recording): the purposes it requires of the subject are checked")
	upload.Flags().StringToStringVar(&attributes, "attribute", nil, "an attribute of the blob, NAME=VALUE (repeatable; default: a linked record's)")

	var out string
	download := &cobra.Command{
		Use: "download TENANT ID --out FILE", Short: "Stream a blob into FILE (- for standard output)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "-" {
				return cl.api.DownloadBlob(cmd.Context(), args[0], args[1], e.stdout)
			}
			tmp := out + ".part"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if err := cl.api.DownloadBlob(cmd.Context(), args[0], args[1], f); err != nil {
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
			b, err := cl.api.BlobMetadata(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, b)
			}
			printBlobs(e.stdout, []client.Blob{b})
			return nil
		},
	}
	var listSubject string
	var limit int
	list := &cobra.Command{
		Use: "list TENANT [--subject S]", Short: "List blobs (all pages)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []client.Blob
			after := ""
			for {
				page, err := cl.api.Blobs(cmd.Context(), args[0], listSubject, limit, after)
				if err != nil {
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
			if err := cl.api.DeleteBlob(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Blob %s deleted.\n", args[1])
			return nil
		},
	}
	bc.AddCommand(upload, download, stat, list, del)
	return bc
}
