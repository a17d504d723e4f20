package storage

import (
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"
)

// putBatch is the fast path of Tx.Put. At most three queries prefetch, for
// the whole batch, what the per-object decision needs and the transaction
// has not read already (object keys, the collection's latest versions,
// stored version bytes); new rows are then written with
// multi-row INSERTs carrying ids assigned here. Cases the prefetch cannot
// decide alone (content changed, or an id repeated in the batch) flush the
// pending rows and take the statement-per-object path, putOne.
//
// Statement count matters because each one costs several µs of cgo and
// database/sql overhead, more than SQLite's own work for these lookups.
type putBatch struct {
	tx  *Tx
	cid int64

	oids    map[string]int64
	latest  map[int64]latestRow
	vids    map[verKey]int64
	seen    map[string]bool
	nextOID int64 // 0: reload from the table before use
	nextVID int64

	objArgs, verArgs, memArgs, refArgs, edgeArgs []any
}

type latestRow struct {
	da, ver   int64
	versioned bool
	hash      [16]byte
}

type verKey struct {
	oid, mod int64
	hash     [16]byte
}

// rowsPerInsert bounds one multi-row INSERT. Larger statements cost more to
// prepare (they are prepared once per transaction) than they save; 64 rows of
// members are 768 bound parameters.
const rowsPerInsert = 64

