package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Copying a store (taxii-bridge migrate, issue 13).
//
// Copy carries every row of every table in copyTables from one Store to
// another, whatever their backends, column by column as the source holds it:
// the same cid, oid and vid keys, the same date_added values, the same
// version bytes in their stored (tokenised) form, the same state (sync
// cursors, cursor secret, the date_added high-water mark) and statuses.
//
// The table list is the one place that names tables; each table's columns
// are read from the database at run time (SELECT * … LIMIT 0), so a
// migration that adds a column is carried without a change here, and
// TestCopyTables fails when a migration adds a table copyTables lacks.
//
// Transactions. The source is read in one read-only transaction (a snapshot:
// SQLite WAL, or REPEATABLE READ), so the copy is consistent even while the
// source is in use. The destination is written in one write transaction
// (Store.Update): an interrupted copy — an error, a cancelled context, a
// killed process — leaves the destination exactly as it was, and a re-run
// starts over. There is no partial state to resume.
//
// Memory. Rows stream from one query per table and are written with
// multi-row INSERTs of at most copyBatchRows rows or copyBatchBytes bytes,
// so memory is bounded by one batch whatever the store's size.
//
// Verification. Every source row is folded into its table's digest as it is
// copied. Before committing, the destination's rows are read back inside the
// write transaction and digested the same way; any difference in a table's
// row count or digest rolls the copy back. After the commit, each
// collection's manifest (every version: id, date_added, version) is read
// through the destination's own read API (Store.Manifest) and compared with
// the source's, and so are the (vid, hash) pairs of every version.
//
// Re-runs. A destination that already holds rows is never written: when its
// digests equal the source's it is reported verified (CopyReport.Written
// false); otherwise Copy refuses with an error naming the tables that
// differ.

// copyTables are the tables Copy carries, parents before children so that
// foreign keys hold at every insert. schema_migrations is not copied: both
// stores have applied the same migrations, which Copy checks.
var copyTables = []string{"state", "collections", "objects", "versions", "members", "refs", "edges", "statuses"}

// copyFrom is what Copy reads of table t: its rows, less the state row
// that is the PostgreSQL backend's own write bookkeeping (genKey), which
// every write transaction, the copy's included, moves.
func copyFrom(t string) string {
	if t == "state" {
		return "state WHERE key <> '" + genKey + "'"
	}
	return t
}

// Batch bounds of the copy (see Copy).
const (
	copyBatchRows  = 256
	copyBatchBytes = 4 << 20
	// copyMaxParams stays below SQLite's 32,766 bound parameters per
	// statement (PostgreSQL allows 65,535).
	copyMaxParams = 30000
)

// ErrSchemaMismatch is returned (wrapped) by Copy when the two stores are at
// different schema versions.
var ErrSchemaMismatch = errors.New("schema versions differ")

// ErrNotEmpty is returned (wrapped) by Copy when the destination holds data
// other than the source's.
var ErrNotEmpty = errors.New("destination holds other data")

// CopyOptions tunes Copy.
type CopyOptions struct {
	// Progress, when set, is called after each batch written with the
	// table and the rows copied into it so far.
	Progress func(table string, rows int64)
}

// TableReport is one table of a CopyReport.
type TableReport struct {
	Name string
	Rows int64
	// Digest is an order-independent SHA-256-based digest of every row
	// (every column), hex.
	Digest string
}

// ManifestReport is one collection of a CopyReport.
type ManifestReport struct {
	ID, Alias string
	// Entries counts the manifest's entries (every version).
	Entries int64
	// Digest is a SHA-256 over the manifest in listing order: id,
	// date_added and version of each entry, hex.
	Digest string
}

// CopyReport says what Copy copied and verified. Every count and digest in it
// holds for both stores.
type CopyReport struct {
	// SchemaVersion is the migration level of both stores.
	SchemaVersion int
	// Written is false when the destination already held exactly the
	// source's data and nothing was written.
	Written bool
	Tables  []TableReport
	// VersionHashes is a digest of every (vid, content hash) pair, hex.
	VersionHashes string
	Manifests     []ManifestReport
	Duration      time.Duration
}

