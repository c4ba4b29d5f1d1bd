package cluster_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

const (
	operatorToken = "cst_operator-token-for-tests"
	joinToken     = "custos-join.test.secret"
)

// genesis makes a genesis with the test tokens and a fresh seal recipient.
func genesis(t *testing.T, operator, join string) cluster.Genesis {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cluster.NewGenesis(storetest.Region, operator, join, []string{id.Recipient().String()})
	if err != nil {
		t.Fatalf("NewGenesis: %v", err)
	}
	return g
}

// bootstrapped is a service on a real single-node store, bootstrapped with
// the test tokens.
func bootstrapped(t *testing.T) (*cluster.Service, *raftstore.Store) {
	t.Helper()
	store := storetest.Start(t)
	s := cluster.New()
	s.Attach(store)
	wrote, err := s.Bootstrap(context.Background(), genesis(t, operatorToken, joinToken), storetest.Region, "n1")
	if err != nil || !wrote {
		t.Fatalf("Bootstrap = %v, %v; want true, nil", wrote, err)
	}
	// The checks read the local state, which may lag a write just
	// acknowledged: wait until it holds the genesis.
	if err := store.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, store
}

func systemEntries(t *testing.T, store *raftstore.Store, action string) []audit.Item {
	t.Helper()
	items, _, err := audit.New(store, nil, nil).List(context.Background(), raftstore.Linearizable, tenancy.SystemChain, audit.Filter{Action: action}, 0, 10)
	if err != nil {
		t.Fatalf("list %s entries: %v", action, err)
	}
	return items
}

