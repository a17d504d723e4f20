package storage

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// graphTablesAgree fails the test unless edges holds exactly one row per
// target listed in refs, and refs lists no key twice.
func graphTablesAgree(t *testing.T, s *Store) {
	t.Helper()
	type edge struct {
		cid, dst, src int64
		kind          int
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
			want[e] = true
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
	for e := range want {
		if !got[e] {
			t.Errorf("refs lists %+v, edges has no row", e)
		}
	}
	for e := range got {
		if !want[e] {
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
	keys := map[int64]string{}
	rows, err := s.w.Query("SELECT oid, stix_id FROM objects")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var oid int64
		var k string
		rows.Scan(&oid, &k)
		keys[oid] = k
	}
	rows.Close()
	for oid, k := range keys {
		if _, err := s.w.Exec("UPDATE objects SET stix_id = ? WHERE oid = ?", stixID(k), oid); err != nil {
			t.Fatal(err)
		}
	}
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
	for _, id := range []string{a.ID, r.ID} {
		if err := s.Update(ctx, func(tx *Tx) error {
			_, err := tx.Remove(c.ID, id, TLPRed)
			return err
		}); err != nil {
			t.Fatal(err)
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
// for keys the transaction created (fresh.go) and from the edges table for
// the others; after each kind of edge write in one transaction (new
// sources, changed references, origins, a purge) both answers must be
// what the edges table says.
func TestReferrersOfKeysMadeInTheTransaction(t *testing.T) {
	eachBackend(t, testReferrersOfKeysMadeInTheTransaction)
}

func testReferrersOfKeysMadeInTheTransaction(t *testing.T, be backend) {
	s, _ := be.open(t)
	c, c2 := ensure(t, s, "one").ID, ensure(t, s, "two").ID
	old := obj("malware", 9, t0, t0, 0, "old") // a key from an earlier transaction
	put(t, s, c, old)
	a, b := obj("indicator", 1, t0, t0, 0, "a"), obj("ipv4-addr", 2, time.Time{}, time.Time{}, 0, "b")
	r := obj("relationship", 3, t0, t0, 0, "r")
	r.Refs = []string{a.ID, b.ID, old.ID}
	p, m := obj("report", 4, t0, t0, 0, "p"), obj("malware", 5, t0, t0, 0, "m")
	p.Refs, p.Wants = []string{a.ID}, []string{a.ID, m.ID}
	q := obj("attack-pattern", 6, t0, t0, 0, "q") // written last, sorts first
	q.Refs = []string{a.ID}
	ids := []string{a.ID, b.ID, r.ID, p.ID, m.ID, old.ID, q.ID}
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
				rows, err := tx.query(`SELECT d.stix_id, s.stix_id FROM edges e CROSS JOIN objects d CROSS JOIN objects s
					WHERE e.cid = ? AND e.kind = ? AND d.oid = e.dst AND s.oid = e.src`, cid, kind)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string][]string{}
				for rows.Next() {
					var d, src string
					if err := rows.Scan(&d, &src); err != nil {
						t.Fatal(err)
					}
					if slices.Contains(ids, stixID(d)) {
						want[stixID(d)] = append(want[stixID(d)], stixID(src))
					}
				}
				rows.Close()
				for k := range want {
					slices.Sort(want[k])
				}
				if !maps.EqualFunc(got, want, slices.Equal) {
					t.Errorf("%s, collection %s, kind %d: Referrers = %v, the edges table says %v", step, col, kind, got, want)
				}
				for _, id := range ids { // one at a time: answered from memory alone
					one, err := tx.Referrers(col, kind, []string{id})
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(one[id], want[id]) {
						t.Errorf("%s, collection %s, kind %d: Referrers of %s alone = %v, the edges table says %v", step, col, kind, id, one[id], want[id])
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
