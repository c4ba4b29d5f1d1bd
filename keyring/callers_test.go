package keyring

import "github.com/custos/custos/appliance/audit"

// Callers of key operations in the tests.
var (
	opCaller  = audit.Caller{Actor: audit.Actor{Type: audit.ActorOperator, ID: "op"}, RequestID: "req-1"}
	dpoCaller = audit.Caller{Actor: audit.Actor{Type: audit.ActorUser, ID: "dpo"}}
)
