package storage

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// dialect is the one place where the store's SQL differs between its
// backends. The store's statements are written for SQLite, in a subset both
// engines accept (the rules are in doc.go, "# PostgreSQL"); sql rewrites a
// statement for PostgreSQL mechanically, once per statement text.
type dialect struct {
	pg bool
	// rewritten caches sql's answers by statement text. The texts are
	// finite (constants, and listing shapes bounded by maxListStmts).
	rewritten sync.Map // string -> string
}

var (
	sqliteDialect = &dialect{}
	// Plan pins mean nothing to PostgreSQL's planner.
	reIndexedBy  = regexp.MustCompile(`\s+(INDEXED BY\s+\w+|NOT INDEXED)\b`)
	reWithoutRow = regexp.MustCompile(`\)\s*WITHOUT ROWID`)
	reInteger    = regexp.MustCompile(`\bINTEGER\b`)
	reBlob       = regexp.MustCompile(`\bBLOB\b`)
	// SQLite's CROSS JOIN … ON is an inner join whose loop order is fixed;
	// PostgreSQL's CROSS JOIN takes no ON.
	reCrossJoinOn = regexp.MustCompile(`\bCROSS JOIN\s+(\w+)(\s+\w+)?\s+ON\b`)
	// json_each(?) over a JSON array: its value column, as text.
	reJSONEach = regexp.MustCompile(`\bjson_each\(([^()]*)\)`)
	// A unary plus before a parameter (SQLite: hide the value from the
	// planner); never a binary one, which has an operand before it.
	reUnaryPlus = regexp.MustCompile(`([=(,<>]\s*)\+(\?)`)
	reScalarMax = regexp.MustCompile(`\b(max|min)\(`)
)

// sql returns query as the backend runs it.
func (d *dialect) sql(query string) string {
	if !d.pg {
		return query
	}
	if q, ok := d.rewritten.Load(query); ok {
		return q.(string)
	}
	q := toPostgres(query)
	d.rewritten.Store(query, q)
	return q
}

// toPostgres rewrites one SQLite statement (or script) for PostgreSQL.
func toPostgres(q string) string {
	q = reIndexedBy.ReplaceAllString(q, "")
	q = reWithoutRow.ReplaceAllString(q, ")")
	q = reInteger.ReplaceAllString(q, "BIGINT")
	q = reBlob.ReplaceAllString(q, "BYTEA")
	q = reCrossJoinOn.ReplaceAllString(q, "JOIN $1$2 ON")
	q = reJSONEach.ReplaceAllString(q, "json_array_elements_text(CAST($1 AS json))")
	q = reUnaryPlus.ReplaceAllString(q, "$1$2")
	q = scalarMinMax(q)
	return numberParams(q)
}

// scalarMinMax turns SQLite's scalar max(a, b, …) and min(a, b, …) into
// greatest and least; with one argument they are aggregates in both.
func scalarMinMax(q string) string {
	var sb strings.Builder
	for {
		loc := reScalarMax.FindStringSubmatchIndex(q)
		if loc == nil {
			sb.WriteString(q)
			return sb.String()
		}
		open := loc[1] - 1 // the '('
		depth, comma, end := 0, false, -1
		for i := open; i < len(q) && end < 0; i++ {
			switch q[i] {
			case '(':
				depth++
			case ')':
				if depth--; depth == 0 {
					end = i
				}
			case ',':
				comma = comma || depth == 1
			}
		}
		name := q[loc[2]:loc[3]]
		if comma {
			name = map[string]string{"max": "greatest", "min": "least"}[name]
		}
		sb.WriteString(q[:loc[2]])
		sb.WriteString(name)
		sb.WriteByte('(')
		q = q[open+1:]
	}
}

// numberParams turns SQLite's parameters into PostgreSQL's: ?N is $N, and a
// bare ? is one more than the greatest number so far (SQLite's rule).
// Nothing inside a string literal is touched.
func numberParams(q string) string {
	var sb strings.Builder
	sb.Grow(len(q) + 16)
	top, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n := top + 1
			if j > i+1 {
				n, _ = strconv.Atoi(q[i+1 : j])
			}
			top = max(top, n)
			sb.WriteByte('$')
			sb.WriteString(strconv.Itoa(n))
			i = j - 1
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// args converts arguments for the backend: PostgreSQL will not store a Go
// bool in an integer column, SQLite stores it as 0 or 1. The caller's slice
// is copied before it is changed.
func (d *dialect) args(args []any) []any {
	if !d.pg {
		return args
	}
	copied := false
	for i, a := range args {
		b, ok := a.(bool)
		if !ok {
			continue
		}
		if !copied {
			args, copied = append([]any(nil), args...), true
		}
		args[i] = int64(0)
		if b {
			args[i] = int64(1)
		}
	}
	return args
}

// stmt is a statement of a write transaction. On SQLite it is prepared on
// the transaction (each statement through cgo costs µs; preparing once per
// transaction pays). On PostgreSQL it is run by its text: pgx keeps a
// prepared statement per connection and text itself, so preparing here
// would only add a round trip per transaction.
type stmt struct {
	st *sql.Stmt // SQLite
	tx *Tx       // PostgreSQL
	q  string    // the rewritten text (PostgreSQL)
}

func (tx *Tx) prepare(query string) (*stmt, error) {
	if tx.s.d.pg {
		return &stmt{tx: tx, q: tx.s.d.sql(query)}, nil
	}
	if st, ok := tx.s.wstmts[query]; ok {
		return &stmt{st: tx.tx.StmtContext(tx.ctx, st)}, nil
	}
	st, err := tx.tx.PrepareContext(tx.ctx, query)
	if err != nil {
		return nil, err
	}
	tx.uncached = append(tx.uncached, query)
	return &stmt{st: st}, nil
}

// QueryRowContext runs the statement for at most one row.
func (s *stmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	if s.st != nil {
		return s.st.QueryRowContext(ctx, args...)
	}
	return s.tx.tx.QueryRowContext(ctx, s.q, s.tx.s.d.args(args)...)
}

// QueryContext runs the statement for rows.
func (s *stmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	if s.st != nil {
		return s.st.QueryContext(ctx, args...)
	}
	return s.tx.tx.QueryContext(ctx, s.q, s.tx.s.d.args(args)...)
}

// ExecContext runs the statement for its effect.
func (s *stmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	if s.st != nil {
		return s.st.ExecContext(ctx, args...)
	}
	return s.tx.tx.ExecContext(ctx, s.q, s.tx.s.d.args(args)...)
}

// query, queryRow and execResult run a statement of the transaction once,
// unprepared, in the backend's dialect.
func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(tx.ctx, tx.s.d.sql(query), tx.s.d.args(args)...)
}

func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(tx.ctx, tx.s.d.sql(query), tx.s.d.args(args)...)
}

func (tx *Tx) execResult(query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(tx.ctx, tx.s.d.sql(query), tx.s.d.args(args)...)
}
