package ui

import "github.com/custos/custos/appliance/client"

// clusterRoutes are the operator's pages of the cluster: its nodes,
// tenants and operators.
func (u *UI) clusterRoutes() []route {
	return []route{
		{path: "/cluster", need: "GET /sys/status", handle: u.clusterPage},
	}
}

// clusterData is the cluster page's.
type clusterData struct {
	Status client.Status
}

func (u *UI) clusterPage(r *req) error {
	st, err := r.api.Status(r.ctx)
	if err != nil {
		return err
	}
	return r.render(200, "cluster", "Cluster", clusterData{Status: st})
}
