package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// This file is the store's side of the publication rule (DESIGN.md §10):
// per-collection visibility, the reference graph as edges, and the batch
// lookups the sync decides from. Storage keeps these as data; what they mean
// for STIX is decided by the caller.

// Meta returns the latest-version metadata of each of ids that the
// collection holds, keyed by id, in one query.
func (tx *Tx) Meta(collectionID string, ids []string) (map[string]Meta, error) {
	out := make(map[string]Meta, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	st, err := tx.stmt(`SELECT o.stix_id, m.type, m.ver, m.versioned, m.date_added, m.tlp, m.vis, v.hash, v.revoked, v.tcid
		FROM objects o CROSS JOIN members m INDEXED BY members_by_object CROSS JOIN versions v ON v.vid = m.vid
		WHERE o.stix_id IN (SELECT value FROM json_each(?2)) AND m.cid = ?1 AND m.oid = o.oid AND m.latest = 1`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, cid, jsonList(ids))
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			m                Meta
			ver, versed, vis int64
			hash             []byte
		)
		if err := rows.Scan(&m.ID, &m.Type, &ver, &versed, &m.DateAdded, &m.TLP, &vis, &hash, &m.Revoked, &m.TCID); err != nil {
			return nil, fmt.Errorf("read metadata: %w", err)
		}
		if versed == 1 {
			m.Modified = fromMicro(ver)
		}
		m.Vis = visibilityOf(int(vis))
		copy(m.Hash[:], hash)
		out[m.ID] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	return out, nil
}

// Referrers returns, for each of ids, the ids whose edges of this kind
// point at it in the collection (who references X, who X was derived from).
func (tx *Tx) Referrers(collectionID string, kind int, ids []string) (map[string][]string, error) {
	return tx.edges(collectionID, kind, ids, `SELECT d.stix_id, s.stix_id
		FROM objects d CROSS JOIN edges e CROSS JOIN objects s
		WHERE d.stix_id IN (SELECT value FROM json_each(?3)) AND e.cid = ?1 AND e.dst = d.oid AND e.kind = ?2 AND s.oid = e.src`)
}

// Targets returns, for each of ids, the ids its edges of this kind point at
// in the collection (what X references, what was derived from item X).
func (tx *Tx) Targets(collectionID string, kind int, ids []string) (map[string][]string, error) {
	return tx.edges(collectionID, kind, ids, `SELECT s.stix_id, d.stix_id
		FROM objects s CROSS JOIN edges e INDEXED BY edges_by_src CROSS JOIN objects d
		WHERE s.stix_id IN (SELECT value FROM json_each(?3)) AND e.cid = ?1 AND e.src = s.oid AND e.kind = ?2 AND d.oid = e.dst`)
}

func (tx *Tx) edges(collectionID string, kind int, ids []string, query string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return nil, fmt.Errorf("read edges: %w", err)
	}
	st, err := tx.stmt(query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, cid, kind, jsonList(ids))
	if err != nil {
		return nil, fmt.Errorf("read edges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read edges: %w", err)
		}
		out[k] = append(out[k], v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read edges: %w", err)
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out, nil
}

// SetOrigins makes dsts the complete set of objects derived from item src in
// the collection and returns the ones that were derived from it before and
// are not any more.
func (tx *Tx) SetOrigins(collectionID, src string, dsts []string) (gone []string, err error) {
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return nil, fmt.Errorf("set origins of %s: %w", src, err)
	}
	soid, _, err := tx.oid(src)
	if err != nil {
		return nil, fmt.Errorf("set origins of %s: %w", src, err)
	}
	before, err := tx.Targets(collectionID, EdgeOrigin, []string{src})
	if err != nil {
		return nil, err
	}
	for _, d := range before[src] {
		if !slices.Contains(dsts, d) {
			gone = append(gone, d)
			doid, _, err := tx.oid(d)
			if err != nil {
				return nil, err
			}
			if err := tx.exec(`DELETE FROM edges WHERE cid = ? AND dst = ? AND kind = 1 AND src = ?`, cid, doid, soid); err != nil {
				return nil, fmt.Errorf("set origins of %s: %w", src, err)
			}
		}
	}
	var add []string
	for _, d := range dsts {
		if !slices.Contains(before[src], d) {
			add = append(add, d)
		}
	}
	if err := tx.addEdges(cid, soid, EdgeOrigin, add); err != nil {
		return nil, fmt.Errorf("set origins of %s: %w", src, err)
	}
	return gone, nil
}

