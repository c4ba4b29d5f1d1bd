package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// env is the process environment, passed explicitly.
type env struct {
	stdout, stderr io.Writer
	environ        []string
}

func (e *env) get(key string) string {
	for _, kv := range e.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func newRoot(stdout, stderr io.Writer, environ []string) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr, environ: environ}
	root := &cobra.Command{
		Use:           "custos",
		Short:         "Custos: a self-hosted privacy and trust appliance",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	cl := &clientFlags{}
	cl.register(root, e)
	root.AddCommand(
		newServerCmd(e),
		newOperatorCmd(e, cl),
		newTenantCmd(e, cl),
		newKeyringCmd(e, cl),
		newAuditCmd(e, cl),
		newAPIKeyCmd(e, cl),
		newBreakGlassCmd(e, cl),
		newCollectionCmd(e, cl),
		newRecordCmd(e, cl),
		newBlobCmd(e, cl),
		newConsentCmd(e, cl),
		newStatusCmd(e, cl),
		newSSOCmd(e, cl),
		newLoginCmd(e, cl),
		newLogoutCmd(e, cl),
		newWhoamiCmd(e, cl),
		newMFACmd(e, cl),
		newUserCmd(e, cl),
		newRoleCmd(e, cl),
		newDSRCmd(e, cl),
		newDocsCmd(e),
	)
	return root
}
