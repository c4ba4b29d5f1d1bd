// Package export answers a data subject's right of access and to data
// portability (GDPR art. 15 and 20; CCPA §1798.100 and .110): it builds an
// archive of everything the tenant holds about a subject, signs its
// manifest, keeps it sealed for a short while and then shreds it. The same
// machinery returns a whole tenant's data at the end of a contract.
//
// # What an export holds
//
//	records/<collection>.<json|csv|parquet>  the subject's records, every field in clear
//	blobs/<id><ext>                          each blob's bytes (recordings, documents)
//	blobs.json                               the blobs' metadata, naming each file
//	consent.json                             the subject's consent ledger (evidence texts opened)
//	requests.json                            the subject's data-subject requests
//	audit.json                               the tenant's audit entries about the subject:
//	                                         those whose target is the subject's pseudonym
//	MANIFEST.txt                             the signed manifest (appliance/privacy/receipt)
//
// Records are read in full, whatever the caller's sight: the subject is
// owed every field (records.SubjectRecords); the API lets only holders of
// subjects:export (Owner, Compliance) start one. A principal with
// attribute scopes is refused (ErrScoped): it would export part of the
// subject's data under a manifest that claims the whole. Audit entries are
// written as the chain holds them: other people appear there only as
// pseudonyms. A tenant-wide export (Service.Tenant) holds every
// collection's records and every blob, and no subject files.
//
// # Formats
//
// Records go in the format asked: JSON (an array of records, each with
// its id, subject, attributes, version, times and fields), CSV (one row
// a record: _id, _subject, _created_at, _updated_at, _version, the
// schema's fields in its order, then _other — the fields the current
// schema no longer names, as a JSON object, so nothing is left out; a
// field's cell is its string, or its JSON text for other types) or Parquet
// (the CSV's columns typed: numbers as doubles, bools as booleans, the
// record's times as UTC nanosecond timestamps, the rest as strings).
// Metadata, consent, requests and audit are nested and small, so they are
// JSON in every format. The column names that start with '_' never clash
// with a field's, which starts with a letter.
//
// Parquet is github.com/parquet-go/parquet-go: it writes Parquet from Go
// values with a schema built at run time (a collection's fields are only
// known then), streams row groups to any io.Writer, and is pure Go —
// Apache Arrow's writer would bring a columnar memory model we do not use
// for a file we only write. The tests read the files back with Arrow's
// reader (github.com/apache/arrow-go), independent of the writer.
//
// # Packaging
//
// zip (the default: `custos dsr verify-export` checks a zip as it is) or
// gzip — a gzip'd tar (.tar.gz) rather than a .gz per file, so that an
// export is still one file with its manifest beside the files it lists;
// unpack it and verify the directory. A tar needs each file's size before
// its bytes, so each file is spooled to an unlinked temporary file (never
// memory) before it is copied in; a zip is written straight through.
//
// # Bounded memory
//
// Records are read a page at a time (records.SubjectRecords) and written
// straight into the archive writer, whose bytes are sealed in 64 KiB
// chunks and replicated sixteen chunks per transaction while the export
// is still being built: nothing holds the whole export. What is kept is
// one page of records, one Parquet row group (parquetRowGroup rows), the
// blobs' metadata (a few hundred bytes a blob) and the manifest's lines.
//
// # The date range
//
// From and To (both optional, inclusive) select records that existed
// during the range (created at or before To, last updated at or after
// From), and blobs, consent events and audit entries whose time is in
// it; the manifest's range line says which range was asked.
//
// # Artifacts
//
// An export is stored in the tenant's scope like a blob: chunks sealed
// with keyring.Chunks (STREAM) under a data key of its own — the keyring
// key of the pseudo-subject "export/<id>", wrapped under the tenant's
// key-encryption key; '/' is in no record subject's id, so it names no
// person — and replicated through Raft. It can be downloaded by id until
// it expires (Config.TTL, 24 hours by default; [privacy] export_ttl), when
// the leader's sweeper (RunSweeper, under the node's lifetime) deletes its
// metadata and chunks and shreds its key in one transaction
// (keyring.ShredOps: every node then compacts, so no file keeps the key).
// A build that stopped half-way (its node died) is swept the same way
// once its marker is StaleAfter old.
//
// Every export is an entry in the tenant's chain (subject.export, naming
// the subject by pseudonym, or tenant.export), written in the transaction
// that makes the export downloadable; every download is one too
// (export.download, committed before a byte is served), and so is every
// expiry (export.expire). The blob reads an export makes are audited as
// any download (blob.read).
//
// # Layout (below the tenant's bucket, through its tenancy.Scope)
//
//	exports              <id> -> metadata (JSON: the Export, with the stream header)
//	export_builds        <id> -> marker of a build in progress (JSON)
//	export_chunks/<id>   <index, 8 bytes big endian> -> sealed chunk
//
// # Files
//
// build.go builds an archive from the sources; formats.go writes records
// as JSON, CSV and Parquet; archive.go packages files and hashes them;
// artifact.go stores, lists and serves exports; sweep.go expires them;
// service.go is the service, its configuration and layout.
package export
