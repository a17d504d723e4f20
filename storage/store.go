package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3" // registers the sqlite3 driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// applicationID marks a SQLite file as a taxii-bridge database ("TXBR").
const applicationID = 0x54584252

// hwKey is the state key of the persisted date_added high-water mark (D-1).
const hwKey = "storage.date_added_high_water"

// genKey is the state key of the write generation on PostgreSQL: every
// write transaction moves it (the equivalent of SQLite's data_version).
const genKey = "storage.generation"

// Store is a taxii-bridge database: one writer connection and a small pool of
// read connections over the same SQLite file, or over one PostgreSQL
// database (OpenPostgres). It is safe for concurrent use.
type Store struct {
	w   *sql.DB // exactly one connection: every write goes through it
	r   *sql.DB // read-only pool
	now func() time.Time
	// dbClock: date_added comes from the database's clock (PostgreSQL
	// without WithNow), not from now.
	dbClock bool
	d       *dialect
	pg      *pgInfo // nil for SQLite

	wmu   sync.Mutex // serialises Update; guards hw and known
	hw    int64      // greatest date_added handed out, µs
	known *knownIDs  // nil until a transaction builds it (known.go)
	// dataVersion is the writer connection's PRAGMA data_version (on
	// PostgreSQL the generation row in state) when known and hw were last
	// valid: it moves when another connection or process commits.
	dataVersion int64

	cmu  sync.RWMutex
	cids map[string]int64 // collection id -> cid, filled lazily

	smu    sync.Mutex
	rstmts map[string]*sql.Stmt // prepared read statements by query text
	// wstmts are the write transactions' statements, prepared once on the
	// writer connection (SQLite) and reused by every transaction after
	// the one that first ran them; guarded by wmu.
	wstmts map[string]*sql.Stmt
	lstmts map[uint64]*sql.Stmt // prepared listing statements by shape (read.go)

	// rsem admits listings to the read pool in arrival order. database/sql
	// hands a freed connection to a random waiter, which under 32
	// concurrent clients gave a p99 ten times the median.
	rsem chan struct{}
}

// Option configures Open.
type Option func(*options)

type options struct {
	now       func() time.Time
	nowSet    bool
	readConns int
	cacheKiB  int
}

// WithNow replaces the clock used for date_added (tests); on PostgreSQL it
// also replaces the database's clock.
func WithNow(now func() time.Time) Option {
	return func(o *options) { o.now, o.nowSet = now, true }
}

// WithReadConns sets the size of the read pool (default 4).
func WithReadConns(n int) Option { return func(o *options) { o.readConns = n } }

// Open opens or creates the database at path and applies pending migrations.
// A file that is not a SQLite database, or a SQLite database that belongs to
// another program, is refused with an error saying so.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, readConns: 4, cacheKiB: 16 << 10}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" {
		return nil, errors.New("open storage: empty database path")
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("open storage %s: directory %s does not exist", path, filepath.Dir(path))
	}
	if o.readConns < 1 {
		o.readConns = 1
	}
	// A new database file is created here, readable and writable by its
	// owner only, before SQLite opens it; SQLite gives the -wal and -shm
	// files the database file's mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("open storage %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open storage %s: %w", path, err)
	}
	u := (&url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}).String()
	wdsn := u + "?_busy_timeout=10000&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate&_cache_size=-" + strconv.Itoa(o.cacheKiB)
	w, err := sql.Open("sqlite3", wdsn)
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, now: o.now, d: sqliteDialect, cids: map[string]int64{}, rstmts: map[string]*sql.Stmt{}, lstmts: map[uint64]*sql.Stmt{}}
	if err := s.checkFile(ctx, path); err != nil {
		w.Close()
		return nil, err
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("open storage %s: switch to WAL journal: %w", path, err)
	}
	if mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("open storage %s: journal mode is %q, WAL is required", path, mode)
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := s.loadHighWater(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open storage %s: %w", path, err)
	}
	rdsn := u + "?mode=ro&_busy_timeout=10000&_foreign_keys=1&_cache_size=-" + strconv.Itoa(o.cacheKiB)
	r, err := sql.Open("sqlite3", rdsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open storage %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(o.readConns)
	r.SetMaxIdleConns(o.readConns)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open storage %s for reading: %w", path, err)
	}
	s.r = r
	s.rsem = make(chan struct{}, o.readConns)
	return s, nil
}

