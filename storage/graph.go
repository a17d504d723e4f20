package storage

import (
	"fmt"
	"maps"
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
	tx.cache.init()
	var ask []string
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		c, ok := tx.cache.latest[colID{cid, id}]
		switch {
		case !ok && !asked[id]:
			asked[id] = true
			ask = append(ask, id)
		case c.held:
			out[id] = c.m
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	byKey, list, err := tx.resolveKeys(ask)
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	if len(list) > 0 {
		st, err := tx.stmt(`SELECT m.oid, m.type, m.ver, m.versioned, m.date_added, m.tlp, m.vis, v.hash, v.revoked, v.tcid
		FROM members m INDEXED BY members_by_object CROSS JOIN versions v ON v.vid = m.vid
		WHERE m.cid = ?1 AND m.oid IN (SELECT CAST(value AS INTEGER) FROM json_each(?2)) AND m.latest = 1`)
		if err != nil {
			return nil, err
		}
		rows, err := st.QueryContext(tx.ctx, cid, jsonList(list))
		if err != nil {
			return nil, fmt.Errorf("read metadata: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m                     Meta
				oid, ver, versed, vis int64
				hash                  []byte
			)
			if err := rows.Scan(&oid, &m.Type, &ver, &versed, &m.DateAdded, &m.TLP, &vis, &hash, &m.Revoked, &m.TCID); err != nil {
				return nil, fmt.Errorf("read metadata: %w", err)
			}
			m.ID = byKey[oid]
			if versed == 1 {
				m.Modified = fromMicro(ver)
			}
			m.Vis = visibilityOf(int(vis))
			copy(m.Hash[:], hash)
			out[m.ID] = m
			tx.cache.latest[colID{cid, m.ID}] = cachedMeta{held: true, oid: oid, vis: vis, m: m}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read metadata: %w", err)
		}
	}
	for _, id := range ask {
		if _, ok := out[id]; !ok {
			tx.cache.latest[colID{cid, id}] = cachedMeta{}
		}
	}
	return out, nil
}

// Referrers returns, for each of ids, the ids whose edges of this kind
// point at it in the collection (who references X, who X was derived from).
func (tx *Tx) Referrers(collectionID string, kind int, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	cid, byKey, list, err := tx.graphKeys(collectionID, ids)
	if err != nil || len(list) == 0 {
		return out, err
	}
	// Targets without reverse rows are answered from the lists, the
	// others from memory (keys made in this transaction) or edges.
	var indexed, scan []int64
	for _, k := range list {
		if reverseIndexed(kind, idType(byKey[k])) {
			indexed = append(indexed, k)
		} else {
			scan = append(scan, k)
		}
	}
	fresh, ask := tx.fresh.referrers(cid, kind, indexed)
	scanned, err := tx.scanReferrers(cid, kind, scan)
	if err != nil {
		return nil, err
	}
	for k, rs := range scanned {
		for _, r := range rs {
			fresh[k] = append(fresh[k], r.src)
		}
	}
	var unnamed []int64
	for _, srcs := range fresh {
		for _, s := range srcs {
			if _, ok := tx.fresh.names[s]; !ok {
				unnamed = append(unnamed, s)
			}
		}
	}
	names, err := tx.idsOf(sortedKeys(unnamed))
	if err != nil {
		return nil, err
	}
	for k, srcs := range fresh {
		for _, s := range srcs {
			n, ok := tx.fresh.names[s]
			if !ok {
				n = names[s]
			}
			out[byKey[k]] = append(out[byKey[k]], n)
		}
	}
	if err := tx.readReferrers(cid, kind, ask, byKey, out); err != nil {
		return nil, err
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out, nil
}

// readReferrers adds to out, for each of keys (named by byKey), the
// sources of its kind-edges that the edges table holds.
func (tx *Tx) readReferrers(cid int64, kind int, keys []int64, byKey map[int64]string, out map[string][]string) error {
	if len(keys) == 0 {
		return nil
	}
	st, err := tx.stmt(`SELECT e.dst, s.stix_id FROM edges e CROSS JOIN objects s
		WHERE e.cid = ?1 AND e.dst IN (SELECT CAST(value AS INTEGER) FROM json_each(?3)) AND e.kind = ?2 AND s.oid = e.src`)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(tx.ctx, cid, kind, jsonList(keys))
	if err != nil {
		return fmt.Errorf("read edges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k int64
		var v string
		if err := rows.Scan(&k, &v); err != nil {
			return fmt.Errorf("read edges: %w", err)
		}
		id := byKey[k]
		out[id] = append(out[id], stixID(v))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read edges: %w", err)
	}
	return nil
}

// Targets returns, for each of ids, the ids its edges of this kind point at
// in the collection (what X references, what was derived from item X).
func (tx *Tx) Targets(collectionID string, kind int, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	cid, byKey, list, err := tx.graphKeys(collectionID, ids)
	if err != nil || len(list) == 0 {
		return out, err
	}
	fwd, err := tx.targetKeys(cid, kind, list)
	if err != nil {
		return nil, err
	}
	var keys []int64
	for _, ds := range fwd {
		keys = append(keys, ds...)
	}
	names, err := tx.idsOf(sortedKeys(keys))
	if err != nil {
		return nil, err
	}
	for src, ds := range fwd {
		id := byKey[src]
		for _, d := range ds {
			if n, ok := names[d]; ok {
				out[id] = append(out[id], n)
			}
		}
		slices.Sort(out[id])
	}
	return out, nil
}

// graphKeys is what Referrers and Targets start from: the collection's key
// and the object keys of ids (those that have one), both ways.
func (tx *Tx) graphKeys(collectionID string, ids []string) (cid int64, byKey map[int64]string, list []int64, err error) {
	if len(ids) == 0 {
		return 0, nil, nil, nil
	}
	if cid, err = tx.s.cid(tx.ctx, tx.tx, collectionID); err != nil {
		return 0, nil, nil, fmt.Errorf("read edges: %w", err)
	}
	if byKey, list, err = tx.resolveKeys(ids); err != nil {
		return 0, nil, nil, fmt.Errorf("read edges: %w", err)
	}
	return cid, byKey, list, nil
}

// SetOrigins makes, for each item src in items, items[src] the complete
// set of objects derived from it in the collection, and returns per item
// the ones that were derived from it before and are not any more. It reads
// and writes in a few statements whatever the batch size.
func (tx *Tx) SetOrigins(collectionID string, items map[string][]string) (gone map[string][]string, err error) {
	gone = map[string][]string{}
	if len(items) == 0 {
		return gone, nil
	}
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return nil, fmt.Errorf("set origins: %w", err)
	}
	var ids []string
	for s, ds := range items {
		ids = append(ids, s)
		ids = append(ids, ds...)
	}
	oids, err := tx.oids(ids)
	if err != nil {
		return nil, fmt.Errorf("set origins: %w", err)
	}
	want := make(map[int64][]int64, len(items))
	var unindexed map[int64]bool
	for s, ds := range items {
		keys := make([]int64, 0, len(ds))
		for _, d := range ds {
			keys = append(keys, oids[d])
			unindexed = markUnindexed(unindexed, EdgeOrigin, d, oids[d])
		}
		want[oids[s]] = keys
	}
	goneKeys, err := tx.setEdges(cid, EdgeOrigin, want, unindexed)
	if err != nil {
		return nil, fmt.Errorf("set origins: %w", err)
	}
	var all []int64
	for _, ks := range goneKeys {
		all = append(all, ks...)
	}
	names, err := tx.idsOf(sortedKeys(all))
	if err != nil {
		return nil, fmt.Errorf("set origins: %w", err)
	}
	for s := range items {
		for _, k := range goneKeys[oids[s]] {
			gone[s] = append(gone[s], names[k])
		}
		slices.Sort(gone[s])
	}
	return gone, nil
}

// oids returns the object keys of ids, creating the objects rows of ids
// no row holds yet.
func (tx *Tx) oids(ids []string) (map[string]int64, error) {
	out, err := tx.resolve(ids)
	if err != nil {
		return nil, err
	}
	// The rest have no row (resolve asked): keys given out and inserted as
	// Put gives them (putBatch.newOID), in one multi-row insert.
	b := putBatch{tx: tx, oids: out}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			if b.nextOID == 0 {
				if err := b.loadNextIDs(); err != nil {
					return nil, err
				}
			}
			tx.cache.learn(id, b.newOID(id))
		}
	}
	if err := b.flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// Holding returns, for each of ids, the public ids of the collections that
// hold it (in any visibility).
func (tx *Tx) Holding(ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	byKey, list, err := tx.resolveKeys(ids)
	if err != nil {
		return nil, fmt.Errorf("find collections holding objects: %w", err)
	}
	if len(list) == 0 {
		return out, nil
	}
	st, err := tx.stmt(`SELECT CAST(o.value AS INTEGER), c.id FROM json_each(?) o CROSS JOIN collections c
		WHERE EXISTS (SELECT 1 FROM members m INDEXED BY members_by_object WHERE m.cid = c.cid AND m.oid = CAST(o.value AS INTEGER))`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, jsonList(list))
	if err != nil {
		return nil, fmt.Errorf("find collections holding objects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid int64
		var col string
		if err := rows.Scan(&oid, &col); err != nil {
			return nil, fmt.Errorf("find collections holding objects: %w", err)
		}
		id := byKey[oid]
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
	changed, err := tx.SetVisibilities(collectionID, map[string]Visibility{id: v})
	return len(changed) > 0, err
}

// SetVisibilities is SetVisibility for many ids of one collection at once:
// one read of their current state, one write per new visibility value
// (and one per object published again). It returns the
// ids whose visibility changed, sorted.
func (tx *Tx) SetVisibilities(collectionID string, want map[string]Visibility) ([]string, error) {
	if len(want) == 0 {
		return nil, nil
	}
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return nil, fmt.Errorf("set visibility: %w", err)
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// The current state, from what the transaction read already (Meta).
	metas, err := tx.Meta(collectionID, ids)
	if err != nil {
		return nil, fmt.Errorf("set visibility: %w", err)
	}
	type cur struct{ oid, da, tlp, vis int64 }
	state := make(map[string]cur, len(metas))
	for id, m := range metas {
		c := tx.cache.latest[colID{cid, id}]
		state[id] = cur{oid: c.oid, da: m.DateAdded, tlp: int64(m.TLP), vis: c.vis}
	}
	// Rows whose vis column alone changes are updated with one statement
	// per new value (a sync blocks and unblocks many relationships at
	// once); a hidden object published again also moves to a new
	// date_added, so pollers see it (one statement each: the row moves in
	// the primary key).
	var changed []string
	hid := false
	byVis := map[int64][]int64{}
	for _, id := range ids {
		c, ok := state[id]
		if !ok {
			continue
		}
		v := want[id]
		to := int64(v.rank())
		if v == Published {
			to = c.tlp
		}
		if to == c.vis {
			continue
		}
		byVis[to] = append(byVis[to], c.oid)
		changed = append(changed, id)
	}
	for _, to := range slices.Sorted(maps.Keys(byVis)) {
		if err := tx.exec(sqlSetVisMany, to, cid, jsonList(byVis[to])); err != nil {
			return nil, fmt.Errorf("set visibility: %w", err)
		}
	}
	for _, id := range changed {
		c, v := state[id], want[id]
		key := colID{cid, id}
		cm := tx.cache.latest[key]
		cm.vis, cm.m.Vis = int64(v.rank()), v
		if v == Published {
			cm.vis = c.tlp
		}
		if v == Published && c.vis >= visWithdrawn {
			da := tx.nextDateAdded()
			if err := tx.exec(`UPDATE members SET date_added = ? WHERE cid = ? AND date_added = ?`, da, cid, c.da); err != nil {
				return nil, fmt.Errorf("publish %s: %w", id, err)
			}
			cm.m.DateAdded = da
		} else {
			hid = true
		}
		tx.cache.latest[key] = cm // what Meta would now read back
	}
	if hid {
		if err := tx.changed(cid); err != nil {
			return nil, fmt.Errorf("set visibility: %w", err)
		}
	}
	return changed, nil
}

// Backfill calls fn with the latest version of every object of the
// collection, in batches, and stores what it returns: the version's revoked
// flag and ThreatConnect id, and its reference edges. It fills the columns
// and edges of a store written before they existed (migration 0003).
func (tx *Tx) Backfill(collectionID string, fn func(v Version) (refs []string, revoked bool, tcid int64)) (int, error) {
	tx.cache.reset()
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return 0, fmt.Errorf("backfill: %w", err)
	}
	type row struct {
		oid, vid int64
		v        Version
	}
	var todo []row
	rows, err := tx.query(`SELECT m.oid, m.vid, o.stix_id, m.type, v.codec, v.json
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
		r.v.ID = stixID(r.v.ID)
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
		if err := tx.setRefs(cid, r.oid, EdgeRef, refs); err != nil {
			return 0, fmt.Errorf("backfill %s: %w", r.v.ID, err)
		}
	}
	return len(todo), nil
}

// Items returns the latest versions in the collection that carry a
// ThreatConnect id and are not revoked (the items the collection holds)
// for which keep, called on each as it is read, is true: a caller looking
// for a few of a million items holds only those.
func (tx *Tx) Items(collectionID string, keep func(Meta) bool) ([]Meta, error) {
	cid, err := tx.s.cid(tx.ctx, tx.tx, collectionID)
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	rows, err := tx.query(`SELECT o.stix_id, m.type, v.tcid
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
		m.ID = stixID(m.ID)
		if keep(m) {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}