// Copy copies every table of src into dst, which must be empty or already
// hold exactly src's data, and verifies the result: row counts and content
// digests per table, each version's content hash, and each collection's
// manifest through the read API. See the comment at the top of copy.go for
// the design. dst must not be written by anyone else during the copy; src
// may be read and, for the tables, even written (the copy is a snapshot),
// but its manifests are compared after the commit, so writes to src during
// the copy make the verification fail.
func Copy(ctx context.Context, dst, src *Store, opts CopyOptions) (CopyReport, error) {
	start := time.Now()
	var rep CopyReport
	sv, err := src.schemaVersion(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: source: %w", err)
	}
	dv, err := dst.schemaVersion(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: destination: %w", err)
	}
	if sv != dv {
		return rep, fmt.Errorf("copy: source schema version %d, destination %d: %w (open both with the same taxii-bridge release)", sv, dv, ErrSchemaMismatch)
	}
	rep.SchemaVersion = sv

	rtx, err := src.r.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return rep, fmt.Errorf("copy: begin source snapshot: %w", err)
	}
	defer rtx.Rollback()

	cols := map[string][]string{}
	for _, t := range copyTables {
		sc, err := columns(ctx, rtx, t)
		if err != nil {
			return rep, fmt.Errorf("copy: source: %w", err)
		}
		dc, err := columns(ctx, dst.r, t)
		if err != nil {
			return rep, fmt.Errorf("copy: destination: %w", err)
		}
		if !sameSet(sc, dc) {
			return rep, fmt.Errorf("copy: table %s has columns (%s) in the source but (%s) in the destination: %w",
				t, strings.Join(sc, ", "), strings.Join(dc, ", "), ErrSchemaMismatch)
		}
		cols[t] = sc
	}

	empty, err := isEmpty(ctx, dst.r)
	if err != nil {
		return rep, fmt.Errorf("copy: destination: %w", err)
	}
	if !empty {
		srcSums, err := digestTables(ctx, rtx, cols)
		if err != nil {
			return rep, fmt.Errorf("copy: source: %w", err)
		}
		dstSums, err := digestTables(ctx, dst.r, cols)
		if err != nil {
			return rep, fmt.Errorf("copy: destination: %w", err)
		}
		if diff := diffSums(srcSums, dstSums); diff != "" {
			return rep, fmt.Errorf("copy: refusing to write into a destination that is not empty: %s; copy into an empty database: %w", diff, ErrNotEmpty)
		}
		rep.Tables, rep.VersionHashes = srcSums.report()
	} else {
		var srcSums sums
		err = dst.Update(ctx, func(tx *Tx) error {
			// Checked again under the write lock: nobody filled it since.
			if empty, err := isEmpty(tx.ctx, tx.tx); err != nil {
				return err
			} else if !empty {
				return fmt.Errorf("destination was written to while the copy started: %w", ErrNotEmpty)
			}
			if srcSums, err = copyTablesTx(ctx, tx, rtx, cols, opts.Progress); err != nil {
				return err
			}
			// No key generator to move: keys are never implicit (the
			// dialect rules in doc.go), every insert takes max(key)+1.
			dstSums, err := digestTables(tx.ctx, tx.tx, cols)
			if err != nil {
				return fmt.Errorf("read back: %w", err)
			}
			if diff := diffSums(srcSums, dstSums); diff != "" {
				return fmt.Errorf("verify copy (rolled back): %s", diff)
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("copy: %w", err)
		}
		if err := dst.afterCopy(ctx); err != nil {
			return rep, fmt.Errorf("copy: %w", err)
		}
		rep.Written = true
		rep.Tables, rep.VersionHashes = srcSums.report()
	}
	if err := rtx.Rollback(); err != nil {
		return rep, fmt.Errorf("copy: end source snapshot: %w", err)
	}

	sm, err := manifests(ctx, src)
	if err != nil {
		return rep, fmt.Errorf("copy: verify source manifests: %w", err)
	}
	dm, err := manifests(ctx, dst)
	if err != nil {
		return rep, fmt.Errorf("copy: verify destination manifests: %w", err)
	}
	if diff := diffManifests(sm, dm); diff != "" {
		return rep, fmt.Errorf("copy: verify manifests: %s (was the source written during the copy?)", diff)
	}
	rep.Manifests = sm
	rep.Duration = time.Since(start)
	return rep, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion is the store's migration level.
func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// columns reads the column names of table from the database.
func columns(ctx context.Context, q querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM "+table+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	return cols, nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// isEmpty reports whether every copied table is empty.
func isEmpty(ctx context.Context, q querier) (bool, error) {
	for _, t := range copyTables {
		var one int
		err := q.QueryRowContext(ctx, "SELECT 1 FROM "+copyFrom(t)+" LIMIT 1").Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", t, err)
		}
		return false, nil
	}
	return true, nil
}

// copyTablesTx streams every table from the source snapshot into the write
// transaction and returns the digests of the rows it read.
func copyTablesTx(ctx context.Context, tx *Tx, rtx *sql.Tx, cols map[string][]string, progress func(string, int64)) (sums, error) {
	out := sums{}
	// SQLite to SQLite copies every value verbatim, storage class and all.
	convert := tx.s.pg != nil
	for _, t := range copyTables {
		c := cols[t]
		d := newTableSum(t, c)
		perInsert := min(copyBatchRows, copyMaxParams/len(c))
		into := t + " (" + strings.Join(c, ", ") + ")"
		var (
			args  = make([]any, 0, perInsert*len(c))
			bytes int
			n     int64
		)
		flush := func() error {
			if err := insertRows(tx, into, "", len(c), perInsert, args); err != nil {
				return fmt.Errorf("insert into %s: %w", t, err)
			}
			clear(args)
			args, bytes = args[:0], 0
			if progress != nil {
				progress(t, n)
			}
			return nil
		}
		rows, err := rtx.QueryContext(ctx, "SELECT "+strings.Join(c, ", ")+" FROM "+copyFrom(t))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		kinds, err := declared(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		err = eachRow(rows, len(c), func(vals []any) error {
			d.add(vals)
			for i, v := range vals {
				if convert {
					v = asDeclared(v, kinds[i])
				}
				args = append(args, v)
				bytes += valueSize(v)
			}
			n++
			if len(args) == perInsert*len(c) || bytes >= copyBatchBytes {
				return flush()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", t, err)
		}
		if len(args) > 0 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		out[t] = d
	}
	return out, nil
}

// Declared column kinds that decide how a value is bound (asDeclared).
const (
	kindOther = iota
	kindText
	kindBytes
)

// declared reads the declared type of each column of rows.
func declared(rows *sql.Rows) ([]int, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := make([]int, len(types))
	for i, ct := range types {
		switch strings.ToUpper(ct.DatabaseTypeName()) {
		case "TEXT", "VARCHAR":
			out[i] = kindText
		case "BLOB", "BYTEA":
			out[i] = kindBytes
		}
	}
	return out, nil
}

// asDeclared binds a value as its column's declared type: SQLite may hold
// text in a BLOB column and a blob in a TEXT one, which PostgreSQL's bytea
// and text columns would not take as they are (the digests treat text and
// bytes alike, so such a value still verifies).
func asDeclared(v any, kind int) any {
	switch x := v.(type) {
	case string:
		if kind == kindBytes {
			return []byte(x)
		}
	case []byte:
		if kind == kindText {
			return string(x)
		}
	}
	return v
}

func valueSize(v any) int {
	switch v := v.(type) {
	case []byte:
		return len(v)
	case string:
		return len(v)
	}
	return 8
}

// afterCopy drops what the store remembers of its (formerly empty) tables:
// the date_added high-water mark is reloaded from the copied rows, the
// Bloom filter of known ids and the collection keys are forgotten.
func (s *Store) afterCopy(ctx context.Context) error {
	s.wmu.Lock()
	s.known = nil
	err := s.loadHighWater(ctx)
	s.wmu.Unlock()
	s.cmu.Lock()
	clear(s.cids)
	s.cmu.Unlock()
	if err != nil {
		return fmt.Errorf("reload date_added high-water mark: %w", err)
	}
	return nil
}

// sums are the digests of every copied table, by name.
type sums map[string]*tableSum

// tableSum is an order-independent digest of a table's rows: the sum, modulo
// 2^256, of the SHA-256 of each row's encoding. For versions it also keeps
// the same digest over (vid, hash) alone.
type tableSum struct {
	name      string
	rows      int64
	sum       [4]uint64
	vid, hash int // column indexes in versions, else -1
	vhash     [4]uint64
	buf, vbuf []byte
}

func newTableSum(name string, cols []string) *tableSum {
	d := &tableSum{name: name, vid: -1, hash: -1}
	if name == "versions" {
		d.vid, d.hash = slices.Index(cols, "vid"), slices.Index(cols, "hash")
	}
	return d
}

func (d *tableSum) add(vals []any) {
	d.rows++
	d.buf = d.buf[:0]
	for _, v := range vals {
		d.buf = appendValue(d.buf, v)
	}
	addHash(&d.sum, sha256.Sum256(d.buf))
	if d.vid >= 0 && d.hash >= 0 {
		d.vbuf = appendValue(appendValue(d.vbuf[:0], vals[d.vid]), vals[d.hash])
		addHash(&d.vhash, sha256.Sum256(d.vbuf))
	}
}

// appendValue encodes one column value the same way whichever driver read
// it: integers of any width (and booleans) as integers, text and blobs
// alike as bytes.
func appendValue(b []byte, v any) []byte {
	var i int64
	switch v := v.(type) {
	case nil:
		return append(b, 'n')
	case int64:
		i = v
	case int32:
		i = int64(v)
	case int16:
		i = int64(v)
	case int:
		i = int64(v)
	case bool:
		if v {
			i = 1
		}
	case []byte:
		b = binary.AppendUvarint(append(b, 'b'), uint64(len(v)))
		return append(b, v...)
	case string:
		b = binary.AppendUvarint(append(b, 'b'), uint64(len(v)))
		return append(b, v...)
	case float64:
		return strconv.AppendFloat(append(b, 'f'), v, 'g', -1, 64)
	case time.Time:
		b = append(b, 't')
		return binary.BigEndian.AppendUint64(b, uint64(v.UnixNano()))
	default:
		s := fmt.Sprintf("%T:%v", v, v)
		b = binary.AppendUvarint(append(b, 'x'), uint64(len(s)))
		return append(b, s...)
	}
	return binary.AppendVarint(append(b, 'i'), i)
}

func addHash(acc *[4]uint64, h [sha256.Size]byte) {
	var carry uint64
	for i := 3; i >= 0; i-- {
		acc[i], carry = bits.Add64(acc[i], binary.BigEndian.Uint64(h[8*i:]), carry)
	}
}

func hexSum(acc [4]uint64) string {
	var b [32]byte
	for i, v := range acc {
		binary.BigEndian.PutUint64(b[8*i:], v)
	}
	return hex.EncodeToString(b[:])
}

// digestTables reads every row of every copied table and digests it.
func digestTables(ctx context.Context, q querier, cols map[string][]string) (sums, error) {
	out := sums{}
	for _, t := range copyTables {
		c := cols[t]
		d := newTableSum(t, c)
		rows, err := q.QueryContext(ctx, "SELECT "+strings.Join(c, ", ")+" FROM "+copyFrom(t))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		if err := eachRow(rows, len(c), func(vals []any) error { d.add(vals); return nil }); err != nil {
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		out[t] = d
	}
	return out, nil
}

// eachRow calls fn with the values of each row of rows (n columns; the
// slice is reused), then closes rows.
func eachRow(rows *sql.Rows, n int, fn func(vals []any) error) error {
	defer rows.Close()
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// diffSums describes how b differs from a (the source), or "".
func diffSums(a, b sums) string {
	var diffs []string
	for _, t := range copyTables {
		x, y := a[t], b[t]
		switch {
		case x.rows != y.rows:
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows (source %d)", t, y.rows, x.rows))
		case x.sum != y.sum:
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows like the source but other content", t, y.rows))
		}
	}
	return strings.Join(diffs, "; ")
}

func (s sums) report() ([]TableReport, string) {
	var out []TableReport
	var vh string
	for _, t := range copyTables {
		d := s[t]
		out = append(out, TableReport{Name: t, Rows: d.rows, Digest: hexSum(d.sum)})
		if t == "versions" {
			vh = hexSum(d.vhash)
		}
	}
	return out, vh
}

// manifests digests every collection's manifest, every version of every
// object, in listing order, through the read API.
func manifests(ctx context.Context, s *Store) ([]ManifestReport, error) {
	cols, err := s.Collections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ManifestReport, 0, len(cols))
	for _, c := range cols {
		m := ManifestReport{ID: c.ID, Alias: c.Alias}
		h := sha256.New()
		var buf []byte
		q := Query{CollectionID: c.ID, Versions: VersionFilter{All: true}, MaxTLP: TLPRed, Limit: 10000}
		for {
			p, err := s.Manifest(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("manifest of %s: %w", c.Alias, err)
			}
			for _, it := range p.Items {
				ver := it.Modified
				if ver.IsZero() {
					ver = it.Created
				}
				buf = binary.AppendUvarint(buf[:0], uint64(len(it.ID)))
				buf = append(buf, it.ID...)
				buf = binary.AppendVarint(buf, it.DateAdded)
				buf = binary.AppendVarint(buf, ver.UnixMicro())
				h.Write(buf)
				m.Entries++
			}
			if !p.More || len(p.Items) == 0 {
				break
			}
			last := p.Items[len(p.Items)-1].Key
			q.After = &last
		}
		m.Digest = hex.EncodeToString(h.Sum(nil))
		out = append(out, m)
	}
	return out, nil
}

func diffManifests(a, b []ManifestReport) string {
	var diffs []string
	byID := map[string]ManifestReport{}
	for _, m := range b {
		byID[m.ID] = m
	}
	for _, x := range a {
		y, ok := byID[x.ID]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("collection %s (%s) is missing", x.Alias, x.ID))
		case x.Alias != y.Alias:
			diffs = append(diffs, fmt.Sprintf("collection %s has alias %s (source %s)", x.ID, y.Alias, x.Alias))
		case x.Entries != y.Entries:
			diffs = append(diffs, fmt.Sprintf("collection %s lists %d manifest entries (source %d)", x.Alias, y.Entries, x.Entries))
		case x.Digest != y.Digest:
			diffs = append(diffs, fmt.Sprintf("collection %s lists other manifest entries", x.Alias))
		}
		delete(byID, x.ID)
	}
	for _, y := range byID {
		diffs = append(diffs, fmt.Sprintf("collection %s (%s) is not in the source", y.Alias, y.ID))
	}
	return strings.Join(diffs, "; ")
}
