-- 0001: the whole first schema. See doc.go for the design.

-- Small key/value table: sync cursors, the cursor secret, the date_added
-- high-water mark.
CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- cid is the compact internal key; id is the public UUIDv4 (D-19).
CREATE TABLE collections (
    cid         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    alias       TEXT    NOT NULL UNIQUE,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    can_write   INTEGER NOT NULL
);

-- One row per STIX id; oid is what every other table refers to.
CREATE TABLE objects (
    oid     INTEGER PRIMARY KEY,
    stix_id TEXT NOT NULL UNIQUE
);

-- One row per distinct version: the bytes are shared by every collection
-- that holds the version. modified is µs since the epoch, 0 when the object
-- is unversioned. codec says how json is stored (0 = as is).
CREATE TABLE versions (
    vid      INTEGER PRIMARY KEY,
    oid      INTEGER NOT NULL REFERENCES objects (oid),
    modified INTEGER NOT NULL,
    hash     BLOB    NOT NULL,
    codec    INTEGER NOT NULL,
    json     BLOB    NOT NULL
);
CREATE INDEX versions_by_object ON versions (oid, modified);

-- Membership of a version in a collection. The table is clustered on
-- (cid, date_added), so the keyset scan of D-7 reads this table alone.
-- ver is the version instant used by match[version]: modified, else created,
-- else date_added. Booleans cost no payload bytes in SQLite.
CREATE TABLE members (
    cid          INTEGER NOT NULL REFERENCES collections (cid),
    date_added   INTEGER NOT NULL,
    oid          INTEGER NOT NULL,
    vid          INTEGER NOT NULL,
    ver          INTEGER NOT NULL,
    versioned    INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    type         TEXT    NOT NULL,
    spec_version TEXT    NOT NULL,
    tlp          INTEGER NOT NULL,
    latest       INTEGER NOT NULL,
    first        INTEGER NOT NULL,
    PRIMARY KEY (cid, date_added)
) WITHOUT ROWID;
CREATE INDEX members_by_object ON members (cid, oid, ver);

-- Status resources of POST requests, stored as their JSON document.
CREATE TABLE statuses (
    id   TEXT PRIMARY KEY,
    body BLOB NOT NULL
) WITHOUT ROWID;
