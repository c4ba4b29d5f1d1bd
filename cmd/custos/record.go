package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"
)

func recordsPath(tenant, collection string) string {
	return "/v1/tenants/" + pathEscape(tenant) + "/collections/" + pathEscape(collection) + "/records"
}

func newRecordCmd(e *env, cl *clientFlags) *cobra.Command {
	rc := &cobra.Command{Use: "record", Short: "A tenant's records (encrypted, audited)"}
	var file string
	create := &cobra.Command{
		Use: "create TENANT COLLECTION --file RECORD.json", Short: "Create a record ({id?, subject?, attributes?, fields})", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var body map[string]any
			if err := json.Unmarshal(b, &body); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			var out map[string]any
			if err := cl.do(cmd.Context(), "POST", recordsPath(args[0], args[1]), body, &out); err != nil {
				return err
			}
			return printJSON(e.stdout, out)
		},
	}
	create.Flags().StringVar(&file, "file", "", "the record (JSON)")
	var mask bool
	get := &cobra.Command{
		Use: "get TENANT COLLECTION ID", Short: "Read a record (decrypted; --mask masks personal fields)", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			path := recordsPath(args[0], args[1]) + "/" + pathEscape(args[2])
			if mask {
				path += "?mask=true"
			}
			if err := cl.do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			return printJSON(e.stdout, out)
		},
	}
	get.Flags().BoolVar(&mask, "mask", false, "mask pii and sensitive values")
	del := &cobra.Command{
		Use: "delete TENANT COLLECTION ID", Short: "Delete a record", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.do(cmd.Context(), "DELETE", recordsPath(args[0], args[1])+"/"+pathEscape(args[2]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Record %s deleted.\n", args[2])
			return nil
		},
	}
	var limit int
	find := &cobra.Command{
		Use: "find TENANT COLLECTION FIELD VALUE", Short: "Ids of records whose blind-indexed FIELD equals VALUE (JSON, or a plain string)", Args: cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := args[3]
			if !json.Valid([]byte(value)) {
				b, _ := json.Marshal(value)
				value = string(b)
			}
			q := url.Values{"field": {args[2]}, "value": {value}, "limit": {strconv.Itoa(limit)}}
			var out struct {
				IDs  []string `json:"ids"`
				Next string   `json:"next"`
			}
			if err := cl.do(cmd.Context(), "GET", recordsPath(args[0], args[1])+"?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, out)
			}
			for _, id := range out.IDs {
				fmt.Fprintln(e.stdout, id)
			}
			return nil
		},
	}
	find.Flags().IntVar(&limit, "limit", 100, "at most this many ids (1..500)")
	rc.AddCommand(create, get, del, find)
	return rc
}
