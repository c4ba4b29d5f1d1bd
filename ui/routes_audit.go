package ui

// auditRoutes are the pages of the audit area.
func (u *UI) auditRoutes() []route {
	return nil
}
