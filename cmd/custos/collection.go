package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

type collectionJSON struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	Fields  []struct {
		Name           string `json:"name"`
		Type           string `json:"type"`
		Required       bool   `json:"required"`
		Classification string `json:"classification"`
		Index          bool   `json:"index"`
	} `json:"fields"`
	RetentionDays   int  `json:"retention_days"`
	SubjectRequired bool `json:"subject_required"`
}

func printCollection(e *env, c collectionJSON) {
	fmt.Fprintf(e.stdout, "%s (version %d, retention %d days, subject required: %v)\n", c.Name, c.Version, c.RetentionDays, c.SubjectRequired)
	tw := table(e.stdout)
	fmt.Fprintln(tw, "FIELD\tTYPE\tREQUIRED\tCLASS\tINDEX")
	for _, f := range c.Fields {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%v\n", f.Name, f.Type, f.Required, f.Classification, f.Index)
	}
	tw.Flush()
}

func newCollectionCmd(e *env, cl *clientFlags) *cobra.Command {
	cc := &cobra.Command{Use: "collection", Short: "A tenant's collection schemas"}
	var file string
	put := &cobra.Command{
		Use: "put TENANT NAME --file SCHEMA.json", Short: "Define a collection, or change it (a new version)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("collection put needs --file (a JSON schema: fields, retention_days, subject_required)")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var body map[string]any
			if err := json.Unmarshal(b, &body); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			var c collectionJSON
			if err := cl.do(cmd.Context(), "PUT", "/v1/tenants/"+pathEscape(args[0])+"/collections/"+pathEscape(args[1]), body, &c); err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, c)
			}
			printCollection(e, c)
			return nil
		},
	}
	put.Flags().StringVar(&file, "file", "", "the schema (JSON)")
	get := &cobra.Command{
		Use: "get TENANT NAME", Short: "Show a collection's schema", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c collectionJSON
			if err := cl.do(cmd.Context(), "GET", "/v1/tenants/"+pathEscape(args[0])+"/collections/"+pathEscape(args[1]), nil, &c); err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, c)
			}
			printCollection(e, c)
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list TENANT", Short: "List a tenant's collections", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Collections []collectionJSON `json:"collections"`
			}
			if err := cl.do(cmd.Context(), "GET", "/v1/tenants/"+pathEscape(args[0])+"/collections", nil, &out); err != nil {
				return err
			}
			if cl.format == "json" {
				return printJSON(e.stdout, out)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "NAME\tVERSION\tFIELDS")
			for _, c := range out.Collections {
				names := make([]string, len(c.Fields))
				for i, f := range c.Fields {
					names[i] = f.Name
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Name, c.Version, strings.Join(names, ","))
			}
			tw.Flush()
			return nil
		},
	}
	cc.AddCommand(put, get, list)
	return cc
}
