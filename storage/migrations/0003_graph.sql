-- 0003: the reference graph and per-collection visibility (DESIGN.md §10).

-- vis is the object's visibility in its collection, the same on every
-- membership row of (cid, oid): 0..5 = published, readable by a reader whose
-- TLP cap is at least this rank; 8 = withdrawn (the collection no longer
-- wants it: it left a filter, or its source went out of scope); 9 = blocked
-- (a reference it carries does not resolve in the collection). Readers see a
-- row only when both its own tlp and vis are within their cap.
ALTER TABLE members ADD COLUMN vis INTEGER NOT NULL DEFAULT 0;
UPDATE members SET vis = coalesce((SELECT l.tlp FROM members l INDEXED BY members_by_object
    WHERE l.cid = members.cid AND l.oid = members.oid AND l.latest = 1 LIMIT 1), members.tlp);

-- What the sync used to parse out of stored JSON, as columns of the version.
ALTER TABLE versions ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN tcid INTEGER NOT NULL DEFAULT 0;
-- valid_until of the version in µs (0: none), for the bootstrap view.
ALTER TABLE versions ADD COLUMN valid_until INTEGER NOT NULL DEFAULT 0;

-- The reference graph of each collection's latest versions. kind 0: src's
-- latest version references dst (source_ref, target_ref, object_refs, …);
-- kind 1: dst was derived from the ThreatConnect item whose object is src
-- (an observable from its indicator). Keyed for "who references X".
CREATE TABLE edges (
    cid  INTEGER NOT NULL,
    dst  INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    src  INTEGER NOT NULL,
    PRIMARY KEY (cid, dst, kind, src)
) WITHOUT ROWID;
CREATE INDEX edges_by_src ON edges (cid, src, kind);

-- changed is the last instant (a date_added tick) at which the collection's
-- listings changed without a new membership: an object hidden, removed or
-- pruned. Conditional polling compares it like the newest date_added.
ALTER TABLE collections ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;
