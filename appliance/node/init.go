package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Layout of a node's data directory.
const (
	dirTLS        = "tls"
	fileBootstrap = "bootstrap.json"
)

// bootstrapFile is written by `operator init` and consumed by the first
// start of the first node: it carries only hashes of the secrets printed to
// the operator, which the node then replicates into the cluster state.
type bootstrapFile struct {
	OperatorTokenHash string   `json:"operator_token_sha256"`
	JoinTokenHash     string   `json:"join_token_sha256"`
	SealRecipients    []string `json:"seal_recipients"`
	AuditVerifierKey  string   `json:"audit_verifier_key"`
	AuditSigningKey   []byte   `json:"audit_signing_key"` // age-encrypted to the seal recipients
}

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
}

// SealIdentityPath is where a node looks for its seal identity: the
// configured path, or seal.age in the data directory.
func SealIdentityPath(configured, dataDir string) string {
	if configured != "" {
		return configured
	}
	return filepath.Join(dataDir, "seal.age")
}

// ErrAlreadyInitialized: the data directory already holds a node identity.
var ErrAlreadyInitialized = errors.New("node already initialized")

// NewOperatorToken returns a fresh random operator token.
func NewOperatorToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "cst_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// Init prepares dataDir as the first node of a new cluster: a cluster CA,
// this node's certificate, an operator token and a join token. With a
// non-empty operatorToken that token is used (dev mode's --dev-token).
// It also creates the seal identity, or records the operator's own seal
// recipients.
func Init(dataDir, nodeID string, o InitOptions) (*Secrets, error) {
	tlsDir := filepath.Join(dataDir, dirTLS)
	if _, err := os.Stat(tlsDir); err == nil {
		return nil, fmt.Errorf("init %s: %w", dataDir, ErrAlreadyInitialized)
	}
	if _, err := keyring.BootstrapOps(o.SealRecipients); len(o.SealRecipients) > 0 && err != nil {
		return nil, fmt.Errorf("init: %w", err)
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
		if operatorToken, err = NewOperatorToken(); err != nil {
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
	// The audit checkpoint key: its private half is kept only encrypted to
	// the seal recipients, so only unsealed nodes can sign.
	keyName, err := audit.KeyName(o.Region)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	skey, vkey, err := audit.NewKeys(keyName)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	encSKey, err := keyring.EncryptToRecipients(sec.SealRecipients, []byte(skey))
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	sec.AuditKey = vkey
	b, _ := json.Marshal(bootstrapFile{
		OperatorTokenHash: raftstore.TokenHash(operatorToken),
		JoinTokenHash:     raftstore.TokenHash(join),
		SealRecipients:    sec.SealRecipients,
		AuditVerifierKey:  vkey,
		AuditSigningKey:   encSKey,
	})
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

func readBootstrap(dataDir string) (*bootstrapFile, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, fileBootstrap))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var bf bootstrapFile
	if err := json.Unmarshal(b, &bf); err != nil {
		return nil, fmt.Errorf("read %s: %w", fileBootstrap, err)
	}
	return &bf, nil
}
