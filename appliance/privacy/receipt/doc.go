// Package receipt defines the two signed artifacts Custos hands a data
// subject — the manifest of a data export and the receipt of an erasure —
// and verifies them offline.
//
// Why: a subject (or their lawyer) must be able to check, without
// trusting Custos or reaching it, that an export is complete and authentic
// and that an erasure happened and was audited. Both artifacts are
// therefore signed notes (golang.org/x/mod/sumdb/note) made with the
// cluster's audit key — the very key and key name that sign the audit
// checkpoints — so the public key `custos audit key` prints verifies
// them, and any signed-note implementation can. The signed text has one
// canonical form: the parsers accept exactly the bytes the encoders
// write, within fixed bounds, so every byte of an artifact is covered by
// its signature and no two texts mean the same thing. The formats are
// specified byte for byte in docs/privacy-artifacts.md.
//
// The export and erasure services build the artifacts and sign them; this
// package holds no state and does no I/O of its own beyond reading the
// files it is asked to verify.
package receipt
