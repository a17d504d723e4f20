// Package storage keeps taxii-bridge's STIX objects, collections, TAXII status
// resources and sync state in one SQLite file (github.com/mattn/go-sqlite3),
// or in a PostgreSQL database shared by any number of replicas
// (github.com/jackc/pgx/v5; see "PostgreSQL" below). Both are the one Store:
// nothing above this package knows which it talks to.
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
// writer. On SQLite a statement is parsed and compiled once on the writer
// connection (Store.keepStmts, after the transaction that first ran it) and
// reused by every later transaction; multi-row inserts come in seven sizes
// per table (64 rows, then powers of two) so that the set stays small.
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
// Storage reads no STIX content: the caller hands each version the ids it
// references (Object.Refs, and Object.Wants for a container's would-be
// members) and records which item derives which objects (SetOrigins). They
// are kept for the latest version in refs (collection, source, kind → the
// sorted target keys) and edges (collection, target, kind, source), one row
// per edge, so "what does X reference" and "who references X" are one
// keyset probe per id in Targets and Referrers (edges.go). Only the type in
// an id counts, twice: object keys abbreviate common types (objkey.go), and
// edges keeps no row for references to identities and marking definitions
// or for origins of relationships and marking definitions, about half of
// all edges and never asked about in a sync (reverseIndexed): "who
// references X" for those reads the kind's lists of the collection. "Who
// references X" for a key the transaction itself created is answered from
// memory (fresh.go): no row written before can name it. A version's
// revoked flag and ThreatConnect id are columns; Meta returns a
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
//
// # PostgreSQL
//
// OpenPostgres opens the same Store on a PostgreSQL database through pgx's
// database/sql driver (pgx/v5/stdlib); search_path, a runtime parameter of
// the URL, selects the schema. There is one implementation: the statements
// are written for SQLite, in a subset PostgreSQL also accepts, and
// dialect.go rewrites each statement text once (cached) for PostgreSQL.
// Every statement goes through the Store's helpers (Tx.stmt, query,
// queryRow, exec, execResult; Store.readStmt, listStmt; s.d.sql for the few
// fixed reads), never straight to database/sql, so the rewrite applies.
//
// The dialect rules, which every statement and every future migration
// follows:
//
//   - Parameters are ? or ?N (SQLite's numbering: a bare ? is one more than
//     the greatest so far); they become $N. No ? inside string literals.
//   - Plan pins stay SQLite's: INDEXED BY x, NOT INDEXED and the unary
//     plus of "= +?" are dropped for PostgreSQL, as is WITHOUT ROWID.
//     CROSS JOIN t a ON … (SQLite's fixed loop order) becomes JOIN t a ON.
//   - Types: INTEGER (everywhere, also in CAST) becomes BIGINT, BLOB
//     BYTEA; TEXT stays. Use no other type names.
//   - Keys are never implicit: an INTEGER PRIMARY KEY is not a rowid alias
//     on PostgreSQL, so inserts give it (max(key) + 1 under the write lock,
//     which is also what SQLite would pick) and read it back with
//     RETURNING, never LastInsertId.
//   - No INSERT OR IGNORE / OR REPLACE: INSERT … ON CONFLICT DO NOTHING,
//     or ON CONFLICT (key) DO UPDATE SET v = excluded.v.
//   - Booleans are stored as integers 0/1: compare them (latest = 1), never
//     use a column as a condition, and write a comparison into a column as
//     CASE WHEN … THEN 1 ELSE 0 END. Go bools are bound as 0/1.
//   - A list is bound as one JSON array and read with json_each(?) (on
//     PostgreSQL json_array_elements_text, whose values are text): compare
//     its value with an integer column through CAST(value AS INTEGER).
//   - Scalar max(a, b) / min(a, b) become greatest / least (which ignore a
//     NULL argument: coalesce arguments that may be NULL).
//   - No blob literals (x'00'): bind a []byte. No PRAGMA, sqlite_schema or
//     other engine-specific statement outside a branch on the backend.
//
// Listings bind their LIMIT (exactly Limit+1) on PostgreSQL, which sends
// every row up to the LIMIT, instead of SQLite's bucketed literal.
// Statements of a write transaction are not prepared on PostgreSQL: pgx
// keeps a prepared statement per connection and text. Migrations are the
// same numbered files, rewritten; they run under a session advisory lock
// (pg_advisory_lock on a fixed key) so that replicas starting together
// migrate once. SQLite-only steps have no PostgreSQL form: application_id,
// page_size and the file checks (a schema is not a file to mistake for
// another program's), WAL and checkpoints, PRAGMA optimize (Maintain runs
// ANALYZE instead). Check verifies the schema version and the store's own
// invariants (the engine checks its pages); Stats reports the store's
// tables' pg_total_relation_size; Path is the URL without its password, and
// no error carries the password.
//
// Writes: every write transaction (Update, and so EnsureCollection,
// PutStatus, …) first takes pg_advisory_xact_lock on a fixed key (the
// second key a hash of the schema, so stores in different schemas do not
// wait for each other), so writes are serialised across processes exactly
// as SQLite's single writer serialises them, and released at commit or
// rollback, also when a replica dies.
//
// date_added: inside the locked transaction the store reads the high-water
// mark from state, not from memory, whenever another process may have
// written (below), and hands out max(now, high-water + 1), where now is the
// database's clock_timestamp() read when the lock was taken plus the time
// since (WithNow replaces it in tests). So date_added is unique and never
// decreases across replicas whatever their clocks; the mark is persisted
// in the same transaction, as on SQLite.
//
// Caches: a write generation tells a Store that another process wrote
// since its own last write transaction. On SQLite it is PRAGMA
// data_version; on PostgreSQL a row in state (storage.generation) that
// every write transaction moves and the next one compares. When it moved,
// the known-ids Bloom filter is dropped and the high-water mark re-read.
// The txCache lives and dies with one transaction; the collection id → key
// map holds only what never changes (a collection's key). Prepared
// statements are per connection. Storage caches nothing else.
package storage
