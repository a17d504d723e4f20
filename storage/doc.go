// Package storage keeps taxii-bridge's STIX objects, collections, TAXII status
// resources and sync state in one SQLite file (github.com/mattn/go-sqlite3).
//
// # Connections
//
// The file is opened twice: a writer pool of exactly one connection, through
// which every write transaction (Store.Update) runs one at a time, and a
// small read-only pool for the TAXII server. The database runs in WAL mode
// with synchronous=NORMAL, foreign keys on and a busy timeout, so readers
// never wait for the writer and a crash loses nothing committed
// (taxii21.md D-22). Schema changes are numbered SQL files embedded in the
// binary, applied in order, each in its own transaction together with its
// row in schema_migrations. Open refuses a file that is not SQLite, a SQLite
// file of another application (application_id) or one whose schema is newer
// than the binary, before writing anything to it.
//
// # Data model
//
// objects maps each STIX id to a small integer key. versions holds one row
// per distinct version (id, modified, content hash) with its canonical JSON
// bytes, which are served as they are (D-20) and shared by every collection
// that holds the version. members is the membership of a version in a
// collection: it carries the date_added of that membership (D-2) and
// denormalised copies of what TAXII filters on (type, spec_version, TLP rank,
// version instant, is_latest, is_first). It is a WITHOUT ROWID table keyed by
// (collection, date_added), so a keyset page (D-7) is one range scan of that
// b-tree plus a primary-key lookup of the object id (and of the JSON for
// objects; the manifest never reads it). A second index on (collection,
// object, date_added) serves match[id], the object and versions endpoints
// in listing order, and Put's lookups.
// Query plans are pinned with INDEXED BY / NOT INDEXED because SQLite's
// choices without statistics (full scans, Bloom filters over all members)
// cost orders of magnitude on large collections.
//
// date_added is a count of microseconds, max(now, high-water + 1), handed out
// under the single writer, so it is unique and strictly increasing across the
// whole database (D-1); the high-water mark is persisted in the same
// transaction, so neither a restart, a clock set back nor deleted rows can
// make it repeat. Because it is unique, it alone is a total keyset position;
// Key.RowID (the version row) is carried along for diagnostics.
//
// Version bytes are stored tokenised (codec.go): common STIX property names,
// type names, TLP marking ids and separators become one- or two-byte codes
// taken from the byte values canonical JSON never contains. That keeps about
// 60% of the mapper's output, which is what holds a TC indicator (indicator,
// observable, relationship) under the 2 KB budget of DESIGN.md §8, while
// decoding stays a copy loop that the crawl budget can afford. Pages are
// 16 KiB.
//
// # Versions
//
// Tx.Put writes a version only when its content hash differs from the
// collection's latest version (D-4); a version whose (id, modified) the
// collection already holds is also unchanged. Storage never rewrites the
// JSON it is given: a changed object whose modified did not move is the
// caller's to version (the sync's mapper gives it latest + 1 ms).
// is_latest (greatest version instant, ties to the newest membership) and
// is_first (smallest, ties to the oldest) are kept in the same transaction
// (D-5). Unversioned objects (SCOs, marking definitions: no modified) change
// only by hash; their version instant, used by match[version] and reported in
// place of modified, is their created time when they have one, else their
// date_added.
//
// Put decides a whole batch from three prefetch queries and writes new rows
// with multi-row INSERTs; only changed objects and ids repeated within a batch
// take a statement-per-object path. Each statement through cgo and
// database/sql costs several microseconds, more than SQLite's own work.
//
// # The write path
//
// A sync batch asks about the same ids several times (what the store holds
// of what it routes, of what it queues, what Put must compare, what settling
// references), so a write transaction remembers what it read (txCache): the
// object key of each STIX id, the ids no objects row has, and each id's
// latest-version metadata per collection, which Put updates as it writes.
// Lookups after the first go by integer key. Ids a batch brings new are
// answered by a Bloom filter of the ids the objects table may hold
// (known.go) without a query at all. Statements run without the caller's
// cancellation (the driver would run each on a goroutine of its own);
// cancelling still rolls the transaction back. Object.Encode lets the
// producer encode a version's stored form before it reaches the single
// writer.
//
// # Visibility
//
// Every read takes a MaxTLP. Each membership row carries vis, the object's
// visibility in the collection, the same on all its rows: its latest
// version's TLP rank while published, or a withdrawn/blocked state above
// every rank (migration 0003). A row is served when both its own rank and
// vis are within the cap, so visibility is decided on the latest version:
// an object whose latest version is above the cap is absent in every mode,
// with the same query and the same answer as an id never stored, and a
// capped principal can neither see, count nor page past a hidden row.
// SetVisibility(ies) hides an object or publishes it again with a fresh
// date_added (so added_after pollers see it appear); hiding, Remove and
// PruneVersions mark the collection changed, which NewestDateAdded (and so
// every ETag) reflects.
//
// # The reference graph
//
// Storage knows no STIX: the caller hands each version the ids it references
// (Object.Refs, and Object.Wants for a container's would-be members) and
// records which item derives which objects (SetOrigins). They are kept in
// edges (collection, target, kind, source) for the latest version, with a
// second index by source, so "who references X" and "what does X
// reference" are one keyset probe per id in Referrers and Targets. A
// version's revoked flag and ThreatConnect id are columns; Meta returns a
// batch's latest-version metadata in one query. Remove deletes the
// memberships of an id that a reader under a TLP cap can see, nothing when
// the id's latest version is above the cap; Tx.PruneVersions applies a
// retention window to non-latest versions (D-5, D-6); both purge version
// bytes no collection holds any more.
//
// # Status resources
//
// A status is stored as its JSON document, with its owner and expiry time,
// at most MaxStatusBytes. The statuses table is also its own expiry index:
// under keys "~<expiry µs>~<id>", which no UUID can equal, so PutStatus
// deletes what has expired with a range scan before each write. The file is
// created 0600 (and SQLite gives -wal and -shm the same mode).
package storage
