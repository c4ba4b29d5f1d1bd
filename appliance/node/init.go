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
	OperatorTokenHash string `json:"operator_token_sha256"`
	JoinTokenHash     string `json:"join_token_sha256"`
}

// Secrets are printed once at init and never stored in the clear.
type Secrets struct {
	OperatorToken string
	JoinToken     string
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
func Init(dataDir, nodeID, operatorToken string) (*Secrets, error) {
	tlsDir := filepath.Join(dataDir, dirTLS)
	if _, err := os.Stat(tlsDir); err == nil {
		return nil, fmt.Errorf("init %s: %w", dataDir, ErrAlreadyInitialized)
	}
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
	b, _ := json.Marshal(bootstrapFile{
		OperatorTokenHash: raftstore.TokenHash(operatorToken),
		JoinTokenHash:     raftstore.TokenHash(join),
	})
	if err := os.WriteFile(filepath.Join(dataDir, fileBootstrap), b, 0o600); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := raftstore.SaveCredentials(tlsDir, creds); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return &Secrets{OperatorToken: operatorToken, JoinToken: join}, nil
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
