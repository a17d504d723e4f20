package storage

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// The reference graph's two tables (migration 0004).
//
// refs holds what a source references: one row per (collection, source,
// kind) whose dsts is the sorted list of target keys as uvarints. edges
// holds the same edges one row per edge keyed by target, for "who
// references X". Before 0004 edges also had an index by source, two b-tree
// entries per edge; a source's row in refs costs about a third of its
// edges' index entries, in bytes and in inserts.
//
// Every write of a source's edges goes through setEdges (or, for sources
// new to the collection, putBatch's rows), which keeps the two tables
// equal: edges has the row (cid, dst, kind, src) exactly when dst is in
// the dsts of refs row (cid, src, kind) and the target is reverse-indexed
// (reverseIndexed, migration 0005).

// reverseIndexed tells whether edges holds the kind-edges to targets of
// STIX type typ. refs holds every edge; edges, the index by target, leaves
// out about half of them, whose target a sync never asks about:
//
//   - references to identities and marking definitions (created_by_ref,
//     object_marking_refs): nearly every object of a collection makes
//     one, so their list would be the collection itself;
//   - the origins of relationships and marking definitions: one item
//     derives each, and only an observable's origins are ever asked for.
//
// Referrers of such a target, and dropKey of one, read the kind's refs
// lists instead (scanReferrers): the same answer, at the cost of a scan of
// the collection's lists (every collection's, for dropKey).
func reverseIndexed(kind int, typ string) bool {
	switch kind {
	case EdgeRef:
		return typ != "identity" && typ != "marking-definition"
	case EdgeOrigin:
		return typ != "relationship" && typ != "marking-definition"
	}
	return true
}

// idType is the type of a STIX id (what precedes "--").
func idType(id string) string {
	t, _, _ := strings.Cut(id, "--")
	return t
}

// markUnindexed adds key, the key of id, to set (made on first use) when
// kind-edges to id have no reverse row, and returns set: what setEdges
// takes as unindexed.
func markUnindexed(set map[int64]bool, kind int, id string, key int64) map[int64]bool {
	if reverseIndexed(kind, idType(id)) {
		return set
	}
	if set == nil {
		set = map[int64]bool{}
	}
	set[key] = true
	return set
}

// scanReferrers answers Referrers for targets without reverse rows: the
// sources, per target key, of the kind-lists in collection cid (every
// collection when cid is 0, each source once per collection) that name one
// of keys.
func (tx *Tx) scanReferrers(cid int64, kind int, keys []int64) (map[int64][]refSource, error) {
	out := map[int64][]refSource{}
	if len(keys) == 0 {
		return out, nil
	}
	want := make(map[int64]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	q, args := `SELECT cid, src, dsts FROM refs WHERE cid = ? AND kind = ?`, []any{cid, kind}
	if cid == 0 {
		q, args = `SELECT cid, src, dsts FROM refs WHERE kind = ?`, []any{kind}
	}
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("read references: %w", err)
	}
	defer rows.Close()
	var b []byte
	for rows.Next() {
		var r refSource
		if err := rows.Scan(&r.cid, &r.src, &b); err != nil {
			return nil, fmt.Errorf("read references: %w", err)
		}
		dsts, err := unpackKeys(b)
		if err != nil {
			return nil, fmt.Errorf("read references of key %d: %w", r.src, err)
		}
		for _, d := range dsts {
			if want[d] {
				out[d] = append(out[d], r)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read references: %w", err)
	}
	return out, nil
}

// refSource is a source of a refs list: its collection and key.
type refSource struct{ cid, src int64 }

// packKeys is the dsts column of a sorted, duplicate-free key list.
func packKeys(keys []int64) []byte {
	b := make([]byte, 0, 4*len(keys))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(k))
	}
	return b
}

// unpackKeys is the key list of a dsts column.
func unpackKeys(b []byte) ([]int64, error) {
	var out []int64
	for len(b) > 0 {
		k, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("damaged reference list")
		}
		out = append(out, int64(k))
		b = b[n:]
	}
	return out, nil
}

// sortedKeys sorts keys and drops duplicates, in place.
func sortedKeys(keys []int64) []int64 {
	slices.Sort(keys)
	return slices.Compact(keys)
}

