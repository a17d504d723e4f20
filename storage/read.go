package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// FirstDateAdded is the date_added of the page's first item (the
// X-TAXII-Date-Added-First header), or 0 for an empty page.
func (p Page) FirstDateAdded() int64 {
	if len(p.Items) == 0 {
		return 0
	}
	return p.Items[0].DateAdded
}

// LastDateAdded is the date_added of the page's last item (the
// X-TAXII-Date-Added-Last header), or 0 for an empty page.
func (p Page) LastDateAdded() int64 {
	if len(p.Items) == 0 {
		return 0
	}
	return p.Items[len(p.Items)-1].DateAdded
}

// LastKey is the keyset position of the page's last item, to resume after it.
func (p Page) LastKey() Key {
	if len(p.Items) == 0 {
		return Key{}
	}
	return p.Items[len(p.Items)-1].Key
}

type listMode int

const (
	modeObjects listMode = iota
	modeManifest
	modeVersions
)

// Objects returns a page of object versions with their JSON, ordered by
// date_added (taxii21.md D-3, D-7).
func (s *Store) Objects(ctx context.Context, q Query) (Page, error) {
	return s.list(ctx, q, modeObjects)
}

// Manifest returns the same rows as Objects without their JSON; the version
// bytes are never read.
func (s *Store) Manifest(ctx context.Context, q Query) (Page, error) {
	return s.list(ctx, q, modeManifest)
}

// Versions returns every version of q.IDs[0] in the collection, ordered by
// date_added; q.Versions is ignored, every other filter applies.
func (s *Store) Versions(ctx context.Context, q Query) (Page, error) {
	if len(q.IDs) == 0 {
		return Page{}, errors.New("list versions: no object id given")
	}
	q.IDs = q.IDs[:1]
	q.Versions = VersionFilter{All: true}
	return s.list(ctx, q, modeVersions)
}

// maxLimit bounds one page whatever the caller asks for.
const maxLimit = 100_000

func jsonList[T any](v []T) string {
	b, _ := json.Marshal(v) // strings and int64s always marshal
	return string(b)
}

