package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Stand-ins for the audit package in keyring's tests: keyring imports
// nothing of the appliance, and neither do its tests. They are exported
// (in test builds only) for the external tests of package keyring_test.

// FakeAuditor records an operation as a JSON object with its time, actor,
// action and target, so a test can find an entry in the tenant's chain.
type FakeAuditor struct{ Type, ID, RequestID string }

// AuditEntry implements Auditor.
func (a FakeAuditor) AuditEntry(at time.Time, action, target string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"time": at, "actor": map[string]string{"type": a.Type, "id": a.ID},
		"action": action, "target": target, "request_id": a.RequestID,
	})
}

// FakePseudonym is a keyed hash of value, as audit.Pseudonym is.
func FakePseudonym(key []byte, kind, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind + "\x00" + value))
	return kind + ":h:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// NewTestHierarchy is NewHierarchy over store with the stand-ins.
func NewTestHierarchy(store tenancy.Store, o HierarchyOptions) *Hierarchy {
	o.System = FakeAuditor{Type: "system", ID: "system"}
	o.Pseudonym = FakePseudonym
	return NewHierarchy(tenancy.New(store), o)
}

// Callers of key operations in the tests.
var (
	opCaller  = FakeAuditor{Type: "operator", ID: "op", RequestID: "req-1"}
	dpoCaller = FakeAuditor{Type: "user", ID: "dpo"}
)

// rawPut is a write past the boundary, for tests that tamper with raw
// storage or fill it.
func rawPut(bucket [][]byte, key string, value []byte) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: bucket, Key: []byte(key), Value: value}
}