// targetKeys returns the targets of each of srcs' kind-edges in the
// collection, by source key.
func (tx *Tx) targetKeys(cid int64, kind int, srcs []int64) (map[int64][]int64, error) {
	out := map[int64][]int64{}
	if len(srcs) == 0 {
		return out, nil
	}
	st, err := tx.stmt(`SELECT src, dsts FROM refs WHERE cid = ?1 AND kind = ?2 AND src IN (SELECT CAST(value AS INTEGER) FROM json_each(?3))`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, cid, kind, jsonList(srcs))
	if err != nil {
		return nil, fmt.Errorf("read references: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var src int64
		var dsts []byte
		if err := rows.Scan(&src, &dsts); err != nil {
			return nil, fmt.Errorf("read references: %w", err)
		}
		if out[src], err = unpackKeys(dsts); err != nil {
			return nil, fmt.Errorf("read references of object key %d: %w", src, err)
		}
	}
	return out, rows.Err()
}

// setEdges makes want[src] the complete set of src's kind-edges in the
// collection, for each src of want, writing only the difference from what
// is stored; targets in unindexed have no reverse row (reverseIndexed). It
// returns, per source, the targets it no longer has.
func (tx *Tx) setEdges(cid int64, kind int, want map[int64][]int64, unindexed map[int64]bool) (gone map[int64][]int64, err error) {
	srcs := make([]int64, 0, len(want))
	for s := range want {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	have, err := tx.targetKeys(cid, kind, srcs)
	if err != nil {
		return nil, err
	}
	gone = map[int64][]int64{}
	var add, lists []any
	for _, s := range srcs {
		w := sortedKeys(want[s])
		h := have[s]
		if slices.Equal(w, h) {
			continue
		}
		for _, d := range h {
			if _, found := slices.BinarySearch(w, d); !found {
				gone[s] = append(gone[s], d)
				if unindexed[d] {
					continue
				}
				if err := tx.exec(`DELETE FROM edges WHERE cid = ? AND dst = ? AND kind = ? AND src = ?`, cid, d, kind, s); err != nil {
					return nil, fmt.Errorf("drop edge: %w", err)
				}
				tx.fresh.remove(cid, kind, d, s)
			}
		}
		for _, d := range w {
			if _, found := slices.BinarySearch(h, d); !found && !unindexed[d] {
				add = append(add, cid, d, kind, s)
				tx.fresh.add(cid, kind, d, s)
			}
		}
		if len(w) == 0 {
			if err := tx.exec(`DELETE FROM refs WHERE cid = ? AND src = ? AND kind = ?`, cid, s, kind); err != nil {
				return nil, fmt.Errorf("write references: %w", err)
			}
		} else {
			lists = append(lists, cid, s, kind, packKeys(w))
		}
	}
	// One multi-row statement per table: a batch of new items sets the
	// origins of a thousand sources at once. Each source appears once.
	b := putBatch{tx: tx}
	if err := b.insert(refInsert, 4, lists); err != nil {
		return nil, err
	}
	if err := b.insert(edgeInsert, 4, add); err != nil {
		return nil, err
	}
	return gone, nil
}

// The multi-row inserts of the two tables. A source new to a collection
// may have rows from before it left it (Remove keeps what a hidden version
// still references), hence the conflict clauses.
const (
	refInsert  = "refs (cid, src, kind, dsts)"
	edgeInsert = "edges (cid, dst, kind, src)"
)

// onConflict is the conflict clause of each multi-row insert that has one.
var onConflict = map[string]string{
	refInsert:  " ON CONFLICT (cid, src, kind) DO UPDATE SET dsts = excluded.dsts",
	edgeInsert: " ON CONFLICT DO NOTHING",
}

// idsOf returns the STIX ids of object keys.
func (tx *Tx) idsOf(keys []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	st, err := tx.stmt(`SELECT oid, stix_id FROM objects WHERE oid IN (SELECT CAST(value AS INTEGER) FROM json_each(?))`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(tx.ctx, jsonList(keys))
	if err != nil {
		return nil, fmt.Errorf("read object ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k int64
		var key string
		if err := rows.Scan(&k, &key); err != nil {
			return nil, fmt.Errorf("read object ids: %w", err)
		}
		out[k] = stixID(key)
	}
	return out, rows.Err()
}

// dropKey removes every edge from or to an object key that no longer
// names an object (Remove purged id), in every collection.
func (tx *Tx) dropKey(oid int64, id string) error {
	// Its own references: their reverse rows, then the refs rows.
	rows, err := tx.query(`SELECT r.cid, r.kind, r.dsts FROM collections c CROSS JOIN refs r
		WHERE r.cid = c.cid AND r.src = ?`, oid)
	if err != nil {
		return fmt.Errorf("read references: %w", err)
	}
	type fwd struct {
		cid  int64
		kind int
		dsts []int64
	}
	var own []fwd
	for rows.Next() {
		var f fwd
		var b []byte
		if err := rows.Scan(&f.cid, &f.kind, &b); err != nil {
			rows.Close()
			return fmt.Errorf("read references: %w", err)
		}
		if f.dsts, err = unpackKeys(b); err != nil {
			rows.Close()
			return err
		}
		own = append(own, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read references: %w", err)
	}
	for _, f := range own {
		if _, err := tx.setEdges(f.cid, f.kind, map[int64][]int64{oid: nil}, nil); err != nil {
			return err
		}
	}
	// References to it: take it out of each referrer's list.
	rows, err = tx.query(`SELECT e.cid, e.kind, e.src FROM collections c CROSS JOIN edges e
		WHERE e.cid = c.cid AND e.dst = ?`, oid)
	if err != nil {
		return fmt.Errorf("read referrers: %w", err)
	}
	type rev struct {
		cid, src int64
		kind     int
	}
	var refs []rev
	for rows.Next() {
		var r rev
		if err := rows.Scan(&r.cid, &r.kind, &r.src); err != nil {
			rows.Close()
			return fmt.Errorf("read referrers: %w", err)
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read referrers: %w", err)
	}
	for _, kind := range []int{EdgeRef, EdgeOrigin, EdgeWant} {
		if reverseIndexed(kind, idType(id)) {
			continue
		}
		scanned, err := tx.scanReferrers(0, kind, []int64{oid})
		if err != nil {
			return err
		}
		for _, r := range scanned[oid] {
			refs = append(refs, rev{cid: r.cid, src: r.src, kind: kind})
		}
	}
	for _, r := range refs {
		cur, err := tx.targetKeys(r.cid, r.kind, []int64{r.src})
		if err != nil {
			return err
		}
		keep := slices.DeleteFunc(cur[r.src], func(k int64) bool { return k == oid })
		if _, err := tx.setEdges(r.cid, r.kind, map[int64][]int64{r.src: keep}, nil); err != nil {
			return err
		}
	}
	// A reverse row its source's list did not name (never written so, but
	// the key is about to be reused): gone too.
	if err := tx.exec(`DELETE FROM edges WHERE cid IN (SELECT cid FROM collections) AND dst = ?`, oid); err != nil {
		return fmt.Errorf("drop edges: %w", err)
	}
	tx.fresh.drop(oid)
	return nil
}

// migrate5 is the Go step of migration 0005: it deletes the edges rows
// whose target reverseIndexed leaves out, a chunk of targets at a time.
func migrate5(tx *Tx) error {
	rows, err := tx.query(`SELECT oid, stix_id FROM objects`)
	if err != nil {
		return fmt.Errorf("read object keys: %w", err)
	}
	kinds := []int{EdgeRef, EdgeOrigin, EdgeWant}
	drop := make([][]int64, len(kinds))
	for rows.Next() {
		var oid int64
		var key string
		if err := rows.Scan(&oid, &key); err != nil {
			rows.Close()
			return fmt.Errorf("read object keys: %w", err)
		}
		typ := idType(stixID(key))
		for i, kind := range kinds {
			if !reverseIndexed(kind, typ) {
				drop[i] = append(drop[i], oid)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read object keys: %w", err)
	}
	const chunk = 5000
	for i, kind := range kinds {
		for keys := range slices.Chunk(drop[i], chunk) {
			if err := tx.exec(`DELETE FROM edges WHERE cid IN (SELECT cid FROM collections) AND kind = ?
				AND dst IN (SELECT CAST(value AS INTEGER) FROM json_each(?))`, kind, jsonList(keys)); err != nil {
				return fmt.Errorf("drop reverse rows: %w", err)
			}
		}
	}
	return nil
}

// migrate4 is the Go step of migration 0004: object keys, then refs.
func migrate4(tx *Tx) error {
	if err := rekeyObjects(tx); err != nil {
		return err
	}
	return fillRefs(tx)
}

// fillRefs writes refs from the edges of a store older than migration 0004
// (read in source order through edges_by_src), then drops that index.
// It inserts while its cursor is open, which SQLite allows; a PostgreSQL
// store never has edges here (it is created empty, all migrations at once).
func fillRefs(tx *Tx) error {
	rows, err := tx.query(`SELECT cid, src, kind, dst FROM edges INDEXED BY edges_by_src ORDER BY cid, src, kind, dst`)
	if err != nil {
		return fmt.Errorf("fill refs: %w", err)
	}
	type group struct {
		cid, src int64
		kind     int
	}
	var (
		cur  group
		keys []int64
		out  []any
	)
	b := putBatch{tx: tx}
	flush := func() error {
		err := b.insert(refInsert, 4, out)
		out = out[:0]
		return err
	}
	for rows.Next() {
		var g group
		var dst int64
		if err := rows.Scan(&g.cid, &g.src, &g.kind, &dst); err != nil {
			rows.Close()
			return fmt.Errorf("fill refs: %w", err)
		}
		if g != cur && len(keys) > 0 {
			out = append(out, cur.cid, cur.src, cur.kind, packKeys(keys))
			keys = keys[:0]
			if len(out) >= 4*rowsPerInsert*50 {
				if err := flush(); err != nil {
					rows.Close()
					return fmt.Errorf("fill refs: %w", err)
				}
			}
		}
		cur = g
		keys = append(keys, dst)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("fill refs: %w", err)
	}
	if len(keys) > 0 {
		out = append(out, cur.cid, cur.src, cur.kind, packKeys(keys))
	}
	if err := flush(); err != nil {
		return fmt.Errorf("fill refs: %w", err)
	}
	if err := tx.exec("DROP INDEX edges_by_src"); err != nil {
		return fmt.Errorf("fill refs: %w", err)
	}
	return nil
}