func TestOperatorToken(t *testing.T) {
	s, _ := bootstrapped(t)
	ctx := context.Background()
	if err := s.CheckOperatorToken(ctx, operatorToken); err != nil {
		t.Fatalf("the operator token is refused: %v", err)
	}
	for name, tok := range map[string]string{
		"wrong token":        "cst_wrong",
		"empty token":        "",
		"join token":         joinToken,
		"token with a space": operatorToken + " ",
	} {
		if err := s.CheckOperatorToken(ctx, tok); !errors.Is(err, cluster.ErrInvalidToken) {
			t.Errorf("%s: CheckOperatorToken = %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestJoinToken(t *testing.T) {
	s, _ := bootstrapped(t)
	ctx := context.Background()
	if err := s.AuthorizeJoin(ctx, joinToken); err != nil {
		t.Fatalf("the join token is refused: %v", err)
	}
	for name, tok := range map[string]string{"wrong token": "custos-join.test.wrong", "empty token": "", "operator token": operatorToken} {
		if err := s.AuthorizeJoin(ctx, tok); !errors.Is(err, cluster.ErrInvalidToken) {
			t.Errorf("%s: AuthorizeJoin = %v, want ErrInvalidToken", name, err)
		}
	}
}

// Before bootstrap there is no token to match: everything is refused,
// including the empty token.
func TestTokensBeforeBootstrap(t *testing.T) {
	s := cluster.New()
	s.Attach(storetest.Start(t))
	ctx := context.Background()
	for _, tok := range []string{"", operatorToken} {
		if err := s.CheckOperatorToken(ctx, tok); !errors.Is(err, cluster.ErrInvalidToken) {
			t.Errorf("CheckOperatorToken(%q) = %v, want ErrInvalidToken", tok, err)
		}
		if err := s.AuthorizeJoin(ctx, tok); !errors.Is(err, cluster.ErrInvalidToken) {
			t.Errorf("AuthorizeJoin(%q) = %v, want ErrInvalidToken", tok, err)
		}
	}
}

// raftstore may call the hooks before the store is attached: they refuse.
func TestNotAttached(t *testing.T) {
	s := cluster.New()
	ctx := context.Background()
	if err := s.CheckOperatorToken(ctx, operatorToken); !errors.Is(err, cluster.ErrNotAttached) {
		t.Errorf("CheckOperatorToken = %v, want ErrNotAttached", err)
	}
	if err := s.AuthorizeJoin(ctx, joinToken); !errors.Is(err, cluster.ErrNotAttached) {
		t.Errorf("AuthorizeJoin = %v, want ErrNotAttached", err)
	}
	if err := s.AuditJoin(ctx, "n2"); !errors.Is(err, cluster.ErrNotAttached) {
		t.Errorf("AuditJoin = %v, want ErrNotAttached", err)
	}
	if _, err := s.Bootstrap(ctx, genesis(t, operatorToken, joinToken), storetest.Region, "n1"); !errors.Is(err, cluster.ErrNotAttached) {
		t.Errorf("Bootstrap = %v, want ErrNotAttached", err)
	}
}

// Bootstrap writes the cluster record, the genesis and one cluster.init
// entry, once: a second genesis (a restart before the bootstrap file was
// removed, or another one) changes nothing.
func TestBootstrapOnce(t *testing.T) {
	s, store := bootstrapped(t)
	ctx := context.Background()
	var rec struct {
		Region        string `json:"region"`
		InitializedAt string `json:"initialized_at"`
		FirstNode     string `json:"first_node"`
	}
	err := store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		v, _, ok := r.Get(raftstore.Path("sys"), []byte("cluster"))
		if !ok {
			return errors.New("no cluster record")
		}
		return json.Unmarshal(v, &rec)
	})
	if err != nil || rec.Region != storetest.Region || rec.FirstNode != "n1" || rec.InitializedAt == "" {
		t.Fatalf("cluster record %+v (%v)", rec, err)
	}
	if n := len(systemEntries(t, store, "cluster.init")); n != 1 {
		t.Fatalf("%d cluster.init entries, want 1", n)
	}

	wrote, err := s.Bootstrap(ctx, genesis(t, "cst_other", "custos-join.test.other"), storetest.Region, "n2")
	if err != nil || wrote {
		t.Fatalf("second Bootstrap = %v, %v; want false, nil", wrote, err)
	}
	if err := store.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckOperatorToken(ctx, operatorToken); err != nil {
		t.Errorf("after a second bootstrap the first operator token is refused: %v", err)
	}
	if err := s.CheckOperatorToken(ctx, "cst_other"); !errors.Is(err, cluster.ErrInvalidToken) {
		t.Errorf("the second genesis' operator token: %v, want ErrInvalidToken", err)
	}
	if n := len(systemEntries(t, store, "cluster.init")); n != 1 {
		t.Errorf("%d cluster.init entries after a second bootstrap, want 1", n)
	}
}

// A bootstrap file from before audit checkpoints is refused whole.
func TestBootstrapWithoutAuditKey(t *testing.T) {
	store := storetest.Start(t)
	s := cluster.New()
	s.Attach(store)
	g := genesis(t, operatorToken, joinToken)
	g.AuditVerifierKey, g.AuditSigningKey = "", nil
	if _, err := s.Bootstrap(context.Background(), g, storetest.Region, "n1"); !errors.Is(err, cluster.ErrNoAuditKey) {
		t.Fatalf("Bootstrap = %v, want ErrNoAuditKey", err)
	}
	if err := s.CheckOperatorToken(context.Background(), operatorToken); !errors.Is(err, cluster.ErrInvalidToken) {
		t.Errorf("a refused bootstrap wrote the operator token: %v", err)
	}
}

func TestNewGenesis(t *testing.T) {
	g := genesis(t, operatorToken, joinToken)
	if g.OperatorTokenHash != raftstore.TokenHash(operatorToken) || g.JoinTokenHash != raftstore.TokenHash(joinToken) {
		t.Errorf("token hashes %q, %q", g.OperatorTokenHash, g.JoinTokenHash)
	}
	if g.AuditVerifierKey == "" || len(g.AuditSigningKey) == 0 {
		t.Errorf("no audit key pair: %+v", g)
	}
	b, _ := json.Marshal(g)
	for _, secret := range []string{operatorToken, joinToken} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the genesis holds a secret in the clear: %s", b)
		}
	}
	if _, err := cluster.NewGenesis(storetest.Region, operatorToken, joinToken, []string{"not-a-recipient"}); err == nil {
		t.Error("NewGenesis accepted a bad seal recipient")
	}
	if _, err := cluster.NewGenesis(storetest.Region, operatorToken, joinToken, nil); err == nil {
		t.Error("NewGenesis accepted no seal recipient")
	}
}

