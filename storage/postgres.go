package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Advisory lock keys (the first of pg_advisory_lock's two int4 keys; the
// second is pgInfo.lockKey). Writes and migrations lock apart, so that a
// replica migrating does not look like a writer.
const (
	pgWriteLock   = 0x54584257 // "TXBW"
	pgMigrateLock = 0x5458424d // "TXBM"
)

// pgInfo is what a Store on PostgreSQL knows beyond a SQLite one.
type pgInfo struct {
	// where is the URL with its password replaced, for messages.
	where string
	// schema is the schema the store lives in (the first of search_path).
	schema string
	// lockKey is the second advisory lock key: a hash of schema, so that
	// stores in different schemas of one database (tests) do not
	// serialise each other while replicas of one store do.
	lockKey int32
}

var (
	pgPassword     = regexp.MustCompile(`(?i)(password\s*=\s*)('(\\.|[^'])*'|[^\s&]+)`)
	pgUserPassword = regexp.MustCompile(`^(\w+://[^:/@]*):.*@`)
)

// redactURL is a connection string fit for messages: no password, in
// neither URL (user info or query) nor key=value form, also when it does
// not parse.
func redactURL(conn string) string {
	if u, err := url.Parse(conn); err == nil && u.Scheme != "" {
		q := u.Query()
		for k := range q { // password, sslpassword, …
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.Redacted()
	}
	conn = pgUserPassword.ReplaceAllString(conn, "${1}:xxxxx@")
	return pgPassword.ReplaceAllString(conn, "${1}xxxxx")
}

// OpenPostgres opens the store in the PostgreSQL database named by conn (a
// postgres:// URL or key=value string, as pgx takes it; search_path, as a
// runtime parameter, selects the schema) and applies pending migrations
// under an advisory lock, so that replicas starting together migrate once.
// Any number of Stores, in any number of processes, may share one database:
// their writes are serialised by a transaction-scoped advisory lock. Errors
// never carry the password.
func OpenPostgres(ctx context.Context, conn string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, readConns: 4}
	for _, opt := range opts {
		opt(&o)
	}
	where := redactURL(conn)
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		// pgx's message quotes the connection string, and the error it
		// wraps may too (net/url's does): keep only what pgx found wrong.
		msg := err.Error()
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg, _, _ = strings.Cut(msg[i+3:], " (")
		} else {
			msg = "malformed"
		}
		err = errors.New("cannot parse connection string: " + msg)
		return nil, fmt.Errorf("open storage %s: %w", where, err)
	}
	o.readConns = max(o.readConns, 1)
	w := stdlib.OpenDB(*cfg)
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	s := &Store{w: w, now: o.now, dbClock: !o.nowSet, d: &dialect{pg: true}, pg: &pgInfo{where: where},
		cids: map[string]int64{}, rstmts: map[string]*sql.Stmt{}, lstmts: map[uint64]*sql.Stmt{}}
	fail := func(format string, err error) (*Store, error) {
		w.Close()
		if s.r != nil {
			s.r.Close()
		}
		return nil, fmt.Errorf(format, where, err)
	}
	var schema sql.NullString
	if err := w.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fail("open storage %s: %w", err)
	}
	if !schema.Valid {
		return fail("open storage %s: %w", errors.New("search_path names no schema that exists"))
	}
	h := fnv.New32a()
	h.Write([]byte(schema.String))
	s.pg.schema, s.pg.lockKey = schema.String, int32(h.Sum32())
	if err := s.migrate(ctx); err != nil {
		return fail("migrate %s: %w", err)
	}
	if err := s.loadHighWater(ctx); err != nil {
		return fail("open storage %s: %w", err)
	}
	s.r = stdlib.OpenDB(*cfg)
	s.r.SetMaxOpenConns(o.readConns)
	s.r.SetMaxIdleConns(o.readConns)
	if err := s.r.PingContext(ctx); err != nil {
		return fail("open storage %s for reading: %w", err)
	}
	s.rsem = make(chan struct{}, o.readConns)
	return s, nil
}

// pgFault reports PostgreSQL errors an operator must act on: insufficient
// resources (class 53: disk full, out of memory), system errors (58) and
// internal errors (XX: data or index corrupted).
func pgFault(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) < 2 {
		return false
	}
	switch pe.Code[:2] {
	case "53", "58", "XX":
		return true
	}
	return false
}

// pgTables are the store's tables, for Check: what Copy carries, and the
// migrations' record.
var pgTables = append([]string{"schema_migrations"}, copyTables...)

// pgCheck is Check on PostgreSQL. The engine checksums and checks its own
// pages; what the store can check is its schema and its own invariants:
// every table readable, the schema version this program's, and (full)
// every membership pointing at stored bytes and an object, at most one
// latest and one first row per object in a collection.
func (s *Store) pgCheck(ctx context.Context, full bool) error {
	var problems []string
	for _, t := range pgTables {
		var one int
		err := s.r.QueryRowContext(ctx, "SELECT 1 FROM "+t+" LIMIT 1").Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			if pgFault(err) {
				problems = append(problems, fmt.Sprintf("table %s: %v", t, err))
				continue
			}
			return fmt.Errorf("check database %s: %w", s.pg.where, err)
		}
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	have, err := s.schemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("check database %s: %w", s.pg.where, err)
	}
	if have != len(ms) {
		problems = append(problems, fmt.Sprintf("schema version %d, this program's is %d", have, len(ms)))
	}
	if full {
		more, err := s.invariantProblems(ctx)
		if err != nil {
			return fmt.Errorf("check database %s: %w", s.pg.where, err)
		}
		problems = append(problems, more...)
	}
	if len(problems) > 0 {
		return &IntegrityError{Path: s.pg.where, Full: full, Problems: problems}
	}
	return nil
}

// pgSize is the bytes the store's tables take, with their indexes and
// TOAST (the schema's share of pg_database_size).
func (s *Store) pgSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
	return n, err
}
