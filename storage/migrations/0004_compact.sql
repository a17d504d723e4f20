-- 0004: compact storage (the database budget of DESIGN.md §8).
--
-- objects.stix_id holds the key of objkey.go ("~", the UUID in base64url,
-- a type code) instead of the STIX id. Versions written from now on use
-- json codec 2 (binary UUIDs, codec.go), which older programs cannot read:
-- this migration's number keeps them from opening the file.
--
-- What a source references moves from an index of edges by source (two
-- b-tree entries per edge) to refs, one row per (collection, source, kind)
-- holding the sorted target keys as uvarints (edges.go); edges keeps one
-- row per edge, keyed by target. The Go step of this migration (migrate4)
-- rewrites the objects rows, fills refs from edges and then drops
-- edges_by_src.
-- Content hashes are 16 bytes from now on (storage.Object.Hash).
UPDATE versions SET hash = substr(hash, 1, 16) WHERE length(hash) > 16;

CREATE TABLE refs (
    cid  INTEGER NOT NULL,
    src  INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    dsts BLOB    NOT NULL,
    PRIMARY KEY (cid, src, kind)
) WITHOUT ROWID;
