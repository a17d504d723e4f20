package storage

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Microseconds since the epoch are the unit of every instant in the schema;
// 0 stands for "not set".
func toMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicro(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// stmt returns the transaction's prepared statement for query, preparing it
// on first use (see dialect.go).
func (tx *Tx) stmt(query string) (*stmt, error) {
	if st, ok := tx.stmts[query]; ok {
		return st, nil
	}
	st, err := tx.prepare(query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", firstWords(query), err)
	}
	if tx.stmts == nil {
		tx.stmts = map[string]*stmt{}
	}
	tx.stmts[query] = st
	return st, nil
}

func firstWords(q string) string {
	f := strings.Fields(q)
	if len(f) > 4 {
		f = f[:4]
	}
	return strings.Join(f, " ")
}

const (
	// Lookups are split into simple statements with pinned indexes: joined
	// forms let SQLite build a Bloom filter over all of members per call.
	sqlObject = `SELECT oid FROM objects WHERE stix_id = ?`
	sqlLatest = `SELECT m.date_added, m.ver, m.versioned, m.vis, v.hash
		FROM members m INDEXED BY members_by_object CROSS JOIN versions v ON v.vid = m.vid
		WHERE m.cid = ? AND m.oid = ? AND m.latest = 1 LIMIT 1`
	sqlInsertObject  = `INSERT INTO objects (oid, stix_id) VALUES ((SELECT coalesce(max(oid), 0) + 1 FROM objects), ?) RETURNING oid`
	sqlFindVersion   = `SELECT vid FROM versions WHERE oid = ? AND modified = ? AND hash = ? LIMIT 1`
	sqlInsertVersion = `INSERT INTO versions (vid, oid, modified, hash, codec, json, revoked, tcid, valid_until) VALUES ((SELECT coalesce(max(vid), 0) + 1 FROM versions), ?, ?, ?, ?, ?, ?, ?, ?) RETURNING vid`
	sqlInsertMember  = `INSERT INTO members (cid, date_added, oid, vid, ver, versioned, created, type, spec_version, tlp, latest, first, vis)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlClearLatest = `UPDATE members SET latest = 0 WHERE cid = ? AND date_added = ?`
	sqlClearFirst  = `UPDATE members SET first = 0 WHERE cid = ? AND date_added = ?`
	sqlFirst       = `SELECT date_added, ver FROM members INDEXED BY members_by_object WHERE cid = ? AND oid = ? AND first = 1 LIMIT 1`
	sqlHasVersion  = `SELECT 1 FROM members INDEXED BY members_by_object WHERE cid = ? AND oid = ? AND ver = ? AND versioned = 1 LIMIT 1`
	sqlSetVis      = `UPDATE members INDEXED BY members_by_object SET vis = ? WHERE cid = ? AND oid = ?`
	sqlSetVisMany  = `UPDATE members INDEXED BY members_by_object SET vis = ?1 WHERE cid = ?2 AND oid IN (SELECT CAST(value AS INTEGER) FROM json_each(?3))`
	sqlDropMembers = `DELETE FROM members INDEXED BY members_by_object WHERE cid = ? AND oid = ?`
)

func validateObject(o *Object) error {
	switch {
	case o.ID == "":
		return errors.New("empty id")
	case o.Type == "":
		return errors.New("empty type")
	case !strings.HasPrefix(o.ID, o.Type+"--") || len(o.ID) == len(o.Type)+2:
		return fmt.Errorf("id does not have the form %s--<uuid>", o.Type)
	case o.SpecVersion == "":
		return errors.New("empty spec_version")
	case o.TLP < TLPNone || o.TLP > TLPRed:
		return fmt.Errorf("tlp rank %d outside 0..5", o.TLP)
	case len(o.JSON) == 0:
		return errors.New("empty json")
	}
	return nil
}

// Put stores a batch of object versions in a collection (taxii21.md D-1, D-2,
// D-4, D-5). For each object, in order:
//
//   - if the collection's latest version of the id has the same Hash, or a
//     version with the same id and modified is already in the collection,
//     it is Unchanged and nothing is written (a new version needs a new
//     modified: the caller decides it, storage never rewrites JSON);
//   - the version bytes are stored once per (id, modified, hash) however many
//     collections hold them, and a membership row with a fresh date_added is
//     added; is_latest and is_first are kept right in the same transaction.
//
// An invalid object fails the whole call; Update then rolls back, so nothing
// of the batch is kept.
func (tx *Tx) Put(collectionID string, objs []Object) (PutResult, error) {
	var res PutResult
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return res, fmt.Errorf("put: %w", err)
	}
	for i := range objs {
		if err := validateObject(&objs[i]); err != nil {
			return res, fmt.Errorf("put object %d (%q): %w", i, objs[i].ID, err)
		}
	}
	b, err := newPutBatch(tx, cid, objs)
	if err != nil {
		return res, fmt.Errorf("put: %w", err)
	}
	for i := range objs {
		o := objs[i]
		changed, handled, err := b.put(&o)
		if err == nil && !handled {
			if changed, err = tx.putOne(cid, &o); err == nil {
				b.learn(&o)
			}
			b.nextOID, b.nextVID = 0, 0 // it took max(key)+1 keys of its own: reload the counters
			tx.cache.forget(cid, o.ID)
		}
		if err != nil {
			return res, fmt.Errorf("put object %d (%s): %w", i, o.ID, err)
		}
		if changed {
			res.New++
			res.Written = append(res.Written, o.ID)
		} else {
			res.Unchanged++
		}
	}
	if err := b.flush(); err != nil {
		return res, fmt.Errorf("put: %w", err)
	}
	for id, oid := range b.oids {
		tx.cache.learn(id, oid)
	}
	return res, nil
}

func (tx *Tx) putOne(cid int64, o *Object) (changed bool, err error) {
	var (
		oid                      int64
		lDA, lVer, lVersed, lVis sql.NullInt64
		lHash                    []byte
	)
	oid, known, err := tx.oid(o.ID)
	if err != nil {
		return false, err
	}
	if known {
		lst, err := tx.stmt(sqlLatest)
		if err != nil {
			return false, err
		}
		err = lst.QueryRowContext(tx.ctx, cid, oid).Scan(&lDA, &lVer, &lVersed, &lVis, &lHash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("look up latest version: %w", err)
		}
	}
	hasLatest := lDA.Valid
	versioned := !o.Modified.IsZero()
	mod := toMicro(o.Modified)

	if hasLatest {
		if bytes.Equal(lHash, o.Hash[:]) {
			return false, nil
		}
		if versioned && mod <= lVer.Int64 {
			has, err := tx.stmt(sqlHasVersion)
			if err != nil {
				return false, err
			}
			var one int
			err = has.QueryRowContext(tx.ctx, cid, oid, mod).Scan(&one)
			if err == nil {
				return false, nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return false, fmt.Errorf("look up version: %w", err)
			}
		}
	}

	vid, err := tx.versionRow(oid, mod, o)
	if err != nil {
		return false, err
	}
	hidden := hasLatest && lVis.Int64 >= visWithdrawn
	if hasLatest && !versioned {
		// An unversioned object (an SCO, a marking definition) has one
		// version: a change replaces it in place, with a new date_added.
		if err := tx.exec(sqlDropMembers, cid, oid); err != nil {
			return false, fmt.Errorf("replace unversioned object: %w", err)
		}
		hasLatest = false
	}
	da := tx.nextDateAdded()
	ver := mod
	if !versioned {
		ver = toMicro(o.Created)
		if ver == 0 {
			ver = da
		}
	}
	// Latest is the greatest version instant, ties going to the newest row;
	// first is the smallest, ties going to the oldest row.
	latest, first := true, true
	if hasLatest {
		if ver >= lVer.Int64 {
			if err := tx.exec(sqlClearLatest, cid, lDA.Int64); err != nil {
				return false, fmt.Errorf("clear latest flag: %w", err)
			}
			first = false // first.ver <= latest.ver <= ver
		} else {
			latest = false
			fs, err := tx.stmt(sqlFirst)
			if err != nil {
				return false, err
			}
			var fDA, fVer int64
			switch err := fs.QueryRowContext(tx.ctx, cid, oid).Scan(&fDA, &fVer); {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return false, fmt.Errorf("look up first version: %w", err)
			case ver < fVer:
				if err := tx.exec(sqlClearFirst, cid, fDA); err != nil {
					return false, fmt.Errorf("clear first flag: %w", err)
				}
			default:
				first = false
			}
		}
	}
	// Visibility belongs to the object in the collection: a hidden object
	// stays hidden whatever version arrives; a published one is visible at
	// its latest version's TLP rank on every row.
	vis := int64(o.TLP)
	switch {
	case hidden:
		vis = lVis.Int64
	case !latest:
		vis = lVis.Int64
	case hasLatest && lVis.Int64 != vis:
		if err := tx.exec(sqlSetVis, vis, cid, oid); err != nil {
			return false, fmt.Errorf("set visibility: %w", err)
		}
		if vis > lVis.Int64 {
			// Readers below the new rank lose the object without a row
			// they can see: the change mark moves to the new row's
			// date_added (conditional polls, Store.NewestDateAdded).
			if err := tx.exec(`UPDATE collections SET changed = ? WHERE cid = ?`, da, cid); err != nil {
				return false, fmt.Errorf("set visibility: %w", err)
			}
		}
	}
	if err := tx.exec(sqlInsertMember, cid, da, oid, vid, ver, versioned, toMicro(o.Created),
		o.Type, o.SpecVersion, o.TLP, latest, first, vis); err != nil {
		return false, fmt.Errorf("insert membership: %w", err)
	}
	if latest {
		if err := tx.setRefs(cid, oid, EdgeRef, o.Refs); err != nil {
			return false, err
		}
		if err := tx.setRefs(cid, oid, EdgeWant, o.Wants); err != nil {
			return false, err
		}
	}
	return true, nil
}

// oid returns the object key of a STIX id, creating the objects row when
// the id is new; known is false then.
func (tx *Tx) oid(id string) (oid int64, known bool, err error) {
	if oid, ok := tx.cache.oid[id]; ok {
		return oid, true, nil
	}
	st, err := tx.stmt(sqlObject)
	if err != nil {
		return 0, false, err
	}
	err = st.QueryRowContext(tx.ctx, objKey(id)).Scan(&oid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		ins, err := tx.stmt(sqlInsertObject)
		if err != nil {
			return 0, false, err
		}
		if err := ins.QueryRowContext(tx.ctx, objKey(id)).Scan(&oid); err != nil {
			return 0, false, fmt.Errorf("insert object: %w", err)
		}
		tx.learn(id, oid)
		tx.fresh.created(oid, id)
		return oid, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("look up object: %w", err)
	}
	tx.cache.learn(id, oid)
	return oid, true, nil
}

// setRefs makes the ids in dsts the complete set of src's kind-edges.
func (tx *Tx) setRefs(cid, src int64, kind int, dsts []string) error {
	keys := make([]int64, 0, len(dsts))
	var unindexed map[int64]bool
	for _, d := range dsts {
		dst, _, err := tx.oid(d)
		if err != nil {
			return fmt.Errorf("record edge to %s: %w", d, err)
		}
		keys = append(keys, dst)
		unindexed = markUnindexed(unindexed, kind, d, dst)
	}
	if _, err := tx.setEdges(cid, kind, map[int64][]int64{src: keys}, unindexed); err != nil {
		return fmt.Errorf("record edges: %w", err)
	}
	return nil
}

// versionRow returns the row holding this version's bytes, inserting it when
// no collection holds it yet.
func (tx *Tx) versionRow(oid, mod int64, o *Object) (int64, error) {
	find, err := tx.stmt(sqlFindVersion)
	if err != nil {
		return 0, err
	}
	var vid int64
	err = find.QueryRowContext(tx.ctx, oid, mod, o.Hash[:]).Scan(&vid)
	if err == nil {
		return vid, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("look up version bytes: %w", err)
	}
	codec, body := o.stored()
	ins, err := tx.stmt(sqlInsertVersion)
	if err != nil {
		return 0, err
	}
	if err := ins.QueryRowContext(tx.ctx, oid, mod, o.Hash[:], codec, body, o.Revoked, o.TCID, toMicro(o.ValidUntil)).Scan(&vid); err != nil {
		return 0, fmt.Errorf("insert version: %w", err)
	}
	return vid, nil
}

func (tx *Tx) exec(query string, args ...any) error {
	st, err := tx.stmt(query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(tx.ctx, args...)
	return err
}

// Latest returns the latest version of id in the collection; false when the
// collection does not hold id.
func (tx *Tx) Latest(collectionID, id string) (Version, bool, error) {
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return Version{}, false, fmt.Errorf("latest %s: %w", id, err)
	}
	var (
		v                         Version
		ver, created, versed, vis int64
		hash                      []byte
		codec                     int
		body                      []byte
	)
	err = tx.queryRow(`SELECT m.date_added, m.ver, m.versioned, m.created, m.type, m.spec_version, m.tlp, m.vis, v.hash, v.codec, v.json, v.revoked, v.tcid
		FROM members m INDEXED BY members_by_object CROSS JOIN versions v ON v.vid = m.vid
		WHERE m.cid = ?1 AND m.oid = (SELECT oid FROM objects WHERE stix_id = ?2) AND m.latest = 1 LIMIT 1`, cid, objKey(id)).
		Scan(&v.DateAdded, &ver, &versed, &created, &v.Type, &v.SpecVersion, &v.TLP, &vis, &hash, &codec, &body, &v.Revoked, &v.TCID)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, fmt.Errorf("latest %s: %w", id, err)
	}
	v.ID = id
	v.Vis = visibilityOf(int(vis))
	v.Created = fromMicro(created)
	if versed == 1 {
		v.Modified = fromMicro(ver)
	}
	copy(v.Hash[:], hash)
	if v.JSON, err = decodeJSON(codec, body); err != nil {
		return Version{}, false, fmt.Errorf("latest %s: %w", id, err)
	}
	return v, true, nil
}

// Remove is TAXII DELETE for a reader whose TLP cap is maxTLP (TLPRed: no
// cap). It drops the memberships of id in the collection that the reader
// can see and reports whether it dropped any. An object whose latest
// version in the collection is above maxTLP is invisible to that reader
// (DESIGN.md §10): nothing is dropped and Remove reports false, exactly as
// for an id the collection does not hold. Versions above maxTLP of a
// visible object stay, and the is_latest and is_first flags move to what
// remains. Version bytes no collection holds any more are purged.
func (tx *Tx) Remove(collectionID, id string, maxTLP int) (bool, error) {
	tx.cache.reset()
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	var oid int64
	err = tx.queryRow("SELECT oid FROM objects WHERE stix_id = ?", objKey(id)).Scan(&oid)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	var latestTLP int
	err = tx.queryRow(`SELECT tlp FROM members INDEXED BY members_by_object
		WHERE cid = ? AND oid = ? AND latest = 1 LIMIT 1`, cid, oid).Scan(&latestTLP)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && latestTLP > maxTLP) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	r, err := tx.execResult("DELETE FROM members INDEXED BY members_by_object WHERE cid = ? AND oid = ? AND tlp <= ?", cid, oid, maxTLP)
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	// Versions the reader could not see may remain: the latest and first
	// flags move to them (latest: greatest version instant, ties to the
	// newest membership; first: smallest, ties to the oldest).
	if err := tx.exec(`UPDATE members INDEXED BY members_by_object SET
			latest = CASE WHEN date_added = (SELECT date_added FROM members INDEXED BY members_by_object
				WHERE cid = ?1 AND oid = ?2 ORDER BY ver DESC, date_added DESC LIMIT 1) THEN 1 ELSE 0 END,
			first = CASE WHEN date_added = (SELECT date_added FROM members INDEXED BY members_by_object
				WHERE cid = ?1 AND oid = ?2 ORDER BY ver, date_added LIMIT 1) THEN 1 ELSE 0 END
		WHERE cid = ?1 AND oid = ?2`, cid, oid); err != nil {
		return false, fmt.Errorf("remove %s: move latest and first flags: %w", id, err)
	}
	// vis follows the latest version that remains, unless the object is
	// hidden in the collection.
	if err := tx.exec(`UPDATE members INDEXED BY members_by_object SET vis = coalesce((SELECT tlp FROM members INDEXED BY members_by_object
			WHERE cid = ?1 AND oid = ?2 AND latest = 1), vis)
		WHERE cid = ?1 AND oid = ?2 AND vis < ?3`, cid, oid, visWithdrawn); err != nil {
		return false, fmt.Errorf("remove %s: keep visibility: %w", id, err)
	}
	if err := tx.changed(cid); err != nil {
		return false, fmt.Errorf("remove %s: %w", id, err)
	}
	var held int
	err = tx.queryRow(`SELECT count(*) FROM collections c
		WHERE EXISTS (SELECT 1 FROM members m WHERE m.cid = c.cid AND m.oid = ?)`, oid).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("remove %s: check other collections: %w", id, err)
	}
	if held == 0 {
		if _, err := tx.execResult("DELETE FROM versions WHERE oid = ?", oid); err != nil {
			return false, fmt.Errorf("remove %s: purge versions: %w", id, err)
		}
		if _, err := tx.execResult("DELETE FROM objects WHERE oid = ?", oid); err != nil {
			return false, fmt.Errorf("remove %s: purge object: %w", id, err)
		}
		// The key may be handed out again: no edge may keep naming it.
		if err := tx.dropKey(oid, id); err != nil {
			return false, fmt.Errorf("remove %s: purge edges: %w", id, err)
		}
	} else if err := tx.exec(`DELETE FROM versions WHERE oid = ?1 AND NOT EXISTS (
			SELECT 1 FROM collections c WHERE EXISTS (
				SELECT 1 FROM members m INDEXED BY members_by_object
				WHERE m.cid = c.cid AND m.oid = ?1 AND m.vid = versions.vid))`, oid); err != nil {
		return false, fmt.Errorf("remove %s: purge bytes: %w", id, err)
	}
	return n > 0, nil
}

// PruneVersions applies a retention window to a collection's version history
// (taxii21.md D-5, D-6): it drops every membership that is not the latest
// version of its object and was added before addedBefore (µs since the
// epoch), moves is_first to the oldest remaining version, and purges version
// bytes no collection holds any more. It returns the number of memberships
// dropped. Latest versions are never pruned; use Remove for those.
func (tx *Tx) PruneVersions(collectionID string, addedBefore int64) (int, error) {
	tx.cache.reset()
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return 0, fmt.Errorf("prune versions: %w", err)
	}
	rows, err := tx.query(`SELECT DISTINCT oid FROM members NOT INDEXED
		WHERE cid = ? AND date_added < ? AND latest = 0`, cid, addedBefore)
	if err != nil {
		return 0, fmt.Errorf("prune versions: find candidates: %w", err)
	}
	var oids []int64
	for rows.Next() {
		var oid int64
		if err := rows.Scan(&oid); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune versions: find candidates: %w", err)
		}
		oids = append(oids, oid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("prune versions: find candidates: %w", err)
	}
	if len(oids) == 0 {
		return 0, nil
	}
	r, err := tx.execResult("DELETE FROM members WHERE cid = ? AND date_added < ? AND latest = 0", cid, addedBefore)
	if err != nil {
		return 0, fmt.Errorf("prune versions: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune versions: %w", err)
	}
	for _, oid := range oids {
		if err := tx.exec(`UPDATE members INDEXED BY members_by_object SET first = CASE WHEN date_added = (
				SELECT date_added FROM members INDEXED BY members_by_object
				WHERE cid = ?1 AND oid = ?2 ORDER BY ver, date_added LIMIT 1) THEN 1 ELSE 0 END
			WHERE cid = ?1 AND oid = ?2`, cid, oid); err != nil {
			return 0, fmt.Errorf("prune versions: move first flag: %w", err)
		}
		if err := tx.exec(`DELETE FROM versions WHERE oid = ?1 AND NOT EXISTS (
				SELECT 1 FROM collections c WHERE EXISTS (
					SELECT 1 FROM members m INDEXED BY members_by_object
					WHERE m.cid = c.cid AND m.oid = ?1 AND m.vid = versions.vid))`, oid); err != nil {
			return 0, fmt.Errorf("prune versions: purge bytes: %w", err)
		}
	}
	if n > 0 {
		if err := tx.changed(cid); err != nil {
			return 0, fmt.Errorf("prune versions: %w", err)
		}
	}
	return int(n), nil
}

// changed records that the collection's listings changed without a new
// date_added (an object hidden, removed or pruned): NewestDateAdded then
// moves, so conditional polls (ETags) see the change.
func (tx *Tx) changed(cid int64) error {
	return tx.exec(`UPDATE collections SET changed = ? WHERE cid = ?`, tx.nextDateAdded(), cid)
}