// Holding returns, for each of ids, the public ids of the collections that
// hold it (in any visibility).
func (tx *Tx) Holding(ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	st, err := tx.stmt(`SELECT o.stix_id, c.id FROM objects o CROSS JOIN collections c
		WHERE o.stix_id IN (SELECT value FROM json_each(?)) AND EXISTS (
			SELECT 1 FROM members m INDEXED BY members_by_object WHERE m.cid = c.cid AND m.oid = o.oid)`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, jsonList(ids))
	if err != nil {
		return nil, fmt.Errorf("find collections holding objects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, col string
		if err := rows.Scan(&id, &col); err != nil {
			return nil, fmt.Errorf("find collections holding objects: %w", err)
		}
		out[id] = append(out[id], col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find collections holding objects: %w", err)
	}
	return out, nil
}

// SetVisibility changes an object's visibility in the collection and
// reports whether it changed. Publishing an object that was hidden gives
// its latest version a fresh date_added, so that a reader polling with
// added_after sees it appear (taxii21.md D-1, D-2); hiding keeps every row.
// An id the collection does not hold is not an error: nothing changes.
func (tx *Tx) SetVisibility(collectionID, id string, v Visibility) (bool, error) {
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return false, fmt.Errorf("set visibility of %s: %w", id, err)
	}
	var oid, da, tlpRank, vis int64
	err = tx.tx.QueryRowContext(tx.ctx, `SELECT m.oid, m.date_added, m.tlp, m.vis FROM members m INDEXED BY members_by_object
		WHERE m.cid = ?1 AND m.oid = (SELECT oid FROM objects WHERE stix_id = ?2) AND m.latest = 1 LIMIT 1`, cid, id).
		Scan(&oid, &da, &tlpRank, &vis)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("set visibility of %s: %w", id, err)
	}
	want := int64(v.rank())
	if v == Published {
		want = tlpRank
	}
	if want == vis {
		return false, nil
	}
	if err := tx.exec(sqlSetVis, want, cid, oid); err != nil {
		return false, fmt.Errorf("set visibility of %s: %w", id, err)
	}
	if v == Published && vis >= visWithdrawn {
		if err := tx.exec(`UPDATE members SET date_added = ? WHERE cid = ? AND date_added = ?`, tx.nextDateAdded(), cid, da); err != nil {
			return false, fmt.Errorf("publish %s: %w", id, err)
		}
	} else if err := tx.changed(cid); err != nil {
		return false, fmt.Errorf("set visibility of %s: %w", id, err)
	}
	return true, nil
}

// Backfill calls fn with the latest version of every object of the
// collection, in batches, and stores what it returns: the version's revoked
// flag and ThreatConnect id, and its reference edges. It fills the columns
// and edges of a store written before they existed (migration 0003).
func (tx *Tx) Backfill(collectionID string, fn func(v Version) (refs []string, revoked bool, tcid int64)) (int, error) {
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return 0, fmt.Errorf("backfill: %w", err)
	}
	type row struct {
		oid, vid int64
		v        Version
	}
	var todo []row
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT m.oid, m.vid, o.stix_id, m.type, v.codec, v.json
		FROM members m NOT INDEXED CROSS JOIN objects o ON o.oid = m.oid CROSS JOIN versions v ON v.vid = m.vid
		WHERE m.cid = ? AND m.latest = 1`, cid)
	if err != nil {
		return 0, fmt.Errorf("backfill: %w", err)
	}
	for rows.Next() {
		var r row
		var codec int
		var body []byte
		if err := rows.Scan(&r.oid, &r.vid, &r.v.ID, &r.v.Type, &codec, &body); err != nil {
			rows.Close()
			return 0, fmt.Errorf("backfill: %w", err)
		}
		if r.v.JSON, err = decodeJSON(codec, body); err != nil {
			rows.Close()
			return 0, fmt.Errorf("backfill %s: %w", r.v.ID, err)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("backfill: %w", err)
	}
	for _, r := range todo {
		refs, revoked, tcid := fn(r.v)
		if err := tx.exec(`UPDATE versions SET revoked = ?, tcid = ? WHERE vid = ?`, revoked, tcid, r.vid); err != nil {
			return 0, fmt.Errorf("backfill %s: %w", r.v.ID, err)
		}
		if err := tx.addEdges(cid, r.oid, EdgeRef, refs); err != nil {
			return 0, fmt.Errorf("backfill %s: %w", r.v.ID, err)
		}
	}
	return len(todo), nil
}

// Items returns the latest versions in the collection that carry a
// ThreatConnect id and are not revoked: the items the collection holds.
func (tx *Tx) Items(collectionID string) ([]Meta, error) {
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT o.stix_id, m.type, v.tcid
		FROM members m NOT INDEXED CROSS JOIN versions v ON v.vid = m.vid CROSS JOIN objects o ON o.oid = m.oid
		WHERE m.cid = ? AND m.latest = 1 AND v.tcid <> 0 AND v.revoked = 0`, cid)
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	var out []Meta
	for rows.Next() {
		var m Meta
		if err := rows.Scan(&m.ID, &m.Type, &m.TCID); err != nil {
			return nil, fmt.Errorf("list items: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
