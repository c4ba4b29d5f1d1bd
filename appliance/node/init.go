package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

var (
	// ErrNotInitialized: the data directory holds no node identity.
	ErrNotInitialized = errors.New("node not initialized: run `custos operator init` (first node) or `custos operator join`, or set cluster.join and cluster.join_token")
	// ErrAlreadyInitialized: the data directory already holds a node
	// identity.
	ErrAlreadyInitialized = errors.New("node already initialized")
)

// Layout of a node's data directory. The bootstrap file is written by
// `operator init` and consumed by the first start of the first node: it
// holds the cluster's genesis (cluster.Genesis: only hashes of the secrets
// printed to the operator), which that start writes into the replicated
// state.
const (
	dirTLS        = "tls"
	fileBootstrap = "bootstrap.json"
)

// Secrets are printed once at init and never stored in the clear.
type Secrets struct {
	OperatorToken string
	JoinToken     string
	// SealIdentity is the seal identity file Init created ("" when the
	// operator brought their own recipients); SealRecipients are what
	// tenant roots are encrypted to.
	SealIdentity   string
	SealRecipients []string
	// AuditKey is the public key of the audit checkpoints (what auditors
	// verify bundles with).
	AuditKey string
}

// InitOptions are the choices of `operator init`.
type InitOptions struct {
	// OperatorToken is used instead of a random one (dev mode's
	// --dev-token).
	OperatorToken string
	// SealIdentity is where the cluster's seal identity is created (mode
	// 0600). Ignored when SealRecipients is set.
	SealIdentity string
	// SealRecipients are the operator's own age recipients: tenant roots
	// are encrypted to them and no identity file is created; nodes unseal
	// with the operator's identity (keyring.seal_identity).
	SealRecipients []string
	// Region names the audit checkpoint key (custos-audit-<region>-<id>).
	Region string
	// BackupRecipients are the age recipients backups are encrypted to
	// (keys the cluster does not hold); none: set them later.
	BackupRecipients []string
}

// SealIdentityPath is where a node looks for its seal identity: the
// configured path, or seal.age in the data directory.
func SealIdentityPath(configured, dataDir string) string {
	if configured != "" {
		return configured
	}
	return filepath.Join(dataDir, "seal.age")
}

// Init prepares dataDir as the first node of a new cluster: a cluster CA,
// this node's certificate, an operator token and a join token (with
// o.OperatorToken set, that token is used: dev mode's --dev-token). It
// also creates the seal identity, or takes the operator's own seal
// recipients, and leaves the cluster's genesis in the bootstrap file.
func Init(dataDir, nodeID string, o InitOptions) (*Secrets, error) {
	tlsDir := filepath.Join(dataDir, dirTLS)
	if _, err := os.Stat(tlsDir); err == nil {
		return nil, fmt.Errorf("init %s: %w", dataDir, ErrAlreadyInitialized)
	}
	if _, err := keyring.BootstrapOps(o.SealRecipients); len(o.SealRecipients) > 0 && err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if len(o.BackupRecipients) > 0 {
		if _, err := cluster.ParseBackupRecipients(o.BackupRecipients); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	operatorToken := o.OperatorToken
	creds, err := raftstore.NewClusterCredentials(nodeID)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	join, err := raftstore.NewJoinToken(creds)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if operatorToken == "" {
		if operatorToken, err = cluster.NewOperatorToken(); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	sec := &Secrets{OperatorToken: operatorToken, JoinToken: join, SealRecipients: o.SealRecipients}
	if len(sec.SealRecipients) == 0 {
		sec.SealIdentity = SealIdentityPath(o.SealIdentity, dataDir)
		r, err := keyring.NewSealIdentity(sec.SealIdentity)
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		sec.SealRecipients = []string{r.String()}
	}
	genesis, err := cluster.NewGenesis(o.Region, operatorToken, join, sec.SealRecipients)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	sec.AuditKey = genesis.AuditVerifierKey
	genesis.BackupRecipients = o.BackupRecipients
	b, err := json.Marshal(genesis)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, fileBootstrap), b, 0o600); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := raftstore.SaveCredentials(tlsDir, creds); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return sec, nil
}

// FetchJoinCredentials performs the join handshake with a running node and
// saves this node's new certificate in dataDir. The node becomes a voter
// when it starts with cluster.join set.
func FetchJoinCredentials(ctx context.Context, dataDir, addr, token, nodeID, region string) error {
	tlsDir := filepath.Join(dataDir, dirTLS)
	if _, err := os.Stat(tlsDir); err == nil {
		return fmt.Errorf("join: %s: %w", dataDir, ErrAlreadyInitialized)
	}
	creds, err := raftstore.FetchCredentials(ctx, addr, token, nodeID, region)
	if err != nil {
		return fmt.Errorf("join via %s: %w", addr, err)
	}
	if err := raftstore.SaveCredentials(tlsDir, creds); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	return nil
}

func hasCredentials(dataDir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dataDir, dirTLS, "node.crt"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func readBootstrap(dataDir string) (*cluster.Genesis, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, fileBootstrap))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var g cluster.Genesis
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("read %s: %w", fileBootstrap, err)
	}
	return &g, nil
}

// finishBootstrap writes the cluster's genesis once this node leads, waits
// until the local state holds it, then removes the bootstrap file. It is
// idempotent across restarts.
func (n *Node) finishBootstrap(ctx context.Context, dataDir string, members *cluster.Service, g cluster.Genesis) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.store.WaitLeader(wctx); err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	wrote, err := members.Bootstrap(wctx, g, n.cfg.Region, n.cfg.NodeID)
	if err != nil {
		return fmt.Errorf("node: bootstrap from %s: %w", fileBootstrap, err)
	}
	if !wrote {
		n.logger.Info("cluster record already present")
	}
	// Tokens are checked against the local state: make it hold the
	// genesis before the API serves.
	if err := n.store.Barrier(wctx); err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	if err := os.Remove(filepath.Join(dataDir, fileBootstrap)); err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	return nil
}
