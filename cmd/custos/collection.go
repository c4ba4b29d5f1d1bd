package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/custos/custos/appliance/client"
)

func printCollection(e *env, c client.Collection) {
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
			c, err := cl.api.PutCollection(cmd.Context(), args[0], args[1], body)
			if err != nil {
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
			c, err := cl.api.Collection(cmd.Context(), args[0], args[1])
			if err != nil {
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
			out, err := cl.api.Collections(cmd.Context(), args[0])
			if err != nil {
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
