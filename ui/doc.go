// Package ui is Custos's web UI: server-rendered HTML pages for the
// operator, the tenant owner and the compliance officer, served by every
// node at /ui/ (and / redirects there), with everything it needs — its
// templates, one stylesheet and one small script — embedded in the
// binary. It makes no request anywhere but its own origin, so it works in
// an air-gapped install: no CDN, no web font, no analytics.
//
// # One implementation of every rule
//
// The pages do not call the domain services themselves: every read and
// every action goes through the node's own /v1 API, in process — an
// in-memory connection to the same fiber app (no network, no TLS), opened
// with the browser's address as its remote address, carrying the signed-in
// person's access token. Authentication, authorization (roles, attribute
// scopes, suspension, break-glass), validation, the field visibility,
// consent enforcement, audit and the mapping of errors to problems are
// therefore the API's, byte for byte: the UI has no permission logic of
// its own. It only hides what the person's role cannot do, by asking the
// API's route table (api.Operations) with the role's permissions
// (appliance/identity/roles) — the same table the API's role×route matrix
// is tested against — and a refusal the API still makes is shown with the
// problem's detail and request id.
//
// # Sessions
//
// Signing in is the identity service's login (username, password, then a
// TOTP code when the account has one; enrolment when the role requires a
// second factor and the person has none) or single sign-on. The session's
// access and refresh tokens are kept in one cookie, __Host-custos
// (HttpOnly, Secure, SameSite=Strict, Path=/; without the prefix and
// Secure only when the node serves plain HTTP, in --dev or with
// api.insecure_http). The cookie holds only what the API authenticates, so
// it needs no key of the UI's own and any node of the cluster serves it.
//
//   - Idle timeout: the access token's lifetime (15 minutes by default).
//     While the person is active the UI refreshes the token once a third
//     of its lifetime has passed (a refresh is one replicated write); a
//     token that expired is never refreshed, so a session left alone that
//     long ends, and the person signs in again.
//   - Absolute timeout: AbsoluteTimeout (12 hours) after the login, read
//     from the session the API resolves, not from the cookie.
//   - Sign out ends the session; "sign out everywhere" ends every session
//     of the person.
//
// In --dev only, the operator token may also sign in (the dev banner
// prints it); such a session has no server-side timeout, so production
// nodes refuse it.
//
// # Forms and headers
//
// Every state-changing request is a form POST carrying a CSRF token equal
// to the __Host-custos-csrf cookie (a random value set on the first page,
// HttpOnly, SameSite=Strict: double submit with a host-only cookie another
// origin cannot set), and is refused when its Origin or Sec-Fetch-Site
// says it came from another origin. Every response carries the
// Content-Security-Policy "default-src 'self'; script-src 'self';
// object-src 'none'; frame-ancestors 'none'; base-uri 'none'" (no inline
// script or style anywhere: SVG charts use presentation attributes),
// X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and, on
// TLS, Strict-Transport-Security.
//
// # JavaScript
//
// Every page and every core read works with JavaScript off: lists are
// server-paginated links, actions are forms, charts are SVG drawn on the
// server with their values in a table beside them. The one script
// (assets/app.js) only enhances: a confirmation before destructive
// actions (which the server also asks for: erasure needs the typed
// subject id), live countdowns of request deadlines.
package ui
