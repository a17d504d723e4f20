package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// CollectionStats counts what one collection holds.
type CollectionStats struct {
	Collection
	// Objects counts distinct objects (each by its latest version);
	// Versions every version membership.
	Objects, Versions int64
	// NewestDateAdded is the greatest date_added, µs since the epoch; 0 when empty.
	NewestDateAdded int64
}

// Stats describes the database for operators (metrics, status page).
type Stats struct {
	// Path is the database file (PostgreSQL: the URL without password).
	Path string
	// DatabaseBytes is page_count × page_size: the main file, WAL
	// excluded (PostgreSQL: the store's tables with indexes and TOAST).
	DatabaseBytes int64
	Collections   []CollectionStats
}

// Stats counts objects and versions per collection. It reads every
// membership row once, so call it seldom on large databases (metrics cache it).
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	path, err := s.Path(ctx)
	if err != nil {
		return st, err
	}
	st.Path = path
	if s.pg != nil {
		if st.DatabaseBytes, err = s.pgSize(ctx); err != nil {
			return st, fmt.Errorf("stats %s: size: %w", path, err)
		}
	} else {
		var pages, size int64
		if err := s.r.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return st, fmt.Errorf("stats %s: page count: %w", path, err)
		}
		if err := s.r.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
			return st, fmt.Errorf("stats %s: page size: %w", path, err)
		}
		st.DatabaseBytes = pages * size
	}
	rows, err := s.r.QueryContext(ctx, s.d.sql(`SELECT c.id, c.alias, c.title, c.description, c.kind, c.can_write,
		(SELECT count(*) FROM members m WHERE m.cid = c.cid),
		(SELECT count(*) FROM members m WHERE m.cid = c.cid AND m.latest = 1),
		(SELECT coalesce(max(date_added), 0) FROM members m WHERE m.cid = c.cid)
		FROM collections c ORDER BY c.id`))
	if err != nil {
		return st, fmt.Errorf("stats %s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c CollectionStats
		if err := rows.Scan(&c.ID, &c.Alias, &c.Title, &c.Description, &c.Kind, &c.CanWrite,
			&c.Versions, &c.Objects, &c.NewestDateAdded); err != nil {
			return st, fmt.Errorf("stats %s: %w", path, err)
		}
		st.Collections = append(st.Collections, c)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("stats %s: %w", path, err)
	}
	return st, nil
}

// NewestDateAdded is the greatest date_added (µs) of the versions in the
// collection served to a reader capped at maxTLP, or the collection's last
// change without a new version (an object hidden, removed or pruned) when
// that is later, or 0: the high-water mark on which conditional polling
// (ETag) rests. It is one descent of the members b-tree from its right end
// and one lookup of the collection.
func (s *Store) NewestDateAdded(ctx context.Context, collectionID string, maxTLP int) (int64, error) {
	cid, err := s.cid(ctx, s.r, collectionID)
	if err != nil {
		return 0, err
	}
	// The newest row this reader is served, or the collection's last
	// change without a new row (something hidden, removed or pruned),
	// whichever is later.
	// +?1: see the note on "m.cid = +?" in read.go (no re-prepare per bind).
	st, err := s.readStmt(ctx, `SELECT max(coalesce((SELECT date_added FROM members WHERE cid = +?1 AND tlp <= ?2 AND vis <= ?2
		ORDER BY date_added DESC LIMIT 1), 0), (SELECT changed FROM collections WHERE cid = +?1))`)
	if err != nil {
		return 0, fmt.Errorf("newest date_added: %w", err)
	}
	var v int64
	err = st.QueryRowContext(ctx, cid, min(maxTLP, TLPRed)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("newest date_added of %s: %w", collectionID, err)
	}
	return v, nil
}
