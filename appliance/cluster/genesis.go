package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Genesis is what the first node writes into the replicated state at its
// first start. It holds no secret in the clear: hashes of the tokens, and
// the audit signing key encrypted to the seal recipients. Its JSON form is
// the node's bootstrap file.
type Genesis struct {
	OperatorTokenHash string   `json:"operator_token_sha256"`
	JoinTokenHash     string   `json:"join_token_sha256"`
	SealRecipients    []string `json:"seal_recipients"`
	AuditVerifierKey  string   `json:"audit_verifier_key"`
	AuditSigningKey   []byte   `json:"audit_signing_key"` // age-encrypted to the seal recipients
	// BackupRecipients are the age recipients backups are encrypted to
	// (`operator init --backup-recipient`); none: set them later.
	BackupRecipients []string `json:"backup_recipients,omitempty"`
}

// NewGenesis makes the genesis of a cluster in region whose secrets are
// operatorToken and joinToken and whose tenant roots are encrypted to
// sealRecipients. It makes the audit checkpoint key pair (named after the
// region); only nodes that hold a seal identity can use its signing half.
func NewGenesis(region, operatorToken, joinToken string, sealRecipients []string) (Genesis, error) {
	if _, err := keyring.BootstrapOps(sealRecipients); err != nil {
		return Genesis{}, fmt.Errorf("cluster: genesis: %w", err)
	}
	keyName, err := audit.KeyName(region)
	if err != nil {
		return Genesis{}, fmt.Errorf("cluster: genesis: %w", err)
	}
	skey, vkey, err := audit.NewKeys(keyName)
	if err != nil {
		return Genesis{}, fmt.Errorf("cluster: genesis: %w", err)
	}
	encSKey, err := keyring.EncryptToRecipients(sealRecipients, []byte(skey))
	if err != nil {
		return Genesis{}, fmt.Errorf("cluster: genesis: %w", err)
	}
	return Genesis{
		OperatorTokenHash: raftstore.TokenHash(operatorToken),
		JoinTokenHash:     raftstore.TokenHash(joinToken),
		SealRecipients:    sealRecipients,
		AuditVerifierKey:  vkey,
		AuditSigningKey:   encSKey,
	}, nil
}

// record is the cluster record.
type record struct {
	Region        string `json:"region"`
	InitializedAt string `json:"initialized_at"`
	FirstNode     string `json:"first_node"`
}

// Bootstrap writes g, and the cluster record of a cluster in region whose
// first node is nodeID, in one transaction that applies only if the
// cluster has no record yet. It reports whether it wrote: false when the
// cluster was bootstrapped already (the first node restarted before it
// removed its bootstrap file). The store should have a leader.
func (s *Service) Bootstrap(ctx context.Context, g Genesis, region, nodeID string) (bool, error) {
	store, err := s.storeOf()
	if err != nil {
		return false, err
	}
	if g.AuditVerifierKey == "" {
		return false, ErrNoAuditKey
	}
	sealOps, err := keyring.BootstrapOps(g.SealRecipients)
	if err != nil {
		return false, fmt.Errorf("cluster: bootstrap: %w", err)
	}
	now := s.now().UTC()
	rec, err := json.Marshal(record{Region: region, InitializedAt: now.Format(time.RFC3339Nano), FirstNode: nodeID})
	if err != nil {
		return false, fmt.Errorf("cluster: bootstrap: %w", err)
	}
	ops := []raftstore.Op{
		{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyCluster, Value: rec},
		{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyOperatorToken, Value: []byte(g.OperatorTokenHash)},
		{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyJoinToken, Value: []byte(g.JoinTokenHash)},
	}
	ops = append(ops, sealOps...)
	ops = append(ops, audit.BootstrapOps(g.AuditVerifierKey, g.AuditSigningKey)...)
	if len(g.BackupRecipients) > 0 {
		op, err := backupRecipientsOp(g.BackupRecipients)
		if err != nil {
			return false, fmt.Errorf("cluster: bootstrap: %w", err)
		}
		ops = append(ops, op)
	}
	initEntry, err := audit.Record(tenancy.SystemChain, audit.Entry{
		Time: now, Actor: audit.Actor{Type: audit.ActorOperator, ID: "operator"},
		Action: "cluster.init", Target: "node:" + nodeID, Outcome: audit.OutcomeSuccess,
		Details: map[string]string{"region": region},
	})
	if err != nil {
		return false, fmt.Errorf("cluster: bootstrap: %w", err)
	}
	res, err := store.Apply(ctx, &raftstore.Txn{
		Conds:   []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: bucketSys, Key: keyCluster}},
		Ops:     ops,
		Appends: []raftstore.Append{initEntry},
	})
	if err != nil {
		return false, fmt.Errorf("cluster: bootstrap: write cluster record: %w", err)
	}
	return res.Applied, nil
}
