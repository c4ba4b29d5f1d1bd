package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

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
			out, err := cl.api.CreateRecord(cmd.Context(), args[0], args[1], body)
			if err != nil {
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
			out, err := cl.api.Record(cmd.Context(), args[0], args[1], args[2], mask)
			if err != nil {
				return err
			}
			return printJSON(e.stdout, out)
		},
	}
	get.Flags().BoolVar(&mask, "mask", false, "mask pii and sensitive values")
	del := &cobra.Command{
		Use: "delete TENANT COLLECTION ID", Short: "Delete a record", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.api.DeleteRecord(cmd.Context(), args[0], args[1], args[2]); err != nil {
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
			out, err := cl.api.FindRecords(cmd.Context(), args[0], args[1], args[2], value, limit)
			if err != nil {
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
