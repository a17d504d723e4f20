package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// graphTablesAgree fails the test unless edges holds exactly one row per
// reverse-indexed target listed in refs, and refs lists no key twice.
func graphTablesAgree(t *testing.T, s *Store) {
	t.Helper()
	type edge struct {
		cid, dst, src int64
		kind          int
	}
	types := map[int64]string{}
	for oid, key := range objectKeys(t, s) {
		types[oid] = idType(stixID(key))
	}
	want := map[edge]bool{}
	rows, err := s.w.Query("SELECT cid, src, kind, dsts FROM refs")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e edge
		var b []byte
		if err := rows.Scan(&e.cid, &e.src, &e.kind, &b); err != nil {
			t.Fatal(err)
		}
		keys, err := unpackKeys(b)
		if err != nil || len(keys) == 0 || !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
			t.Errorf("refs row %+v: keys %v, %v", e, keys, err)
		}
		for _, k := range keys {
			e.dst = k
			want[e] = reverseIndexed(e.kind, types[k])
		}
	}
	rows.Close()
	got := map[edge]bool{}
	rows, err = s.w.Query("SELECT cid, dst, kind, src FROM edges")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e edge
		if err := rows.Scan(&e.cid, &e.dst, &e.kind, &e.src); err != nil {
			t.Fatal(err)
		}
		got[e] = true
	}
	rows.Close()
	for e, indexed := range want {
		if indexed && !got[e] {
			t.Errorf("refs lists %+v, edges has no row", e)
		}
		if !indexed && got[e] {
			t.Errorf("edges has %+v, whose target (%s) has no reverse rows", e, types[e.dst])
		}
	}
	for e := range got {
		if _, listed := want[e]; !listed {
			t.Errorf("edges has %+v, refs does not list it", e)
		}
	}
}

