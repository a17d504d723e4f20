package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// IntegrityError is a failed SQLite integrity check: the database file is
// damaged.
type IntegrityError struct {
	Path string
	// Full is true for integrity_check, false for quick_check.
	Full bool
	// Problems are SQLite's findings, at most maxProblems of them.
	Problems []string
}

func (e *IntegrityError) Error() string {
	kind := "quick_check"
	if e.Full {
		kind = "integrity_check"
	}
	shown := e.Problems
	more := ""
	if len(shown) > 3 {
		shown, more = shown[:3], fmt.Sprintf("; and %d more", len(e.Problems)-3)
	}
	return fmt.Sprintf("database %s is damaged: %s reports %s%s", e.Path, kind, strings.Join(shown, "; "), more)
}

// maxProblems bounds how many findings a check collects.
const maxProblems = 10

// Check runs SQLite's integrity check on the whole file: PRAGMA quick_check
// (O(N): every page, b-tree shape, record format, NOT NULL) or, when full,
// PRAGMA integrity_check (also every index against its table, O(N log N))
// followed by the store's own rules (invariants.go: memberships, latest and
// first flags, the graph's two tables).
// It returns nil for a sound file, an *IntegrityError naming the file and
// what SQLite found, or another error when the check itself cannot run —
// which on an open Store also means the file is unusable. Check reads the
// whole file: seconds per gigabyte.
func (s *Store) Check(ctx context.Context, full bool) error {
	if s.pg != nil {
		return s.pgCheck(ctx, full)
	}
	path, err := s.Path(ctx)
	if err != nil {
		return err
	}
	pragma := fmt.Sprintf("PRAGMA quick_check(%d)", maxProblems)
	if full {
		pragma = fmt.Sprintf("PRAGMA integrity_check(%d)", maxProblems)
	}
	rows, err := s.r.QueryContext(ctx, pragma)
	if err != nil {
		return fmt.Errorf("check database %s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check database %s: %w", path, err)
		}
		// SQLite may put several findings in one row, one per line.
		for _, l := range strings.Split(line, "\n") {
			if l = strings.TrimSpace(l); l != "" && l != "ok" && !strings.HasPrefix(l, "*** in database") {
				problems = append(problems, l)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check database %s: %w", path, err)
	}
	if len(problems) == 0 && full {
		// A sound file: now the store's own rules.
		if problems, err = s.invariantProblems(ctx); err != nil {
			return fmt.Errorf("check database %s: %w", path, err)
		}
	}
	if len(problems) > 0 {
		return &IntegrityError{Path: path, Full: full, Problems: problems}
	}
	return nil
}

// Path is the file the store has open, as SQLite resolved it; on
// PostgreSQL, the connection URL without its password.
func (s *Store) Path(ctx context.Context) (string, error) {
	if s.pg != nil {
		return s.pg.where, nil
	}
	rows, err := s.r.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return "", fmt.Errorf("database file name: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return "", fmt.Errorf("database file name: %w", err)
		}
		if name == "main" {
			return file, nil
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("database file name: %w", err)
	}
	return "", errors.New("database file name: no main database")
}

// IsFault reports whether err says the database file itself is damaged or
// unusable — SQLite's CORRUPT, NOTADB, IOERR, CANTOPEN, FULL, READONLY or
// PERM, or a failed Check; PostgreSQL's insufficient resources, system and
// internal errors — as opposed to a bad request or a cancelled context.
// Such errors do not go away by retrying; an operator must act.
func IsFault(err error) bool {
	if err == nil {
		return false
	}
	if pgFault(err) {
		return true
	}
	var ie *IntegrityError
	if errors.As(err, &ie) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrCorrupt, sqlite3.ErrNotADB, sqlite3.ErrIoErr, sqlite3.ErrCantOpen,
			sqlite3.ErrFull, sqlite3.ErrReadonly, sqlite3.ErrPerm:
			return true
		}
	}
	return false
}
