package ui

// tenantRoutes are the pages of the tenant area.
func (u *UI) tenantRoutes() []route {
	return nil
}