func (s *Store) list(ctx context.Context, q Query, mode listMode) (Page, error) {
	what := [...]string{"list objects", "list manifest", "list versions"}[mode]
	if q.Limit <= 0 {
		return Page{}, fmt.Errorf("%s: limit %d is not positive", what, q.Limit)
	}
	q.Limit = min(q.Limit, maxLimit)
	select {
	case s.rsem <- struct{}{}:
		defer func() { <-s.rsem }()
	case <-ctx.Done():
		return Page{}, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	cid, err := s.cid(ctx, s.r, q.CollectionID)
	if err != nil {
		return Page{}, fmt.Errorf("%s: %w", what, err)
	}
	b := &listSQL{cid: cid, mode: mode, from: "members m NOT INDEXED", boundLimit: s.d.pg}
	b.where, b.args = b.wherev[:0], b.argv[:0]
	for _, f := range listFilters {
		if err := f(ctx, s, b, &q); err != nil {
			return Page{}, fmt.Errorf("%s: %w", what, err)
		}
	}
	if b.none {
		return Page{}, nil
	}
	st, oneOff, err := s.listStmt(ctx, b.key(&q), func() string { return b.text(&q) })
	if err != nil {
		return Page{}, fmt.Errorf("%s: %w", what, err)
	}
	if oneOff {
		defer st.Close()
	}
	rows, err := st.QueryContext(ctx, b.bind(&q)...)
	if err != nil {
		return Page{}, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	page, err := scanPage(rows, b, &q)
	if err != nil {
		return Page{}, fmt.Errorf("%s: %w", what, err)
	}
	return page, nil
}

// listSQL is a listing statement being built: each entry of listFilters
// adds what one Query field asks for. The statement text depends only on
// which filters are set, never on their values (those are bound): shape
// records which terms were added, and with the mode, the LIMIT and
// WithNewest it keys the prepared statement, so the text is built only
// when a shape is first seen (see listStmt).
type listSQL struct {
	cid   int64
	mode  listMode
	shape uint64
	// where and args start on these arrays: a listing's terms fit.
	wherev [8]string
	argv   [12]any
	// from is members and the index its scan walks: the keyset scan walks
	// the (cid, date_added) primary key, match[id] members_by_object.
	from  string
	where []string
	args  []any
	// oneID is the id of a single-id listing (the object and versions
	// endpoints): the objects table is then not joined for it.
	oneID string
	// none: a filter can match nothing (no requested id is known).
	none bool
	// boundLimit: LIMIT is bound, q.Limit+1 exactly (PostgreSQL: the
	// server sends every row up to the LIMIT, and a bound one costs no
	// re-plan there; see limitBucket for SQLite).
	boundLimit bool
}

// Terms of a listing, as bits of listSQL.shape. The collection and cap
// term is always there.
const (
	termAfter uint64 = 1 << iota
	termOneID
	termIDs
	termTypes
	termSpecVersions
	termLast
	termFirst
	termAt
	termVersion
	termCurrent
)

func (b *listSQL) add(term uint64, cond string, args ...any) {
	b.shape |= term
	b.where = append(b.where, cond)
	b.args = append(b.args, args...)
}

// listFilters apply, in this order, every filter of a Query to a listing.
var listFilters = [...]func(ctx context.Context, s *Store, b *listSQL, q *Query) error{
	// The collection, and the reader's cap: a row is served when its own
	// marking and the object's visibility (its latest version's rank, or
	// a hidden state above every rank) are both within the cap, so an
	// object whose latest version a reader may not see is absent in
	// every mode. The unary plus on cid is on purpose (here and in every
	// read statement that binds a value that may be 0 or 1, as the first
	// collection's cid is): SQLite's planner inspects such a value and
	// re-prepares the statement on every later bind while the old value
	// was 0 or 1 (sqlite3ExprIsInteger with bRSI in whereLoopOutputAdjust),
	// which parsed and planned every GET of the first collection again.
	// +? keeps the index use and hides the value from the planner.
	func(_ context.Context, _ *Store, b *listSQL, q *Query) error {
		rank := min(q.MaxTLP, TLPRed)
		b.add(0, "m.cid = +? AND m.tlp <= ? AND m.vis <= ?", b.cid, rank, rank)
		return nil
	},
	// added_after and the next cursor: date_added is unique in the
	// database (D-1), so it alone is a total position; RowID needs no
	// comparison.
	func(_ context.Context, _ *Store, b *listSQL, q *Query) error {
		after := q.AddedAfter
		if q.After != nil {
			after = max(after, q.After.DateAdded)
		}
		if after > 0 {
			b.add(termAfter, "m.date_added > ?", after)
		}
		return nil
	},
	// match[id]: one id (the object and versions endpoints) is resolved by
	// a scalar subquery in the statement itself; several are resolved
	// first and bound as a list.
	func(ctx context.Context, s *Store, b *listSQL, q *Query) error {
		switch {
		case len(q.IDs) == 1:
			b.from = "members m INDEXED BY members_by_object"
			b.oneID = q.IDs[0]
			b.add(termOneID, "m.oid = (SELECT oid FROM objects WHERE stix_id = ?)", objKey(q.IDs[0]))
		case len(q.IDs) > 1:
			oids, err := s.resolveIDs(ctx, q.IDs)
			if err != nil {
				return err
			}
			b.none = len(oids) == 0
			b.from = "members m INDEXED BY members_by_object"
			b.add(termIDs, "m.oid IN (SELECT CAST(value AS INTEGER) FROM json_each(?))", jsonList(oids))
		}
		return nil
	},
	func(_ context.Context, _ *Store, b *listSQL, q *Query) error {
		if len(q.Types) > 0 {
			b.add(termTypes, "m.type IN (SELECT value FROM json_each(?))", jsonList(q.Types))
		}
		return nil
	},
	func(_ context.Context, _ *Store, b *listSQL, q *Query) error {
		if len(q.SpecVersions) > 0 {
			b.add(termSpecVersions, "m.spec_version IN (SELECT value FROM json_each(?))", jsonList(q.SpecVersions))
		}
		return nil
	},
	// match[version]: the union of the selected versions; none given
	// means last (S-7.13).
	func(_ context.Context, _ *Store, b *listSQL, q *Query) error {
		vf := q.Versions
		if vf.All {
			return nil
		}
		// The common shapes are constants: no text is built per query.
		last, first := vf.Last || (!vf.First && len(vf.At) == 0), vf.First
		switch {
		case len(vf.At) == 0 && last && !first:
			b.add(termVersion|termLast, "m.latest = 1")
			return nil
		case len(vf.At) == 0 && first && !last:
			b.add(termVersion|termFirst, "m.first = 1")
			return nil
		}
		term := termVersion
		var or []string
		if last {
			term |= termLast
			or = append(or, "m.latest = 1")
		}
		if first {
			term |= termFirst
			or = append(or, "m.first = 1")
		}
		var args []any
		if len(vf.At) > 0 {
			at := make([]int64, len(vf.At))
			for i, t := range vf.At {
				at[i] = t.UnixMicro()
			}
			term |= termAt
			or = append(or, "m.ver IN (SELECT CAST(value AS INTEGER) FROM json_each(?))")
			args = append(args, jsonList(at))
		}
		b.add(term, "("+strings.Join(or, " OR ")+")", args...)
		return nil
	},
	// The bootstrap view: only versions current at that instant.
	func(_ context.Context, _ *Store, b *listSQL, q *Query) error {
		if q.CurrentAt != 0 {
			b.add(termCurrent, "v.revoked = 0 AND (v.valid_until = 0 OR v.valid_until > ?)", q.CurrentAt)
		}
		return nil
	},
}

// key identifies the statement text of this listing (see listSQL).
func (b *listSQL) key(q *Query) uint64 {
	k := b.shape | uint64(b.mode)<<16
	if !b.boundLimit {
		k |= uint64(bits.Len(uint(limitBucket(q.Limit+1)))) << 20
	}
	if q.WithNewest {
		k |= 1 << 28
	}
	if b.lean(q) {
		k |= 1 << 29
	}
	return k
}

// lean: the items carry only their JSON and position (Query.JSONOnly).
func (b *listSQL) lean(q *Query) bool { return q.JSONOnly && b.mode == modeObjects }

// text is the statement. CROSS JOIN fixes the loop order: members drives,
// the rest are lookups by primary key.
func (b *listSQL) text(q *Query) string {
	cols := "m.date_added, m.vid"
	join := ""
	if !b.lean(q) {
		cols += ", m.ver, m.versioned, m.created, m.type, m.spec_version"
		if b.oneID == "" {
			cols += ", o.stix_id"
			join = " CROSS JOIN objects o ON o.oid = m.oid"
		}
	}
	if b.mode == modeObjects {
		cols += ", v.codec, v.json"
	}
	if b.mode == modeObjects || b.shape&termCurrent != 0 {
		join += " CROSS JOIN versions v ON v.vid = m.vid"
	}
	if q.WithNewest {
		// Uncorrelated, so evaluated once for the statement, in the same
		// read transaction as the rows (see NewestDateAdded).
		cols += `, max(coalesce((SELECT n.date_added FROM members n WHERE n.cid = +? AND n.tlp <= ? AND n.vis <= ?
			ORDER BY n.date_added DESC LIMIT 1), 0), (SELECT changed FROM collections WHERE cid = +?))`
	}
	limit := "?"
	if !b.boundLimit {
		limit = strconv.Itoa(limitBucket(q.Limit + 1))
	}
	return "SELECT " + cols + " FROM " + b.from + join + " WHERE " + strings.Join(b.where, " AND ") +
		" ORDER BY m.date_added LIMIT " + limit
}

// bind is the statement's arguments, in text order: the newest column's
// come before the WHERE terms'.
func (b *listSQL) bind(q *Query) []any {
	args := b.args
	if q.WithNewest {
		rank := min(q.MaxTLP, TLPRed)
		args = append([]any{b.cid, rank, rank, b.cid}, args...)
	}
	if b.boundLimit {
		args = append(args, q.Limit+1)
	}
	return args
}

// scanRow holds the scan targets of one listing row; one allocation for
// the page instead of one per target.
type scanRow struct {
	it                   Item
	ver, versed, created int64
	codec                int
	body, typ, spec      sql.RawBytes
	newest               int64
	dest                 [11]any
}

// interner keeps one string per distinct type and spec version of a page
// (a page holds a handful), instead of two allocations a row. It lives on
// the stack; past its size a value is simply allocated.
type interner struct {
	n    int
	vals [16]string
}

func (in *interner) get(b []byte) string {
	for _, v := range in.vals[:in.n] {
		if v == string(b) {
			return v
		}
	}
	v := string(b)
	if in.n < len(in.vals) {
		in.vals[in.n] = v
		in.n++
	}
	return v
}

// scanPage reads at most q.Limit rows of a listing and whether more follow.
func scanPage(rows *sql.Rows, b *listSQL, q *Query) (Page, error) {
	// Size buffers for the page expected: a crawl fills its limit, a
	// lookup by id returns a handful of rows.
	expect := min(q.Limit, 1024)
	if len(q.IDs) > 0 {
		expect = min(q.Limit, 4*len(q.IDs), 64)
	}
	if len(q.IDs) == 1 && !q.Versions.All && len(q.Versions.At) == 0 {
		expect = min(q.Limit, 2) // last and/or first of one object
	}
	page := Page{Items: make([]Item, 0, expect)}
	var (
		r     = new(scanRow)
		names interner
		arena []byte // JSON of many items shares one allocation
	)
	lean := b.lean(q)
	dest := append(r.dest[:0], &r.it.DateAdded, &r.it.Key.RowID)
	if !lean {
		dest = append(dest, &r.ver, &r.versed, &r.created, &r.typ, &r.spec)
		if b.oneID == "" {
			dest = append(dest, &r.it.ID)
		}
	}
	if b.mode == modeObjects {
		dest = append(dest, &r.codec, &r.body)
	}
	if q.WithNewest {
		dest = append(dest, &r.newest)
	}
	for rows.Next() {
		if len(page.Items) == q.Limit {
			page.More = true
			break
		}
		r.it = Item{ID: b.oneID}
		if err := rows.Scan(dest...); err != nil {
			return Page{}, err
		}
		it := r.it
		if !lean && b.oneID == "" {
			it.ID = stixID(it.ID)
		}
		it.Key.DateAdded = it.DateAdded
		if !lean {
			it.Type, it.SpecVersion = names.get(r.typ), names.get(r.spec)
			it.Created = fromMicro(r.created)
			if r.versed == 1 {
				it.Modified = fromMicro(r.ver)
			}
		}
		if b.mode == modeObjects {
			if cap(arena)-len(arena) < 4*len(r.body) {
				// First chunk sized for the expected page (~640 bytes of
				// JSON an object), then doubling.
				arena = make([]byte, 0, max(min(2*cap(arena), 1<<20), expect*640, 4*len(r.body)))
			}
			start := len(arena)
			var err error
			if arena, err = appendJSON(arena, r.codec, r.body); err != nil {
				return Page{}, fmt.Errorf("object %s: %w", it.ID, err)
			}
			it.JSON = arena[start:len(arena):len(arena)]
		}
		page.Items = append(page.Items, it)
		page.Newest = r.newest
	}
	if err := rows.Err(); err != nil {
		return Page{}, err
	}
	return page, nil
}

// limitBucket is the LIMIT written into a listing's SQL text: the least
// power of eight not below n. The limit is a literal, not a bound
// parameter, because SQLite (3.54) compiles a bound LIMIT as a constant and
// re-prepares the statement on every bind of it, which parsed and planned
// every listing again (a third of a single-object GET's CPU). Powers of
// eight keep the number of statement texts small (seven up to maxLimit);
// list stops reading at q.Limit+1 rows.
func limitBucket(n int) int {
	b := 1
	for b < n {
		b <<= 3
	}
	return b
}

// readStmt returns a prepared statement for query on the read pool, cached
// by its text (the few fixed read statements).
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if st, ok := s.rstmts[query]; ok {
		return st, nil
	}
	st, err := s.r.PrepareContext(ctx, s.d.sql(query))
	if err != nil {
		return nil, fmt.Errorf("prepare query: %w", err)
	}
	s.rstmts[query] = st
	return st, nil
}

// maxListStmts bounds the cached listing statements. Shapes are finite
// (3 modes × 3 id shapes × 2^3 other filters × 8 version filters × 7
// limits × 2 = 48,384) but far more than clients use; past the bound a
// listing prepares a statement for itself (oneOff: the caller closes it).
const maxListStmts = 1024

// listStmt returns the prepared listing statement of key, building its
// text with text only when the key is new.
func (s *Store) listStmt(ctx context.Context, key uint64, text func() string) (st *sql.Stmt, oneOff bool, err error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if st, ok := s.lstmts[key]; ok {
		return st, false, nil
	}
	if st, err = s.r.PrepareContext(ctx, s.d.sql(text())); err != nil {
		return nil, false, fmt.Errorf("prepare query: %w", err)
	}
	if len(s.lstmts) >= maxListStmts {
		return st, true, nil
	}
	s.lstmts[key] = st
	return st, false, nil
}

// resolveIDs maps STIX ids to object keys; unknown ids are dropped.
func (s *Store) resolveIDs(ctx context.Context, ids []string) ([]int64, error) {
	st, err := s.readStmt(ctx, "SELECT oid FROM objects WHERE stix_id IN (SELECT value FROM json_each(?))")
	if err != nil {
		return nil, fmt.Errorf("resolve object ids: %w", err)
	}
	rows, err := st.QueryContext(ctx, jsonList(objKeys(ids)))
	if err != nil {
		return nil, fmt.Errorf("resolve object ids: %w", err)
	}
	defer rows.Close()
	var oids []int64
	for rows.Next() {
		var oid int64
		if err := rows.Scan(&oid); err != nil {
			return nil, fmt.Errorf("resolve object ids: %w", err)
		}
		oids = append(oids, oid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("resolve object ids: %w", err)
	}
	return oids, nil
}

// statusExpiryPrefix starts the keys of the statuses table's expiry index:
// the table is (id, body) and status ids are UUIDs (hex digits and '-'), so
// keys "~<expiry µs, 20 digits>~<id>" sort by expiry after every status and
// can never be confused with one. A range scan over them finds what has
// expired without reading a body.
const statusExpiryPrefix = "~"

const sqlPutStatus = `INSERT INTO statuses (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body`

func statusExpiryKey(expires time.Time, id string) string {
	return fmt.Sprintf("%s%020d~%s", statusExpiryPrefix, expires.UnixMicro(), id)
}

// PutStatus creates or replaces a status resource. A status with an Expires
// time is indexed by it, and every call first deletes the statuses that have
// expired, so the table holds at most a retention window of POSTs. A status
// whose stored form exceeds MaxStatusBytes is refused.
func (s *Store) PutStatus(ctx context.Context, st Status) error {
	if st.ID == "" || strings.HasPrefix(st.ID, statusExpiryPrefix) {
		return fmt.Errorf("put status: bad id %q", st.ID)
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("put status %s: %w", st.ID, err)
	}
	if len(body) > MaxStatusBytes {
		return fmt.Errorf("put status %s: %d bytes, more than the %d allowed", st.ID, len(body), MaxStatusBytes)
	}
	return s.Update(ctx, func(tx *Tx) error {
		if err := tx.pruneStatuses(); err != nil {
			return err
		}
		if err := tx.exec(sqlPutStatus, st.ID, body); err != nil {
			return fmt.Errorf("put status %s: %w", st.ID, err)
		}
		if !st.Expires.IsZero() {
			if err := tx.exec(sqlPutStatus, statusExpiryKey(st.Expires, st.ID), []byte{}); err != nil {
				return fmt.Errorf("put status %s: index expiry: %w", st.ID, err)
			}
		}
		return nil
	})
}

// pruneStatuses deletes the statuses whose expiry has passed, with their
// index rows.
func (tx *Tx) pruneStatuses() error {
	lo := statusExpiryPrefix
	hi := statusExpiryKey(tx.s.now(), "")
	rows, err := tx.query("SELECT id FROM statuses WHERE id > ? AND id < ?", lo, hi)
	if err != nil {
		return fmt.Errorf("prune statuses: %w", err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return fmt.Errorf("prune statuses: %w", err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("prune statuses: %w", err)
	}
	for _, k := range keys {
		id := k[strings.LastIndexByte(k, '~')+1:]
		if err := tx.exec("DELETE FROM statuses WHERE id IN (?, ?)", k, id); err != nil {
			return fmt.Errorf("prune statuses: %w", err)
		}
	}
	return nil
}

// Status reads a status resource, or an error wrapping ErrNotFound when it
// does not exist or has expired.
func (s *Store) Status(ctx context.Context, id string) (Status, error) {
	if strings.HasPrefix(id, statusExpiryPrefix) {
		return Status{}, fmt.Errorf("status %q: %w", id, ErrNotFound)
	}
	var body []byte
	err := s.r.QueryRowContext(ctx, s.d.sql("SELECT body FROM statuses WHERE id = ?"), id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return Status{}, fmt.Errorf("status %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Status{}, fmt.Errorf("read status %q: %w", id, err)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return Status{}, fmt.Errorf("decode status %q: %w", id, err)
	}
	if !st.Expires.IsZero() && !s.now().Before(st.Expires) {
		return Status{}, fmt.Errorf("status %q: %w", id, ErrNotFound)
	}
	return st, nil
}