// graphFixture stores a small graph in c: r references a and b, report p
// wants a and m, item a derives b and r.
func graphFixture(t *testing.T, s *Store, c string) (a, b, r, p, m Object) {
	t.Helper()
	a, b = obj("indicator", 1, t0, t0, 0, "a"), obj("ipv4-addr", 2, time.Time{}, time.Time{}, 0, "b")
	r = obj("relationship", 3, t0, t0, 0, "r")
	r.Refs = []string{a.ID, b.ID}
	p, m = obj("report", 4, t0, t0, 0, "p"), obj("malware", 5, t0, t0, 0, "m")
	p.Refs, p.Wants = []string{a.ID}, []string{a.ID, m.ID}
	put(t, s, c, r, a, b, p, m)
	if err := s.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.SetOrigins(c, map[string][]string{a.ID: {b.ID, r.ID}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return a, b, r, p, m
}

// graphAnswers is what Targets and Referrers say of the fixture, per kind.
func graphAnswers(t *testing.T, s *Store, c string, ids []string) (answers [3][2]map[string][]string) {
	t.Helper()
	err := s.Update(context.Background(), func(tx *Tx) error {
		for kind := range 3 {
			var err error
			if answers[kind][0], err = tx.Targets(c, kind, ids); err != nil {
				return err
			}
			if answers[kind][1], err = tx.Referrers(c, kind, ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return answers
}

// A store written before migration 0004 (plain ids in objects, edges
// indexed by source) answers every graph question the same after it.
func TestMigration4KeepsTheGraph(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	c := ensure(t, s, "c")
	a, b, r, p, m := graphFixture(t, s, c.ID)
	ids := []string{a.ID, b.ID, r.ID, p.ID, m.ID}
	before := graphAnswers(t, s, c.ID, ids)
	if len(before[EdgeRef][0][r.ID]) != 2 || len(before[EdgeWant][1][m.ID]) != 1 || len(before[EdgeOrigin][0][a.ID]) != 2 {
		t.Fatalf("fixture graph: %v", before)
	}
	// Back to the 0003 layout.
	for oid, k := range objectKeys(t, s) {
		if _, err := s.w.Exec("UPDATE objects SET stix_id = ? WHERE oid = ?", stixID(k), oid); err != nil {
			t.Fatal(err)
		}
	}
	addEveryReverseRow(t, s) // as a 0003 store had
	for _, st := range []string{"DELETE FROM schema_migrations WHERE version >= 4", "DROP TABLE refs", "CREATE INDEX edges_by_src ON edges (cid, src, kind)",
		"UPDATE versions SET hash = unhex(hex(hash) || hex(randomblob(16)))"} { // whole SHA-256s
		if _, err := s.w.Exec(st); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if after := graphAnswers(t, s2, c.ID, ids); !equalAnswers(before, after) {
		t.Errorf("graph after migration:\n%v\nbefore:\n%v", after, before)
	}
	graphTablesAgree(t, s2)
	if p, err := s2.Objects(ctx, Query{CollectionID: c.ID, IDs: []string{r.ID}, Limit: 5, MaxTLP: TLPRed}); err != nil || len(p.Items) != 1 || p.Items[0].ID != r.ID {
		t.Errorf("read by id after migration: %+v, %v", p.Items, err)
	}
	var idx int
	s2.w.QueryRow("SELECT count(*) FROM sqlite_schema WHERE name = 'edges_by_src'").Scan(&idx)
	if idx != 0 {
		t.Error("edges_by_src kept")
	}
	var width int
	s2.w.QueryRow("SELECT max(length(hash)) FROM versions").Scan(&width)
	if width != 16 {
		t.Errorf("stored hashes are %d bytes after migration, want 16", width)
	}
	// The cut hashes still recognise unchanged content.
	if res := put(t, s2, c.ID, a, b, r, p, m); res.Unchanged != 5 {
		t.Errorf("re-put after migration: %+v, want 5 unchanged", res)
	}
}

func equalAnswers(a, b [3][2]map[string][]string) bool {
	for k := range a {
		for d := range a[k] {
			if !maps.EqualFunc(a[k][d], b[k][d], slices.Equal[[]string]) {
				return false
			}
		}
	}
	return true
}

// Purging an object (Remove from its last collection) takes it out of
// every edge, both ways, so that its key can be handed out again; refs
// and edges agree throughout.
func TestRemovePurgesEdgesBothWays(t *testing.T) { eachBackend(t, testRemovePurgesEdgesBothWays) }

func testRemovePurgesEdgesBothWays(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	a, b, r, p, m := graphFixture(t, s, c.ID)
	graphTablesAgree(t, s)
	for _, id := range []string{r.ID, a.ID} {
		if err := s.Update(ctx, func(tx *Tx) error {
			_, err := tx.Remove(c.ID, id, TLPRed)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if id == r.ID {
			// r, a relationship, has no reverse origin row: its purge
			// reads a's list to take it out.
			got := graphAnswers(t, s, c.ID, []string{a.ID})
			if !slices.Equal(got[EdgeOrigin][0][a.ID], []string{b.ID}) {
				t.Errorf("a derives %v after r was purged, want only b", got[EdgeOrigin][0][a.ID])
			}
			// Its key may be handed out again: the list itself must not
			// keep naming it.
			if err := s.Update(ctx, func(tx *Tx) error {
				keys, err := tx.resolve([]string{a.ID, b.ID})
				if err != nil {
					return err
				}
				cid, err := s.cid(ctx, tx.tx, c.ID)
				if err != nil {
					return err
				}
				lists, err := tx.targetKeys(cid, EdgeOrigin, []int64{keys[a.ID]})
				if err != nil {
					return err
				}
				if !slices.Equal(lists[keys[a.ID]], []int64{keys[b.ID]}) {
					t.Errorf("a's origin list holds keys %v after r was purged, want only b's (%d)", lists[keys[a.ID]], keys[b.ID])
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	graphTablesAgree(t, s)
	got := graphAnswers(t, s, c.ID, []string{a.ID, b.ID, r.ID, p.ID, m.ID})
	if len(got[EdgeRef][1][a.ID]) != 0 || len(got[EdgeRef][0][p.ID]) != 0 || len(got[EdgeOrigin][0][a.ID]) != 0 ||
		!slices.Equal(got[EdgeWant][0][p.ID], []string{m.ID}) {
		t.Errorf("graph after purging a and r: %v", got)
	}
}

// Check in full mode finds a graph whose two tables disagree, on both
// backends, and passes the sound one.
func TestCheckFindsABrokenGraph(t *testing.T) { eachBackend(t, testCheckFindsABrokenGraph) }

func testCheckFindsABrokenGraph(t *testing.T, be backend) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, breakIt, want string
	}{
		{"edge row gone", "DELETE FROM edges WHERE kind = 0 AND dst = (SELECT min(dst) FROM edges WHERE kind = 0)", "references without their edges row"},
		{"stray edge row", "INSERT INTO edges (cid, dst, kind, src) VALUES (1, 999999, 0, 999998)", "edges rows no reference list names"},
		{"damaged list", "UPDATE refs SET dsts = ? WHERE kind = 0", "damaged reference lists"},
		// a's origin list names r, a relationship: no reverse row is kept.
		{"reverse row kept against the rule", `INSERT INTO edges (cid, dst, kind, src) VALUES (1,
			(SELECT oid FROM objects WHERE substr(stix_id, 24) = 'B'), 1, (SELECT oid FROM objects WHERE substr(stix_id, 24) = 'A'))`,
			"1 edges rows for targets kept without reverse rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := be.open(t)
			c := ensure(t, s, "c")
			graphFixture(t, s, c.ID)
			if err := s.Check(ctx, true); err != nil {
				t.Fatalf("sound store: %v", err)
			}
			var args []any
			if strings.Contains(tc.breakIt, "?") {
				args = append(args, []byte{0xff}) // a uvarint that never ends
			}
			if _, err := s.w.Exec(s.d.sql(tc.breakIt), args...); err != nil {
				t.Fatal(err)
			}
			err := s.Check(ctx, true)
			var ie *IntegrityError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check = %v, want an IntegrityError saying %q", err, tc.want)
			}
		})
	}
}

// TestReferrersOfKeysMadeInTheTransaction: Referrers answers from memory
// for keys the transaction created (fresh.go), from the edges table for
// the others, and from the reference lists for targets without reverse
// rows (an identity, a relationship's origin); after each kind of edge
// write in one transaction (new sources, changed references, origins, a
// purge) every answer must be what the reference lists (refs) say.
func TestReferrersOfKeysMadeInTheTransaction(t *testing.T) {
	eachBackend(t, testReferrersOfKeysMadeInTheTransaction)
}

func testReferrersOfKeysMadeInTheTransaction(t *testing.T, be backend) {
	s, _ := be.open(t)
	c, c2 := ensure(t, s, "one").ID, ensure(t, s, "two").ID
	old := obj("malware", 9, t0, t0, 0, "old") // a key from an earlier transaction
	put(t, s, c, old)
	a, b := obj("indicator", 1, t0, t0, 0, "a"), obj("ipv4-addr", 2, time.Time{}, time.Time{}, 0, "b")
	// who is referenced without reverse rows (reverseIndexed): Referrers
	// reads the lists for it.
	who := obj("identity", 7, t0, t0, 0, "who")
	put(t, s, c, who)
	r := obj("relationship", 3, t0, t0, 0, "r")
	r.Refs = []string{a.ID, b.ID, old.ID, who.ID}
	p, m := obj("report", 4, t0, t0, 0, "p"), obj("malware", 5, t0, t0, 0, "m")
	p.Refs, p.Wants = []string{a.ID, who.ID}, []string{a.ID, m.ID}
	q := obj("attack-pattern", 6, t0, t0, 0, "q") // written last, sorts first
	q.Refs = []string{a.ID}
	ids := []string{a.ID, b.ID, r.ID, p.ID, m.ID, old.ID, q.ID, who.ID}
	check := func(tx *Tx, step string) {
		t.Helper()
		for _, col := range []string{c, c2} {
			cid, err := s.cid(tx.ctx, tx.tx, col)
			if err != nil {
				t.Fatal(err)
			}
			for kind := range 3 {
				got, err := tx.Referrers(col, kind, ids)
				if err != nil {
					t.Fatal(err)
				}
				// What the lists say: refs holds every edge, reverse rows
				// or not.
				rows, err := tx.query(`SELECT s.stix_id, r.dsts FROM refs r CROSS JOIN objects s
					WHERE r.cid = ? AND r.kind = ? AND s.oid = r.src`, cid, kind)
				if err != nil {
					t.Fatal(err)
				}
				lists := map[string][]int64{}
				for rows.Next() {
					var src string
					var b []byte
					if err := rows.Scan(&src, &b); err != nil {
						t.Fatal(err)
					}
					if lists[stixID(src)], err = unpackKeys(b); err != nil {
						t.Fatal(err)
					}
				}
				rows.Close()
				names := map[int64]string{}
				for _, id := range ids {
					var oid int64
					if err := tx.queryRow("SELECT oid FROM objects WHERE stix_id = ?", objKey(id)).Scan(&oid); err == nil {
						names[oid] = id
					}
				}
				want := map[string][]string{}
				for src, dsts := range lists {
					for _, d := range dsts {
						if id, ok := names[d]; ok {
							want[id] = append(want[id], src)
						}
					}
				}
				for k := range want {
					slices.Sort(want[k])
				}
				if !maps.EqualFunc(got, want, slices.Equal) {
					t.Errorf("%s, collection %s, kind %d: Referrers = %v, the reference lists say %v", step, col, kind, got, want)
				}
				for _, id := range ids { // one at a time: answered from memory alone
					one, err := tx.Referrers(col, kind, []string{id})
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(one[id], want[id]) {
						t.Errorf("%s, collection %s, kind %d: Referrers of %s alone = %v, the reference lists say %v", step, col, kind, id, one[id], want[id])
					}
				}
			}
		}
	}
	err := s.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.Put(c, []Object{r, a, b, p, m, q}); err != nil {
			return err
		}
		if _, err := tx.Put(c2, []Object{r}); err != nil {
			return err
		}
		if _, err := tx.SetOrigins(c, map[string][]string{a.ID: {b.ID, r.ID}}); err != nil {
			return err
		}
		check(tx, "new sources")
		// A new version of r drops b (setEdges), p wants one member less.
		r2 := obj("relationship", 3, t0, t0.Add(time.Second), 0, "r2")
		r2.Refs = []string{a.ID, old.ID}
		p2 := obj("report", 4, t0, t0.Add(time.Second), 0, "p2")
		p2.Refs, p2.Wants = []string{a.ID}, []string{a.ID}
		if _, err := tx.Put(c, []Object{r2, p2}); err != nil {
			return err
		}
		if _, err := tx.SetOrigins(c, map[string][]string{a.ID: {b.ID}}); err != nil {
			return err
		}
		check(tx, "changed references")
		// Purging r (dropKey) takes its edges out both ways.
		if _, err := tx.Remove(c2, r.ID, 5); err != nil {
			return err
		}
		if _, err := tx.Remove(c, r.ID, 5); err != nil {
			return err
		}
		check(tx, "purge")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	graphTablesAgree(t, s)
}

// TestMigration5DropsReverseRowsNobodyAsks: a store from before migration
// 0005 has a reverse row for every edge; after it, edges holds only the
// reverse-indexed ones and every graph question is answered as before.
func TestMigration5DropsReverseRowsNobodyAsks(t *testing.T) {
	eachBackend(t, testMigration5DropsReverseRowsNobodyAsks)
}

func testMigration5DropsReverseRowsNobodyAsks(t *testing.T, be backend) {
	ctx := context.Background()
	s, where := be.open(t)
	c := ensure(t, s, "c")
	a, b, r, p, m := graphFixture(t, s, c.ID)
	who := obj("identity", 7, t0, t0, 0, "who")
	q := obj("attack-pattern", 6, t0, t0, 0, "q")
	q.Refs = []string{who.ID, a.ID}
	put(t, s, c.ID, who, q)
	ids := []string{a.ID, b.ID, r.ID, p.ID, m.ID, who.ID, q.ID}
	before := graphAnswers(t, s, c.ID, ids)
	if len(before[EdgeRef][1][who.ID]) != 1 || len(before[EdgeOrigin][1][r.ID]) != 1 {
		t.Fatalf("fixture graph: %v", before)
	}
	// Back to 0004: a reverse row for every listed target.
	addEveryReverseRow(t, s)
	if err := s.Update(ctx, func(tx *Tx) error {
		return tx.exec("DELETE FROM schema_migrations WHERE version >= 5")
	}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.w.QueryRow("SELECT count(*) FROM edges").Scan(&n); err != nil || n < 8 {
		t.Fatalf("edges rows before the migration: %d, %v", n, err)
	}
	s.Close()
	s2, err := reopen(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	graphTablesAgree(t, s2)
	if after := graphAnswers(t, s2, c.ID, ids); !equalAnswers(before, after) {
		t.Errorf("graph after migration 0005:\n%v\nbefore:\n%v", after, before)
	}
}

// addEveryReverseRow writes an edges row for every target refs lists, as
// stores from before migration 0005 had.
func addEveryReverseRow(t *testing.T, s *Store) {
	t.Helper()
	err := s.Update(context.Background(), func(tx *Tx) error {
		rows, err := tx.query("SELECT cid, src, kind, dsts FROM refs")
		if err != nil {
			return err
		}
		var all [][4]int64
		for rows.Next() {
			var cid, src, kind int64
			var b []byte
			if err := rows.Scan(&cid, &src, &kind, &b); err != nil {
				return err
			}
			dsts, err := unpackKeys(b)
			if err != nil {
				return err
			}
			for _, d := range dsts {
				all = append(all, [4]int64{cid, d, kind, src})
			}
		}
		rows.Close()
		for _, e := range all {
			if err := tx.exec("INSERT INTO edges (cid, dst, kind, src) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", e[0], e[1], e[2], e[3]); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A damaged reference list met while answering Referrers for a target
// without reverse rows is an error that names it, and the transaction
// writes nothing.
func TestReferrersOfADamagedListSaysWhich(t *testing.T) {
	s, _ := openTest(t)
	c := ensure(t, s, "c")
	_, _, r, _, _ := graphFixture(t, s, c.ID)
	if _, err := s.w.Exec("UPDATE refs SET dsts = ? WHERE kind = 1", []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	before := takeEdges(t, s)
	err := s.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.SetVisibilities(c.ID, map[string]Visibility{r.ID: Withdrawn}); err != nil {
			return err
		}
		_, err := tx.Referrers(c.ID, EdgeOrigin, []string{r.ID})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "damaged reference list") || !strings.Contains(err.Error(), "read references of key") {
		t.Fatalf("Referrers over a damaged list: %v, want an error naming the damaged list's key", err)
	}
	if after := takeEdges(t, s); after != before {
		t.Errorf("a failed transaction changed the graph tables: %q, was %q", after, before)
	}
}

// takeEdges is the content of edges and refs, as text.
func takeEdges(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{"SELECT cid, dst, kind, src FROM edges ORDER BY 1, 2, 3, 4", "SELECT cid, src, kind, hex(dsts) FROM refs ORDER BY 1, 2, 3"} {
		rows, err := s.w.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, c, d int64
			var e any
			if err := rows.Scan(&a, &c, &d, &e); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%d %d %d %v\n", a, c, d, e)
		}
		rows.Close()
	}
	return b.String()
}

// objectKeys is the objects table: each key's stix_id column.
func objectKeys(t *testing.T, s *Store) map[int64]string {
	t.Helper()
	rows, err := s.w.Query("SELECT oid, stix_id FROM objects")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var oid int64
		var key string
		if err := rows.Scan(&oid, &key); err != nil {
			t.Fatal(err)
		}
		out[oid] = key
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
