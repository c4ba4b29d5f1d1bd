package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

var (
	// ErrInvalidToken: the token is not the cluster's (or the cluster has
	// no token yet: it is not bootstrapped).
	ErrInvalidToken = errors.New("cluster: invalid token")
	// ErrNotAttached: the service has no store yet (the node is starting).
	ErrNotAttached = errors.New("cluster: the node's store is not open yet")
	// ErrNoAuditKey: a genesis without audit checkpoint keys (made by an
	// older custos).
	ErrNoAuditKey = errors.New("cluster: the genesis has no audit key (made by an older custos?)")
)

// Records in bucket ["sys"]; see the package documentation.
var (
	bucketSys        = raftstore.Path("sys")
	keyCluster       = []byte("cluster")
	keyOperatorToken = []byte("operator_token_sha256")
	keyJoinToken     = []byte("join_token_sha256")
)

// Store is the replicated store; *raftstore.Store implements it.
type Store interface {
	Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error)
	View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error
}

var _ Store = (*raftstore.Store)(nil)

// Service checks the cluster's tokens, audits its membership changes and
// bootstraps its records. It is safe for concurrent use.
type Service struct {
	store atomic.Pointer[Store]
	now   func() time.Time
}

// New returns a service with no store: see [Service.Attach].
func New() *Service { return &Service{now: time.Now} }

// Attach gives the service its store. It is called once, when the store
// is open; the checks fail with [ErrNotAttached] before.
func (s *Service) Attach(store Store) { s.store.Store(&store) }

func (s *Service) storeOf() (Store, error) {
	p := s.store.Load()
	if p == nil {
		return nil, ErrNotAttached
	}
	return *p, nil
}

// CheckOperatorToken accepts the root operator token (api.Auth). It
// reads the node's applied state, so that operators manage a node that
// knows no leader; a revocation or regeneration holds on a node as soon
// as it applies it.
func (s *Service) CheckOperatorToken(ctx context.Context, token string) error {
	return s.checkHash(ctx, keyOperatorToken, token)
}

// AuthorizeJoin accepts the join token (raftstore.Config.AuthorizeJoin).
func (s *Service) AuthorizeJoin(ctx context.Context, token string) error {
	return s.checkHash(ctx, keyJoinToken, token)
}

func (s *Service) checkHash(ctx context.Context, key []byte, token string) error {
	store, err := s.storeOf()
	if err != nil {
		return err
	}
	var hash []byte
	err = store.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
		hash, _, _ = r.Get(bucketSys, key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", key, err)
	}
	if len(hash) == 0 || token == "" || !raftstore.TokenMatches(token, string(hash)) {
		return ErrInvalidToken
	}
	return nil
}

// AuditJoin records, in the system chain, that nodeID presented a valid
// join token and is about to be given a certificate
// (raftstore.Config.BeforeJoin). An error refuses the join: fail closed.
func (s *Service) AuditJoin(ctx context.Context, nodeID string) error {
	return s.auditMembership(ctx, "cluster.join", nodeID, nil)
}

// AuditAddVoter records that nodeID is about to be made a voter at addr
// (raftstore.Config.BeforeAddVoter). An error refuses the change.
func (s *Service) AuditAddVoter(ctx context.Context, nodeID, addr string) error {
	return s.auditMembership(ctx, "cluster.add_voter", nodeID, map[string]string{"address": addr})
}

func (s *Service) auditMembership(ctx context.Context, action, nodeID string, details map[string]string) error {
	store, err := s.storeOf()
	if err != nil {
		return err
	}
	e := audit.System().Entry(s.now().UTC(), action, "node:"+nodeID, audit.OutcomeRequested, details)
	return audit.Append(ctx, store, tenancy.SystemChain, e)
}

// NewOperatorToken returns a fresh random operator token.
func NewOperatorToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cluster: operator token: %w", err)
	}
	return "cst_" + base64.RawURLEncoding.EncodeToString(b), nil
}