func newPutBatch(tx *Tx, cid int64, objs []Object) (*putBatch, error) {
	b := &putBatch{tx: tx, cid: cid, oids: map[string]int64{}, latest: map[int64]latestRow{},
		vids: map[verKey]int64{}, seen: map[string]bool{}}
	ids := make([]string, 0, len(objs))
	for i := range objs {
		ids = append(ids, objs[i].ID)
		ids = append(ids, objs[i].Refs...)
		ids = append(ids, objs[i].Wants...)
	}
	// References repeat (a creator, a popular group): look each up once,
	// and only what this transaction has not seen yet.
	slices.Sort(ids)
	ids = slices.Compact(ids)
	keys, err := tx.resolve(ids)
	if err != nil {
		return nil, fmt.Errorf("prefetch objects: %w", err)
	}
	if len(keys) == 0 {
		return b, nil
	}
	maps.Copy(b.oids, keys)
	// The collection's latest versions, from what the transaction read
	// already (Tx.Meta) where it can.
	var unsure []int64
	for i := range objs {
		oid, ok := b.oids[objs[i].ID]
		if !ok {
			continue
		}
		c, cached := tx.cache.latest[colID{cid, objs[i].ID}]
		switch {
		case !cached:
			unsure = append(unsure, oid)
		case c.held:
			b.latest[oid] = latestRow{da: c.m.DateAdded, ver: toMicro(c.m.Modified), versioned: !c.m.Modified.IsZero(), hash: c.m.Hash}
		}
	}
	if len(unsure) > 0 {
		rows, err := tx.query(`SELECT m.oid, m.date_added, m.ver, m.versioned, v.hash
		FROM members m INDEXED BY members_by_object CROSS JOIN versions v ON v.vid = m.vid
		WHERE m.cid = ? AND m.oid IN (SELECT CAST(value AS INTEGER) FROM json_each(?)) AND m.latest = 1`, cid, jsonList(unsure))
		if err != nil {
			return nil, fmt.Errorf("prefetch latest versions: %w", err)
		}
		for rows.Next() {
			var oid int64
			var l latestRow
			var h []byte
			if err := rows.Scan(&oid, &l.da, &l.ver, &l.versioned, &h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("prefetch latest versions: %w", err)
			}
			copy(l.hash[:], h)
			b.latest[oid] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("prefetch latest versions: %w", err)
		}
	}
	// Objects of the batch some other collection holds: their version
	// bytes may be shared. (References need only their keys.)
	var elsewhere []int64
	for i := range objs {
		if oid, ok := b.oids[objs[i].ID]; ok {
			if _, ok := b.latest[oid]; !ok {
				elsewhere = append(elsewhere, oid)
			}
		}
	}
	if len(elsewhere) == 0 {
		return b, nil
	}
	rows, err := tx.query(`SELECT vid, oid, modified, hash FROM versions INDEXED BY versions_by_object
		WHERE oid IN (SELECT CAST(value AS INTEGER) FROM json_each(?))`, jsonList(elsewhere))
	if err != nil {
		return nil, fmt.Errorf("prefetch versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var vid int64
		var k verKey
		var h []byte
		if err := rows.Scan(&vid, &k.oid, &k.mod, &h); err != nil {
			return nil, fmt.Errorf("prefetch versions: %w", err)
		}
		copy(k.hash[:], h)
		b.vids[k] = vid
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("prefetch versions: %w", err)
	}
	return b, nil
}

// put decides one object. It reports handled=false when the object needs the
// slow path; pending rows are flushed first so the slow path sees them.
func (b *putBatch) put(o *Object) (changed, handled bool, err error) {
	if b.seen[o.ID] {
		return false, false, b.flush()
	}
	b.seen[o.ID] = true
	oid, known := b.oids[o.ID]
	if known {
		if l, ok := b.latest[oid]; ok {
			if l.hash == o.Hash {
				return false, true, nil
			}
			return false, false, b.flush()
		}
	}
	// A first version in this collection: latest and first at once.
	if b.nextOID == 0 {
		if err := b.loadNextIDs(); err != nil {
			return false, false, err
		}
	}
	if !known {
		oid = b.newOID(o.ID)
	}
	b.tx.fresh.name(oid, o.ID)
	b.edges(oid, EdgeRef, o.Refs)
	b.edges(oid, EdgeWant, o.Wants)
	mod := toMicro(o.Modified)
	vid, ok := b.vids[verKey{oid, mod, o.Hash}]
	if !ok {
		vid = b.nextVID
		b.nextVID++
		b.vids[verKey{oid, mod, o.Hash}] = vid
		codec, body := o.stored()
		b.verArgs = append(b.verArgs, vid, oid, mod, o.Hash[:], codec, body, o.Revoked, o.TCID, toMicro(o.ValidUntil))
	}
	da := b.tx.nextDateAdded()
	versioned := mod != 0
	ver := mod
	if !versioned {
		if ver = toMicro(o.Created); ver == 0 {
			ver = da
		}
	}
	b.memArgs = append(b.memArgs, b.cid, da, oid, vid, ver, versioned, toMicro(o.Created),
		o.Type, o.SpecVersion, o.TLP, true, true, o.TLP)
	// What Tx.Meta would now read back.
	b.tx.cache.init()
	b.tx.cache.latest[colID{b.cid, o.ID}] = cachedMeta{held: true, oid: oid, vis: int64(o.TLP), m: Meta{ID: o.ID, Type: o.Type,
		Modified: fromMicro(mod), DateAdded: da, TLP: o.TLP, Vis: Published, Hash: o.Hash, Revoked: o.Revoked, TCID: o.TCID}}
	if len(b.memArgs) >= rowsPerInsert*13 || len(b.edgeArgs) >= rowsPerInsert*4 || len(b.refArgs) >= rowsPerInsert*4 {
		return true, true, b.flush()
	}
	return true, true, nil
}

// edges queues the kind-edges of src, an object new to the collection, to
// each of ids (edges.go).
func (b *putBatch) edges(src int64, kind int, ids []string) {
	if len(ids) == 0 {
		return
	}
	keys := make([]int64, 0, len(ids))
	indexed := make([]int64, 0, len(ids))
	for _, r := range ids {
		dst, ok := b.oids[r]
		if !ok {
			dst = b.newOID(r)
		}
		keys = append(keys, dst)
		if reverseIndexed(kind, idType(r)) {
			indexed = append(indexed, dst)
		}
	}
	b.refArgs = append(b.refArgs, b.cid, src, kind, packKeys(sortedKeys(keys)))
	for _, dst := range sortedKeys(indexed) {
		b.edgeArgs = append(b.edgeArgs, b.cid, dst, kind, src)
		b.tx.fresh.add(b.cid, kind, dst, src)
	}
}

// newOID assigns the key of an id no row holds yet.
func (b *putBatch) newOID(id string) int64 {
	oid := b.nextOID
	b.nextOID++
	b.oids[id] = oid
	b.objArgs = append(b.objArgs, oid, objKey(id))
	b.tx.s.known.add(id)
	b.tx.fresh.created(oid, id)
	return oid
}

// learn records the keys the slow path gave an object and its references
// (Tx.oid keeps each in the transaction's cache), so that later objects of
// the batch do not assign them again.
func (b *putBatch) learn(o *Object) {
	for _, ids := range [][]string{{o.ID}, o.Refs, o.Wants} {
		for _, id := range ids {
			if oid, ok := b.tx.cache.oid[id]; ok {
				b.oids[id] = oid
			}
		}
	}
}

func (b *putBatch) loadNextIDs() error {
	err := b.tx.queryRow("SELECT coalesce(max(oid), 0) + 1, (SELECT coalesce(max(vid), 0) + 1 FROM versions) FROM objects").
		Scan(&b.nextOID, &b.nextVID)
	if err != nil {
		return fmt.Errorf("read next row ids: %w", err)
	}
	return nil
}

// flush writes the pending rows. The slow path (putOne) inserts with
// implicit row ids, so Put reloads the counters after it.
func (b *putBatch) flush() error {
	if err := b.insert("objects (oid, stix_id)", 2, b.objArgs); err != nil {
		return err
	}
	if err := b.insert("versions (vid, oid, modified, hash, codec, json, revoked, tcid, valid_until)", 9, b.verArgs); err != nil {
		return err
	}
	if err := b.insert("members (cid, date_added, oid, vid, ver, versioned, created, type, spec_version, tlp, latest, first, vis)", 13, b.memArgs); err != nil {
		return err
	}
	if err := b.insert(refInsert, 4, b.refArgs); err != nil {
		return err
	}
	if err := b.insert(edgeInsert, 4, b.edgeArgs); err != nil {
		return err
	}
	b.objArgs, b.verArgs, b.memArgs, b.refArgs, b.edgeArgs = b.objArgs[:0], b.verArgs[:0], b.memArgs[:0], b.refArgs[:0], b.edgeArgs[:0]
	return nil
}

func (b *putBatch) insert(into string, cols int, args []any) error {
	if err := insertRows(b.tx, into, onConflict[into], cols, rowsPerInsert, args); err != nil {
		return fmt.Errorf("insert into %s: %w", strings.Fields(into)[0], err)
	}
	return nil
}

// insertRows writes args, rows of cols values, into "t (cols…)" with
// multi-row INSERTs followed by suffix: whole statements of maxRows rows,
// then the rest in powers of two, so that a table has few statement texts
// and each is prepared once (Store.keepStmts).
func insertRows(tx *Tx, into, suffix string, cols, maxRows int, args []any) error {
	for len(args) > 0 {
		n := min(len(args)/cols, maxRows)
		n = 1 << (bits.Len(uint(n)) - 1)
		if err := tx.exec(multiInsert(into, cols, n)+suffix, args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	return nil
}

// multiInsert writes a multi-row INSERT into "t (cols…)"; insert adds the
// table's conflict clause (onConflict).
func multiInsert(into string, cols, rows int) string {
	one := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + into + " VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(one)
	}
	return sb.String()
}
