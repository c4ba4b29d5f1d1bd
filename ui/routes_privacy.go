package ui

// privacyRoutes are the pages of the privacy area: consent (purposes,
// consent rates, one subject's ledger), data-subject requests (the queue,
// one request and its actions, its downloads) and retention settings.
//
// Purposes live under /privacy/purposes rather than below
// /privacy/consent, so that a subject's page /privacy/consent/:sid never
// competes with a purpose's path for the same URL.
func (u *UI) privacyRoutes() []route {
	return []route{
		{path: "/t/:tenant/privacy/consent", need: "GET /tenants/:id/purposes",
			actions: []string{"POST /tenants/:id/purposes"}, handle: u.consentPage},
		{path: "/t/:tenant/privacy/purposes", post: true, handle: u.createPurpose},
		{path: "/t/:tenant/privacy/purposes/:pid", need: "GET /tenants/:id/purposes/:pid",
			actions: []string{"PUT /tenants/:id/purposes/:pid"}, handle: u.purposePage},
		{path: "/t/:tenant/privacy/purposes/:pid", post: true, handle: u.updatePurpose},
		{path: "/t/:tenant/privacy/consent/:sid", need: "GET /tenants/:id/consent/:sid",
			actions: []string{"POST /tenants/:id/consent/:sid/grant", "POST /tenants/:id/consent/:sid/withdraw", "POST /tenants/:id/consent/:sid/flags"},
			handle:  u.subjectConsentPage},
		{path: "/t/:tenant/privacy/consent/:sid/grant", post: true, handle: u.grantConsent},
		{path: "/t/:tenant/privacy/consent/:sid/withdraw", post: true, handle: u.withdrawConsent},
		{path: "/t/:tenant/privacy/consent/:sid/flags", post: true, handle: u.setConsentFlag},

		{path: "/t/:tenant/privacy/requests", need: "GET /tenants/:id/requests",
			actions: []string{"POST /tenants/:id/requests"}, handle: u.requestsPage},
		{path: "/t/:tenant/privacy/requests", post: true, handle: u.createRequest},
		{path: "/t/:tenant/privacy/requests/:rid", need: "GET /tenants/:id/requests/:rid",
			actions: []string{"POST /tenants/:id/requests/:rid/transition"}, handle: u.requestPage},
		{path: "/t/:tenant/privacy/requests/:rid/transition", post: true, handle: u.transitionRequest},
		// The export, the erasure and the rectification each have a
		// page of their own: the work they start is large or final, and
		// the page says what will happen (and, for the erasure, asks for
		// the typed subject id) before the person confirms.
		{path: "/t/:tenant/privacy/requests/:rid/export", need: "GET /tenants/:id/requests/:rid",
			actions: []string{"POST /tenants/:id/requests/:rid/export"}, handle: u.exportPage},
		{path: "/t/:tenant/privacy/requests/:rid/export", post: true, handle: u.exportRequest},
		{path: "/t/:tenant/privacy/requests/:rid/erase", need: "GET /tenants/:id/requests/:rid",
			actions: []string{"POST /tenants/:id/requests/:rid/erase"}, handle: u.erasePage},
		{path: "/t/:tenant/privacy/requests/:rid/erase", post: true, handle: u.eraseRequest},
		{path: "/t/:tenant/privacy/requests/:rid/rectify", need: "GET /tenants/:id/requests/:rid",
			actions: []string{"POST /tenants/:id/requests/:rid/rectify"}, handle: u.rectifyPage},
		{path: "/t/:tenant/privacy/requests/:rid/rectify", post: true, handle: u.rectifyRequest},
		{path: "/t/:tenant/privacy/requests/:rid/receipt", file: true, need: "GET /tenants/:id/requests/:rid/receipt", handle: u.downloadReceipt},
		{path: "/t/:tenant/privacy/exports/:eid", file: true, need: "GET /tenants/:id/exports/:eid", handle: u.downloadExport},

		{path: "/t/:tenant/privacy/retention", need: "GET /tenants/:id/collections",
			actions: []string{"PATCH /tenants/:id"}, handle: u.retentionPage},
		{path: "/t/:tenant/privacy/retention", post: true, handle: u.updateRetention},
	}
}
