package keyring

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// The cluster's data key is the key of personal data that belongs to no
// tenant — the operator users' usernames and second-factor secrets
// (appliance/identity/accounts' operators' realm). No tenant root wraps
// it: it is age-encrypted to the cluster's seal recipients, as the audit
// and access-token signing keys are, in the keyring's system bucket
// (record "cluster_key"), created by the first unsealed node that needs
// it and opened with the seal identity (DecryptWithIdentities). A sealed
// node cannot have it: every call answers a *UnavailableError of
// ErrSealed. Its blind-index and audit-pseudonym keys are derived from it
// as a tenant's are from the tenant's data key.

// ClusterKey returns the cluster's data key, creating it on first use.
func (h *Hierarchy) ClusterKey(ctx context.Context) (*Key, error) {
	if h.Sealed() {
		return nil, &UnavailableError{Tenant: "(cluster)", Cause: ErrSealed}
	}
	h.mu.Lock()
	k := h.cluster
	h.mu.Unlock()
	if k != nil {
		return k, nil
	}
	for range 2 { // a concurrent creation by another node wins once
		var sealed []byte
		if err := h.tenancy.ViewSystem(ctx, raftstore.Linearizable, sysRecords, func(r tenancy.SystemRead) error {
			sealed, _, _ = r.Get(sysClusterKey)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("keyring: read the cluster key: %w", err)
		}
		if sealed != nil {
			raw, err := DecryptWithIdentities(h.ids, sealed)
			if err != nil {
				return nil, fmt.Errorf("keyring: open the cluster key: %w", err)
			}
			if k, err = keyFrom(1, raw); err != nil {
				return nil, fmt.Errorf("keyring: the cluster key: %w", err)
			}
			h.mu.Lock()
			h.cluster = k
			h.mu.Unlock()
			return k, nil
		}
		// Create one (or let another node's creation win), then read
		// back what is stored.
		if err := h.createClusterKey(ctx); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("keyring: the cluster key: %w", errClusterKeyRace)
}

var errClusterKeyRace = errors.New("created concurrently and not readable")

// createClusterKey writes a fresh sealed cluster key unless one exists.
func (h *Hierarchy) createClusterKey(ctx context.Context) error {
	seal, err := h.sealRecipients(ctx)
	if err != nil {
		return err
	}
	k, err := NewKey(1)
	if err != nil {
		return err
	}
	sealed, err := ageEncrypt(k.raw[:], seal...)
	if err != nil {
		return fmt.Errorf("keyring: seal the cluster key: %w", err)
	}
	res, err := h.tenancy.ApplySystem(ctx,
		[]raftstore.Cond{sysRecords.Cond(raftstore.CondAbsent, sysClusterKey, 0)},
		[]raftstore.Op{sysRecords.Put(sysClusterKey, sealed)})
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("keyring: store the cluster key: %w", err)
	}
	return nil
}

// ClusterIndexKey keys the blind indexes of the cluster's own personal
// data (operator usernames).
func (h *Hierarchy) ClusterIndexKey(ctx context.Context) ([]byte, error) {
	return h.clusterDerived(ctx, "custos/cluster/blind-index/v1")
}

// ClusterAuditKey keys the pseudonyms of the system chain's entries about
// operators (a username typed in a failed operator login).
func (h *Hierarchy) ClusterAuditKey(ctx context.Context) ([]byte, error) {
	return h.clusterDerived(ctx, "custos/cluster/audit-pseudonym/v1")
}

func (h *Hierarchy) clusterDerived(ctx context.Context, purpose string) ([]byte, error) {
	k, err := h.ClusterKey(ctx)
	if err != nil {
		return nil, err
	}
	out, err := hkdf.Key(sha256.New, k.raw[:], nil, purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("keyring: %s key: %w", purpose, err)
	}
	return out, nil
}