// checkFile refuses files that are not SQLite databases or that belong to
// another application, before anything is written to them.
func (s *Store) checkFile(ctx context.Context, path string) error {
	var app int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA application_id").Scan(&app); err != nil {
		return fmt.Errorf("open storage %s: not a usable SQLite database: %w", path, err)
	}
	var tables int
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'").Scan(&tables); err != nil {
		return fmt.Errorf("open storage %s: not a usable SQLite database: %w", path, err)
	}
	switch {
	case app == applicationID:
		return nil
	case app != 0:
		return fmt.Errorf("open storage %s: SQLite database belongs to another application (application_id %#x)", path, app)
	case tables > 0:
		return fmt.Errorf("open storage %s: SQLite database has %d tables but is not a taxii-bridge database", path, tables)
	}
	// A new database: the page size can only be chosen before the first
	// write. 16 KiB pages hold ~25 versions of ~600 bytes with less slack
	// than 4 KiB ones and halve the reads of a crawl.
	for _, p := range []string{"PRAGMA page_size = 16384", "PRAGMA application_id = " + strconv.Itoa(applicationID)} {
		if _, err := s.w.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("open storage %s: initialise database: %w", path, err)
		}
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrationSteps are the parts of migrations that SQL cannot express, run
// after the migration's SQL in its transaction.
var migrationSteps = map[int]func(*Tx) error{
	4: migrate4,
	5: migrate5,
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and an underscore", name)
		}
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", ms[i].name, i+1)
		}
	}
	return ms, nil
}

