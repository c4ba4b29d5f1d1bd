package node

import (
	"context"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/export"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
)

// startExports makes the export service over the services it reads and
// starts its sweeper (the leader shreds expired exports; [privacy]
// export_ttl). Exports are spooled (a tar's files) in the system's
// temporary directory.
func (n *Node) startExports(b *tenancy.Boundary, keys *keyring.Hierarchy, recs *records.Service, colls *collections.Service, bl *blobs.Service,
	cons *consent.Service, dsr *requests.Service, aud *audit.Service, ten *tenants.Service) *export.Service {
	s := export.New(b, keys, export.Sources{Records: recs, Collections: colls, Blobs: bl, Consent: cons, Requests: dsr, Audit: aud},
		export.Config{TTL: n.cfg.Privacy.ExportTTL}, nil)
	n.background(func(ctx context.Context) {
		s.RunSweeper(ctx, export.SweepConfig{IsLeader: n.store.IsLeader, Tenants: ten.IDs, Logger: n.logger.With("component", "export")})
	})
	return s
}
