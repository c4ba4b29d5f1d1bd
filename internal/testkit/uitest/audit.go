package uitest

import (
	"context"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// AppendAudit appends entries to a chain of the node's store in one
// transaction, as the services' transactions do: seeding a chain with
// entries of chosen times and actions (days past, for the charts).
func (n *Node) AppendAudit(t testing.TB, chain string, entries ...audit.Entry) {
	t.Helper()
	txn := &raftstore.Txn{}
	for _, e := range entries {
		a, err := audit.Record(chain, e)
		if err != nil {
			t.Fatalf("uitest: audit entry %+v: %v", e, err)
		}
		txn.Appends = append(txn.Appends, a)
	}
	res, err := n.N.Store().Apply(context.Background(), txn)
	if err != nil || !res.Applied || res.Err != nil {
		t.Fatalf("uitest: append to %s: %+v %v", chain, res, err)
	}
}