// migrate applies every embedded migration not yet recorded, each in its own
// transaction together with its record. On PostgreSQL it holds a session
// advisory lock meanwhile, so that replicas starting together migrate once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	c, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer c.Close()
	if s.pg != nil {
		if _, err := c.ExecContext(ctx, "SELECT pg_advisory_lock($1, $2)", pgMigrateLock, s.pg.lockKey); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		// Unlocked also when ctx is cancelled: the connection goes back
		// to the pool holding nothing (and closing it would release it).
		defer c.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, $2)", pgMigrateLock, s.pg.lockKey)
	}
	if _, err := c.ExecContext(ctx, s.d.sql(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`)); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := c.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this program knows (%d)", have, len(ms))
	}
	for _, m := range ms[have:] {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, s.d.sql(m.sql)); err != nil {
			tx.Rollback()
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if step := migrationSteps[m.version]; step != nil {
			if err := step(&Tx{ctx: ctx, tx: tx, s: s}); err != nil {
				tx.Rollback()
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.d.sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			m.version, m.name, s.now().UTC().Format(time.RFC3339Nano)); err != nil {
			tx.Rollback()
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %s: %w", m.name, err)
		}
	}
	return nil
}

// loadHighWater restores the date_added high-water mark: the persisted value,
// or the greatest stored date_added if that is larger.
func (s *Store) loadHighWater(ctx context.Context) error {
	v, err := readHighWater(ctx, s.w, s.d)
	if err != nil {
		return err
	}
	s.hw = max(s.hw, v)
	rows, err := s.w.QueryContext(ctx, "SELECT cid FROM collections")
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	var cids []int64
	for rows.Next() {
		var cid int64
		if err := rows.Scan(&cid); err != nil {
			rows.Close()
			return fmt.Errorf("list collections: %w", err)
		}
		cids = append(cids, cid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, cid := range cids {
		var m sql.NullInt64
		if err := s.w.QueryRowContext(ctx, s.d.sql("SELECT max(date_added) FROM members WHERE cid = ?"), cid).Scan(&m); err != nil {
			return fmt.Errorf("read greatest date_added: %w", err)
		}
		if m.Valid && m.Int64 > s.hw {
			s.hw = m.Int64
		}
	}
	return nil
}

// readHighWater reads the persisted date_added high-water mark (0: none).
func readHighWater(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, d *dialect) (int64, error) {
	raw, ok, err := readState(ctx, q, d, hwKey)
	if err != nil || !ok {
		return 0, err
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse date_added high-water mark %q: %w", raw, err)
	}
	return v, nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	var errs []error
	s.smu.Lock()
	for q, st := range s.rstmts {
		errs = append(errs, st.Close())
		delete(s.rstmts, q)
	}
	for k, st := range s.lstmts {
		errs = append(errs, st.Close())
		delete(s.lstmts, k)
	}
	s.smu.Unlock()
	s.wmu.Lock()
	for q, st := range s.wstmts {
		errs = append(errs, st.Close())
		delete(s.wstmts, q)
	}
	s.wmu.Unlock()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.pg == nil {
		if _, err := s.w.Exec("PRAGMA optimize"); err != nil {
			errs = append(errs, fmt.Errorf("optimize: %w", err))
		}
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// Tx is one write transaction on the single writer connection. It is valid
// only inside the function passed to Update.
type Tx struct {
	ctx     context.Context
	tx      *sql.Tx
	s       *Store
	hwDirty bool
	stmts   map[string]*stmt
	cache   txCache
	fresh   freshGraph // reverse edges of the keys this transaction created
	// uncached lists the statements prepared for this transaction alone
	// (Store.keepStmts).
	uncached []string
	// dbNow is the database's clock when the transaction took the write
	// lock, and at when it did by this process's monotonic clock
	// (PostgreSQL without WithNow; see nextDateAdded).
	dbNow, at time.Time
}

// Update runs fn in one write transaction on the single writer connection and
// commits iff fn returns nil. Updates are serialised, on PostgreSQL across
// every process sharing the database; fn must not call the Store's own
// writing methods (EnsureCollection, PutStatus, Update, Maintain), which
// would wait for fn to finish. Keep transactions to a batch (≈1,000
// objects) so that WAL checkpoints can complete.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	// Statements run without the caller's cancellation: with a cancellable
	// context the driver runs every statement on a goroutine of its own and
	// waits for it, which cost the sync half its commit time in handoffs.
	// Cancelling ctx still rolls the transaction back (database/sql watches
	// the context given to BeginTx), and fn's statements then fail.
	tx := &Tx{ctx: context.WithoutCancel(ctx), tx: sqlTx, s: s}
	defer s.keepStmts(tx)
	if err := tx.begin(ctx); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := fn(tx); err != nil {
		if rerr := sqlTx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return err
	}
	if tx.hwDirty {
		if err := tx.setState(tx.ctx, hwKey, []byte(strconv.FormatInt(s.hw, 10))); err != nil {
			sqlTx.Rollback()
			return fmt.Errorf("persist date_added high-water mark: %w", err)
		}
	}
	gen := s.dataVersion
	if s.pg != nil {
		// Every write moves the generation, so that other processes
		// drop what they cached (begin).
		gen++
		if err := tx.setState(tx.ctx, genKey, []byte(strconv.FormatInt(gen, 10))); err != nil {
			sqlTx.Rollback()
			return fmt.Errorf("move generation: %w", err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit write transaction: %w", err)
	}
	s.dataVersion = gen
	return nil
}

// maxWriteStmts bounds the writer's prepared statements (wstmts). Multi-row
// inserts come in seven sizes per table (putBatch.insert), so the write
// path uses about sixty.
const maxWriteStmts = 256

// keepStmts prepares on the writer connection, once the transaction has
// ended and the connection is free again, the statements tx prepared for
// itself, so that later transactions skip SQLite's parse and code
// generation (Tx.prepare). A statement that fails to prepare is simply not
// kept.
func (s *Store) keepStmts(tx *Tx) {
	for _, q := range tx.uncached {
		if _, ok := s.wstmts[q]; ok || len(s.wstmts) >= maxWriteStmts {
			continue
		}
		st, err := s.w.PrepareContext(tx.ctx, q)
		if err != nil {
			continue
		}
		if s.wstmts == nil {
			s.wstmts = map[string]*sql.Stmt{}
		}
		s.wstmts[q] = st
	}
}

// begin makes the transaction the only writer and brings what the Store
// caches of the database up to date with what other processes committed.
//
// Another process that wrote since our last transaction (a `sync -once`
// beside `serve`, another replica) may have added ids the filter has not
// seen and handed out date_added beyond our high-water mark. The
// transaction holds the write lock from its start (SQLite: _txlock=
// immediate; PostgreSQL: the advisory lock), so nothing else commits until
// it ends, and the high-water mark read now is the database's.
func (tx *Tx) begin(ctx context.Context) error {
	s := tx.s
	var dv int64
	if s.pg == nil {
		if err := tx.tx.QueryRowContext(ctx, "PRAGMA data_version").Scan(&dv); err != nil {
			return fmt.Errorf("read data version: %w", err)
		}
	} else {
		if _, err := tx.tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1, $2)", pgWriteLock, s.pg.lockKey); err != nil {
			return fmt.Errorf("take write lock: %w", err)
		}
		var gen, now sql.NullInt64
		if err := tx.tx.QueryRowContext(ctx, `SELECT (SELECT CAST(convert_from(value, 'UTF8') AS BIGINT) FROM state WHERE key = $1),
			CAST(floor(extract(epoch FROM clock_timestamp()) * 1000000) AS BIGINT)`, genKey).Scan(&gen, &now); err != nil {
			return fmt.Errorf("read generation: %w", err)
		}
		dv = gen.Int64
		tx.dbNow, tx.at = time.UnixMicro(now.Int64), time.Now()
	}
	if dv != s.dataVersion {
		hw, err := readHighWater(ctx, tx.tx, s.d)
		if err != nil {
			return err
		}
		s.known, s.dataVersion, s.hw = nil, dv, max(s.hw, hw)
	}
	return nil
}

// nextDateAdded hands out the next date_added: max(now, high-water + 1) in µs
// (taxii21.md D-1). now is the database's clock on PostgreSQL (read when
// the transaction took the write lock, advanced by the time since), so
// replicas whose clocks differ still hand out increasing values. Only
// called with the write lock held.
func (tx *Tx) nextDateAdded() int64 {
	var v int64
	if tx.s.dbClock {
		v = tx.dbNow.Add(time.Since(tx.at)).UnixMicro()
	} else {
		v = tx.s.now().UnixMicro()
	}
	if v <= tx.s.hw {
		v = tx.s.hw + 1
	}
	tx.s.hw = v
	tx.hwDirty = true
	return v
}

// EnsureCollection creates or updates the collection keyed by c.Alias. The
// first call assigns a random UUIDv4 id that is kept forever (taxii21.md
// D-19); later calls update title, description, kind and can_write and
// return the stored id. c.ID is ignored.
func (s *Store) EnsureCollection(ctx context.Context, c Collection) (Collection, error) {
	if c.Alias == "" {
		return Collection{}, errors.New("ensure collection: empty alias")
	}
	err := s.Update(ctx, func(tx *Tx) error {
		var id string
		err := tx.queryRow("SELECT id FROM collections WHERE alias = ?", c.Alias).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id = uuid.NewString()
			_, err = tx.execResult(`INSERT INTO collections (cid, id, alias, title, description, kind, can_write)
				VALUES ((SELECT coalesce(max(cid), 0) + 1 FROM collections), ?, ?, ?, ?, ?, ?)`,
				id, c.Alias, c.Title, c.Description, c.Kind, c.CanWrite)
		case err == nil:
			_, err = tx.execResult(`UPDATE collections SET title = ?, description = ?, kind = ?, can_write = ?
				WHERE alias = ?`, c.Title, c.Description, c.Kind, c.CanWrite, c.Alias)
		}
		c.ID = id
		return err
	})
	if err != nil {
		return Collection{}, fmt.Errorf("ensure collection %q: %w", c.Alias, err)
	}
	return c, nil
}

const collectionCols = "id, alias, title, description, kind, can_write"

func scanCollection(sc interface{ Scan(...any) error }) (Collection, error) {
	var c Collection
	err := sc.Scan(&c.ID, &c.Alias, &c.Title, &c.Description, &c.Kind, &c.CanWrite)
	return c, err
}

// Collections lists every collection sorted by id (taxii21.md D-3).
func (s *Store) Collections(ctx context.Context) ([]Collection, error) {
	rows, err := s.r.QueryContext(ctx, s.d.sql("SELECT "+collectionCols+" FROM collections ORDER BY id"))
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	var out []Collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	return out, nil
}

// Collection returns the collection with this id or alias, or an error
// wrapping ErrNotFound. An id match wins over an alias match.
func (s *Store) Collection(ctx context.Context, idOrAlias string) (Collection, error) {
	c, err := scanCollection(s.r.QueryRowContext(ctx, s.d.sql("SELECT "+collectionCols+
		" FROM collections WHERE id = ?1 OR alias = ?1 ORDER BY id <> ?1 LIMIT 1"), idOrAlias))
	if errors.Is(err, sql.ErrNoRows) {
		return Collection{}, fmt.Errorf("collection %q: %w", idOrAlias, ErrNotFound)
	}
	if err != nil {
		return Collection{}, fmt.Errorf("read collection %q: %w", idOrAlias, err)
	}
	return c, nil
}

// cid maps a public collection id to the internal key, or ErrNotFound.
func (s *Store) cid(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (int64, error) {
	s.cmu.RLock()
	cid, ok := s.cids[id]
	s.cmu.RUnlock()
	if ok {
		return cid, nil
	}
	err := q.QueryRowContext(ctx, s.d.sql("SELECT cid FROM collections WHERE id = ?"), id).Scan(&cid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("collection %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("look up collection %q: %w", id, err)
	}
	s.cmu.Lock()
	s.cids[id] = cid
	s.cmu.Unlock()
	return cid, nil
}

// SetState stores value under key, replacing any previous value.
func (tx *Tx) SetState(key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if err := tx.setState(tx.ctx, key, value); err != nil {
		return fmt.Errorf("set state %q: %w", key, err)
	}
	return nil
}

func (tx *Tx) setState(ctx context.Context, key string, value []byte) error {
	_, err := tx.tx.ExecContext(ctx, tx.s.d.sql(`INSERT INTO state (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`), key, value)
	return err
}

// State reads the value stored under key inside the transaction.
func (tx *Tx) State(key string) ([]byte, bool, error) {
	return readState(tx.ctx, tx.tx, tx.s.d, key)
}

// State reads the value stored under key.
func (s *Store) State(ctx context.Context, key string) ([]byte, bool, error) {
	return readState(ctx, s.r, s.d, key)
}

func readState(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, d *dialect, key string) ([]byte, bool, error) {
	var v []byte
	err := q.QueryRowContext(ctx, d.sql("SELECT value FROM state WHERE key = ?"), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read state %q: %w", key, err)
	}
	return v, true, nil
}

// Ping checks that the database answers a read (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1 FROM schema_migrations LIMIT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping storage: %w", err)
	}
	return nil
}

// Maintain checkpoints the WAL into the database file and lets SQLite
// refresh its planner statistics (taxii21.md D-22); on PostgreSQL it
// ANALYZEs the store's tables (autovacuum does the rest). Run it now and
// then, e.g. after a sync; readers keep reading meanwhile.
func (s *Store) Maintain(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pg != nil {
		if _, err := s.w.ExecContext(ctx, "ANALYZE "+strings.Join(copyTables, ", ")); err != nil {
			return fmt.Errorf("analyze: %w", err)
		}
		return nil
	}
	if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, "PRAGMA optimize"); err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	return nil
}
