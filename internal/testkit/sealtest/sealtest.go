// Package sealtest gives the tests of services that sign with the
// cluster's audit key (export manifests, erasure receipts) what a node's
// first start makes: a seal identity, and the audit signing key sealed to
// it and written into the store, with the key hierarchy that unseals with
// the identity. It is one helper so that such tests bootstrap a store the
// way the node does, not each their own way. Only tests import it.
package sealtest

import (
	"context"
	"testing"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Seal is a bootstrapped store's seal identity and the public half of its
// audit key (the verifier key `custos audit key` prints).
type Seal struct {
	Identity    *age.X25519Identity
	VerifierKey string
}

// Bootstrap makes a seal identity and an audit key named name, and writes
// into store (a leader, or any node: the write is forwarded), in one
// transaction, the key sealed to the identity and the seal's recipients,
// as a node's first start does.
func Bootstrap(tb testing.TB, store *raftstore.Store, name string) Seal {
	tb.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		tb.Fatal(err)
	}
	return BootstrapWith(tb, store, name, id)
}

// BootstrapWith is Bootstrap with a seal identity the caller already has.
func BootstrapWith(tb testing.TB, store *raftstore.Store, name string, id *age.X25519Identity) Seal {
	tb.Helper()
	skey, vkey, err := audit.NewKeys(name)
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := keyring.EncryptToRecipients([]string{id.Recipient().String()}, []byte(skey))
	if err != nil {
		tb.Fatal(err)
	}
	seal, err := keyring.BootstrapOps([]string{id.Recipient().String()})
	if err != nil {
		tb.Fatal(err)
	}
	res, err := store.Apply(context.Background(), &raftstore.Txn{Ops: append(audit.BootstrapOps(vkey, enc), seal...)})
	if err != nil || !res.Applied {
		tb.Fatalf("sealtest: bootstrap the audit key: %+v %v", res, err)
	}
	return Seal{Identity: id, VerifierKey: vkey}
}

// Hierarchy is the key hierarchy over b that seals to, and unseals with,
// the identity, as a node's.
func (s Seal) Hierarchy(b *tenancy.Boundary) *keyring.Hierarchy {
	return keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{s.Identity.Recipient()}, Identities: []age.Identity{s.Identity},
		System: audit.System(), Pseudonym: audit.Pseudonym})
}
