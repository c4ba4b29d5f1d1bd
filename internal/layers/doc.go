// Package layers holds the test that keeps the module's dependencies
// pointing down, as docs/architecture.md draws them: command → node →
// adapters → domain services → foundations (keyring, audit, config) →
// the tenancy boundary → raftstore. It has no code of its own; the table
// in its test is the architecture document's table in a form a machine
// checks, and a package the table does not place fails the test, so the
// document cannot silently fall behind the code.
package layers
