package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// invariantQueries count violations of the store's own rules that a
// damaged or hand-edited database may break. Check runs them in full mode on
// both backends.
var invariantQueries = []struct{ what, q string }{
	{"memberships without version bytes", "SELECT count(*) FROM members m WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.vid = m.vid)"},
	{"memberships without an object", "SELECT count(*) FROM members m WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.oid = m.oid)"},
	{"objects with more than one latest version", "SELECT count(*) FROM (SELECT 1 FROM members WHERE latest = 1 GROUP BY cid, oid HAVING count(*) > 1) x"},
	{"objects with more than one first version", "SELECT count(*) FROM (SELECT 1 FROM members WHERE first = 1 GROUP BY cid, oid HAVING count(*) > 1) x"},
}

// invariantProblems describes every broken rule: invariantQueries, and
// that refs and edges hold one graph (edges.go). It reads one snapshot.
func (s *Store) invariantProblems(ctx context.Context) ([]string, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.pg != nil {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var problems []string
	for _, c := range invariantQueries {
		var n int64
		if err := tx.QueryRowContext(ctx, c.q).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", c.what, err)
		}
		if n > 0 {
			problems = append(problems, fmt.Sprintf("%d %s", n, c.what))
		}
	}
	g, err := s.graphProblems(ctx, tx)
	return append(problems, g...), err
}

// graphProblems checks that every target a refs row lists, in order and
// once, has its edges row when it is reverse-indexed (reverseIndexed), and
// that edges has no other rows. refs is read a page at a time (a
// PostgreSQL connection runs one statement at a time).
func (s *Store) graphProblems(ctx context.Context, tx *sql.Tx) ([]string, error) {
	var rows int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM edges").Scan(&rows); err != nil {
		return nil, fmt.Errorf("count edges: %w", err)
	}
	probe, err := tx.PrepareContext(ctx, s.d.sql(`SELECT (SELECT count(*) FROM edges WHERE cid = ?1 AND dst = ?2 AND kind = ?3 AND src = ?4),
		coalesce((SELECT stix_id FROM objects WHERE oid = ?2), '')`))
	if err != nil {
		return nil, fmt.Errorf("check edges: %w", err)
	}
	defer probe.Close()
	page := s.d.sql(`SELECT cid, src, kind, dsts FROM refs WHERE (cid, src, kind) > (?, ?, ?) ORDER BY cid, src, kind LIMIT 1000`)
	type ref struct {
		cid, src int64
		kind     int
		dsts     []byte
	}
	var (
		last                              = ref{cid: -1}
		present, missing, damaged, unkept int64
	)
	for {
		r, err := tx.QueryContext(ctx, page, last.cid, last.src, last.kind)
		if err != nil {
			return nil, fmt.Errorf("read refs: %w", err)
		}
		var chunk []ref
		for r.Next() {
			var f ref
			if err := r.Scan(&f.cid, &f.src, &f.kind, &f.dsts); err != nil {
				r.Close()
				return nil, fmt.Errorf("read refs: %w", err)
			}
			chunk = append(chunk, f)
		}
		r.Close()
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("read refs: %w", err)
		}
		if len(chunk) == 0 {
			break
		}
		for _, f := range chunk {
			keys, err := unpackKeys(f.dsts)
			if err != nil || len(keys) == 0 || !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
				damaged++
				continue
			}
			for _, k := range keys {
				var n int64
				var key string
				if err := probe.QueryRowContext(ctx, f.cid, k, f.kind, f.src).Scan(&n, &key); err != nil {
					return nil, fmt.Errorf("check edges: %w", err)
				}
				switch {
				case !reverseIndexed(f.kind, idType(stixID(key))):
					unkept += n
				case n == 0:
					missing++
				default:
					present++
				}
			}
		}
		last = chunk[len(chunk)-1]
	}
	var problems []string
	if damaged > 0 {
		problems = append(problems, fmt.Sprintf("%d damaged reference lists (refs)", damaged))
	}
	if missing > 0 {
		problems = append(problems, fmt.Sprintf("%d references without their edges row", missing))
	}
	if unkept > 0 {
		problems = append(problems, fmt.Sprintf("%d edges rows for targets kept without reverse rows (identities, markings, origins of relationships)", unkept))
	}
	if extra := rows - present - unkept; extra > 0 {
		problems = append(problems, fmt.Sprintf("%d edges rows no reference list names", extra))
	}
	return problems, nil
}