// Membership changes are recorded in the system chain before they happen.
func TestAuditMembership(t *testing.T) {
	s, store := bootstrapped(t)
	ctx := context.Background()
	if err := s.AuditJoin(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := s.AuditAddVoter(ctx, "n2", "127.0.0.1:9999"); err != nil {
		t.Fatal(err)
	}
	joins := systemEntries(t, store, "cluster.join")
	voters := systemEntries(t, store, "cluster.add_voter")
	if len(joins) != 1 || joins[0].Entry.Target != "node:n2" || joins[0].Entry.Outcome != audit.OutcomeRequested {
		t.Errorf("cluster.join entries: %+v", joins)
	}
	if len(voters) != 1 || voters[0].Entry.Target != "node:n2" || voters[0].Entry.Details["address"] != "127.0.0.1:9999" {
		t.Errorf("cluster.add_voter entries: %+v", voters)
	}
}

func TestNewOperatorToken(t *testing.T) {
	a, err := cluster.NewOperatorToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cluster.NewOperatorToken()
	if !strings.HasPrefix(a, "cst_") || len(a) < 40 || a == b {
		t.Errorf("operator tokens %q, %q", a, b)
	}
}

// The root credential is revoked and regenerated by whoever opens the
// challenge with the seal identity; each step is in the system chain.
func TestRootTokenRevokeAndRegenerate(t *testing.T) {
	ctx := context.Background()
	store := storetest.Start(t)
	s := cluster.New()
	s.Attach(store)
	seal, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cluster.NewGenesis(storetest.Region, operatorToken, joinToken, []string{seal.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bootstrap(ctx, g, storetest.Region, "n1"); err != nil {
		t.Fatal(err)
	}
	op := audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	holder := audit.Principal{Kind: audit.ActorOperator, ID: "seal-identity"}
	check := func(token string) error {
		t.Helper()
		if err := store.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		return s.CheckOperatorToken(ctx, token)
	}
	if err := s.RevokeOperatorToken(ctx, op); err != nil {
		t.Fatal(err)
	}
	if err := check(operatorToken); !errors.Is(err, cluster.ErrInvalidToken) {
		t.Fatalf("the revoked token: %v", err)
	}
	if err := s.RevokeOperatorToken(ctx, op); !errors.Is(err, cluster.ErrNoRootToken) {
		t.Fatalf("revoked twice: %v", err)
	}
	open := func() string {
		t.Helper()
		ch, err := s.StartRootGeneration(ctx, holder)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := base64.StdEncoding.DecodeString(ch.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		nonce, err := keyring.DecryptWithIdentities([]age.Identity{seal}, ct)
		if err != nil {
			t.Fatal(err)
		}
		return string(nonce)
	}
	// Without the seal identity: a wrong answer uses the attempt up.
	nonce := open()
	if _, err := s.GenerateOperatorToken(ctx, holder, "cst_guess"); !errors.Is(err, cluster.ErrNoAttempt) {
		t.Fatalf("a wrong nonce: %v", err)
	}
	if _, err := s.GenerateOperatorToken(ctx, holder, nonce); !errors.Is(err, cluster.ErrNoAttempt) {
		t.Fatalf("the right nonce after a wrong one: %v", err)
	}
	stranger, _ := age.GenerateX25519Identity()
	ch, _ := s.StartRootGeneration(ctx, holder)
	ct, _ := base64.StdEncoding.DecodeString(ch.Sealed)
	if _, err := keyring.DecryptWithIdentities([]age.Identity{stranger}, ct); err == nil {
		t.Fatal("another identity opened the challenge")
	}
	// With it: a new token, the old one still refused.
	token, err := s.GenerateOperatorToken(ctx, holder, open())
	if err != nil || !strings.HasPrefix(token, "cst_") {
		t.Fatalf("generate: %q %v", token, err)
	}
	if err := check(token); err != nil {
		t.Fatalf("the new token: %v", err)
	}
	if err := check(operatorToken); !errors.Is(err, cluster.ErrInvalidToken) {
		t.Fatalf("the old token after regeneration: %v", err)
	}
	for action, want := range map[string]int{"operator.root_token.revoke": 1, "operator.root_token.generate_start": 3, "operator.root_token.generate": 2} {
		if got := len(systemEntries(t, store, action)); got != want {
			t.Errorf("%d %s entries, want %d", got, action, want)
		}
	}
}
