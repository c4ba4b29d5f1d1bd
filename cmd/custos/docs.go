package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newDocsCmd is the hidden `custos docs`: what packaging generates from
// the command tree at build time (packaging/build.sh), so the man pages
// never drift from the flags. Shell completions come from cobra's own
// `custos completion`.
func newDocsCmd(e *env) *cobra.Command {
	docs := &cobra.Command{
		Use:    "docs",
		Short:  "Generate documentation from the command tree (for packaging)",
		Hidden: true,
	}
	docs.AddCommand(&cobra.Command{
		Use:   "man DIR",
		Short: "Write a man page (section 1) for every command into DIR",
		Long: "Write a man page (section 1) for every command into DIR. The pages are dated\n" +
			"SOURCE_DATE_EPOCH when it is set (reproducible builds), today otherwise.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			date := time.Now().UTC()
			if s := e.get("SOURCE_DATE_EPOCH"); s != "" {
				sec, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return fmt.Errorf("docs man: SOURCE_DATE_EPOCH %q: %w", s, err)
				}
				date = time.Unix(sec, 0).UTC()
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("docs man: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // no generation date in the pages' text
			header := &doc.GenManHeader{Title: "CUSTOS", Section: "1", Date: &date,
				Source: "Custos " + version, Manual: "Custos Manual"}
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("docs man: %w", err)
			}
			return nil
		},
	})
	return docs
}
