package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestToPostgres(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT oid FROM objects WHERE stix_id = ?", "SELECT oid FROM objects WHERE stix_id = $1"},
		{"WHERE cid = ?1 AND x IN (?, ?) AND y = ?2", "WHERE cid = $1 AND x IN ($2, $3) AND y = $2"},
		{"m.cid = +? AND m.tlp <= ?", "m.cid = $1 AND m.tlp <= $2"},
		{"SELECT coalesce(max(oid), 0) + 1 FROM objects", "SELECT coalesce(max(oid), 0) + 1 FROM objects"},
		{"FROM members m INDEXED BY members_by_object CROSS JOIN versions v ON v.vid = m.vid WHERE",
			"FROM members m JOIN versions v ON v.vid = m.vid WHERE"},
		{"FROM members m NOT INDEXED CROSS JOIN objects o ON o.oid = m.oid", "FROM members m JOIN objects o ON o.oid = m.oid"},
		{"FROM edges e CROSS JOIN objects s WHERE", "FROM edges e CROSS JOIN objects s WHERE"},
		{"UPDATE members INDEXED BY members_by_object SET vis = ?", "UPDATE members SET vis = $1"},
		{"m.oid IN (SELECT CAST(value AS INTEGER) FROM json_each(?2))",
			"m.oid IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST($2 AS json)))"},
		{"SELECT max(coalesce((SELECT max(a) FROM t), 0), (SELECT b FROM u WHERE c = +?1))",
			"SELECT greatest(coalesce((SELECT max(a) FROM t), 0), (SELECT b FROM u WHERE c = $1))"},
		{"SELECT min(x, y), min(z) FROM t", "SELECT least(x, y), min(z) FROM t"},
		{"CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL, n INTEGER) WITHOUT ROWID;",
			"CREATE TABLE t (k TEXT PRIMARY KEY, v BYTEA NOT NULL, n BIGINT);"},
		{"SELECT '?' FROM t WHERE a = ?", "SELECT '?' FROM t WHERE a = $1"},
	}
	for _, tt := range tests {
		if got := toPostgres(tt.in); got != tt.want {
			t.Errorf("toPostgres(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// TestMigrationsRewriteForPostgres: every migration rewrites to a script
// without SQLite-only syntax (the PostgreSQL tests apply them for real).
func TestMigrationsRewriteForPostgres(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		q := toPostgres(m.sql)
		for _, bad := range []string{"INDEXED BY", "NOT INDEXED", "WITHOUT ROWID", "BLOB", "INTEGER", "?", "PRAGMA", "INSERT OR"} {
			if strings.Contains(q, bad) {
				t.Errorf("%s rewritten still holds %q", m.name, bad)
			}
		}
	}
}

// TestOpenPostgresNeverPrintsThePassword: whatever fails, the error names
// the server without the password.
func TestOpenPostgresNeverPrintsThePassword(t *testing.T) {
	const pw = "s3cret-Pw0rd"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, conn := range []string{
		"postgres://taxii:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=2",   // refused
		"postgres://taxii:" + pw + "@127.0.0.1:notaport/test",                              // unparsable
		"postgres://taxii@127.0.0.1:1/test?sslmode=disable&password=" + pw,                 // in the query
		"host=127.0.0.1 port=1 user=taxii password=" + pw + " dbname=test sslmode=disable", // key=value
		"host=127.0.0.1 port=x user=taxii password='" + pw + "' dbname=test",               // key=value, unparsable
	} {
		s, err := OpenPostgres(ctx, conn)
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%s) succeeded", redactURL(conn))
			continue
		}
		t.Logf("%v", err)
		if strings.Contains(err.Error(), pw) {
			t.Errorf("OpenPostgres error shows the password: %v", err)
		}
	}
	for _, conn := range []string{"postgres://u:" + pw + "@h/db", "postgres://u@h/db?sslmode=verify-full&sslpassword=" + pw,
		"host=h dbname=db sslpassword=" + pw} {
		if got := redactURL(conn); strings.Contains(got, pw) || !strings.Contains(got, "h") {
			t.Errorf("redactURL(…) = %q", got)
		}
	}
}

// TestReplicasShareOneDateAddedSequence: two Stores on one PostgreSQL
// schema (two replicas; on SQLite two processes on one file, as `sync
// -once` beside `serve`) writing at once get unique date_added values,
// increasing in commit order, and lose nothing — also when their clocks
// disagree by an hour, as only the database's order counts.
func TestReplicasShareOneDateAddedSequence(t *testing.T) {
	eachBackend(t, testReplicasShareOneDateAddedSequence)
}

func testReplicasShareOneDateAddedSequence(t *testing.T, be backend) {
	for _, clocks := range []string{"database", "skewed"} {
		t.Run(clocks, func(t *testing.T) {
			ctx := context.Background()
			var optA, optB []Option
			if clocks == "skewed" {
				optA = []Option{WithNow(func() time.Time { return t0.Add(time.Hour) })}
				optB = []Option{WithNow(func() time.Time { return t0 })}
			}
			a, where := be.open(t, optA...)
			b, err := reopen(ctx, where, optB...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c := ensure(t, a, "shared")
			if c2 := ensure(t, b, "shared"); c2.ID != c.ID {
				t.Fatalf("replicas disagree on the collection id: %s, %s", c.ID, c2.ID)
			}
			const writers, batches, per = 4, 15, 5
			var wg sync.WaitGroup
			got := make([][]int64, writers)
			// Transactions run one at a time across both Stores (the
			// advisory lock), so appending inside them records commit
			// order; date_added must follow it, or a reader paging by
			// date_added would miss what committed later with less.
			var (
				mu    sync.Mutex
				order []int64
			)
			for w := range writers {
				s := []*Store{a, b}[w%2]
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range batches {
						var objs []Object
						for j := range per {
							n := (w*batches+i)*per + j
							objs = append(objs, obj("indicator", n, t0, t0, 0, "x"))
						}
						err := s.Update(ctx, func(tx *Tx) error {
							if _, err := tx.Put(c.ID, objs); err != nil {
								return err
							}
							for _, o := range objs {
								v, ok, err := tx.Latest(c.ID, o.ID)
								if err != nil || !ok {
									return fmt.Errorf("read back %s: %v %v", o.ID, ok, err)
								}
								got[w] = append(got[w], v.DateAdded)
								mu.Lock()
								order = append(order, v.DateAdded)
								mu.Unlock()
							}
							return nil
						})
						if err != nil {
							t.Errorf("writer %d: %v", w, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			// And strictly alternating, which concurrency may not bring
			// about (SQLite's busy wait can let one writer finish first).
			for i := range 4 {
				s := []*Store{a, b}[i%2]
				o := obj("indicator", writers*batches*per+i, t0, t0, 0, "x")
				put(t, s, c.ID, o)
				v, _, err := latest(s, c.ID, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				order = append(order, v.DateAdded)
			}
			for i := 1; i < len(order); i++ {
				if order[i] <= order[i-1] {
					t.Fatalf("date_added %d committed after %d", order[i], order[i-1])
				}
			}
			seen := map[int64]bool{}
			for w, das := range got {
				for i, da := range das {
					if seen[da] {
						t.Fatalf("date_added %d handed out twice", da)
					}
					seen[da] = true
					if i > 0 && da <= das[i-1] {
						t.Fatalf("writer %d: date_added %d after %d", w, da, das[i-1])
					}
				}
			}
			for _, s := range []*Store{a, b} {
				items := all(t, s.Manifest, Query{CollectionID: c.ID, MaxTLP: TLPRed}, 7)
				if len(items) != writers*batches*per+4 {
					t.Errorf("crawl found %d objects, want %d", len(items), writers*batches*per+4)
				}
				for i := 1; i < len(items); i++ {
					if items[i].DateAdded <= items[i-1].DateAdded {
						t.Fatalf("crawl: date_added %d after %d", items[i].DateAdded, items[i-1].DateAdded)
					}
				}
			}
		})
	}
}

// TestMigrationsRunOnceWhenReplicasStartTogether: replicas opening a new
// schema at once all succeed and the schema is migrated once.
func TestMigrationsRunOnceWhenReplicasStartTogether(t *testing.T) {
	where := newPostgresSchema(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() { defer wg.Done(); stores[i], errs[i] = OpenPostgres(ctx, where) }()
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		defer s.Close()
	}
	var n int
	if err := stores[0].r.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if ms, _ := loadMigrations(); n != len(ms) {
		t.Errorf("%d migrations recorded, want %d", n, len(ms))
	}
	for _, full := range []bool{false, true} {
		if err := stores[1].Check(ctx, full); err != nil {
			t.Errorf("Check(%v) = %v", full, err)
		}
	}
	if p, _ := stores[0].Path(ctx); !strings.HasPrefix(p, "postgres://") {
		t.Errorf("Path = %q", p)
	}
}

// TestFailedStatementLosesNothing: a statement that fails inside Update
// rolls back only that transaction; what was committed stays and the
// store keeps working (on PostgreSQL a failed statement aborts the whole
// transaction, which must not poison the writer connection).
func TestFailedStatementLosesNothing(t *testing.T) { eachBackend(t, testFailedStatementLosesNothing) }

func testFailedStatementLosesNothing(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	kept, lost, later := obj("indicator", 1, t0, t0, 0, "kept"), obj("indicator", 2, t0, t0, 0, "lost"), obj("indicator", 3, t0, t0, 0, "later")
	put(t, s, c.ID, kept)
	err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Put(c.ID, []Object{lost}); err != nil {
			return err
		}
		return tx.exec("INSERT INTO no_such_table VALUES (?)", 1)
	})
	if err == nil {
		t.Fatal("Update with a bad statement succeeded")
	}
	put(t, s, c.ID, later)
	items := all(t, s.Manifest, Query{CollectionID: c.ID, MaxTLP: TLPRed}, 10)
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	if want := []string{kept.ID, later.ID}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("after a failed transaction the collection holds %v, want %v", ids, want)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return errors.New("fn failed") }); err == nil || err.Error() != "fn failed" {
		t.Errorf("Update returned %v, want fn's error", err)
	}
}

// TestPostgresCheckFindsBrokenInvariants: Check on PostgreSQL passes on a
// sound store and reports, as an *IntegrityError that IsFault recognises,
// a store whose rows contradict each other.
func TestPostgresCheckFindsBrokenInvariants(t *testing.T) {
	ctx := context.Background()
	s, _ := openPostgresTest(t)
	c := ensure(t, s, "c")
	put(t, s, c.ID, obj("indicator", 1, t0, t0, 0, "a"))
	put(t, s, c.ID, obj("indicator", 1, t0, t0.Add(time.Second), 0, "b"))
	for _, full := range []bool{false, true} {
		if err := s.Check(ctx, full); err != nil {
			t.Fatalf("Check(%v) of a sound store = %v", full, err)
		}
	}
	if _, err := s.w.Exec("UPDATE members SET latest = 1"); err != nil {
		t.Fatal(err)
	}
	err := s.Check(ctx, true)
	var ie *IntegrityError
	if !errors.As(err, &ie) || !IsFault(err) || !strings.Contains(err.Error(), "more than one latest") {
		t.Errorf("Check(full) of two latest versions = %v; want an IntegrityError saying so", err)
	}
	if err := s.Check(ctx, false); err != nil {
		t.Errorf("Check(quick) = %v; it reads no rows", err)
	}
}

// TestPostgresDateAddedComesFromTheDatabaseClock: without WithNow a
// replica's date_added is the database's clock, not its own.
func TestPostgresDateAddedComesFromTheDatabaseClock(t *testing.T) {
	s, _ := openPostgresTest(t)
	c := ensure(t, s, "c")
	var before, after int64
	q := "SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000000) AS BIGINT)"
	if err := s.r.QueryRow(q).Scan(&before); err != nil {
		t.Fatal(err)
	}
	o := obj("indicator", 1, t0, t0, 0, "a")
	put(t, s, c.ID, o)
	if err := s.r.QueryRow(q).Scan(&after); err != nil {
		t.Fatal(err)
	}
	p, err := s.Objects(context.Background(), Query{CollectionID: c.ID, MaxTLP: TLPRed, Limit: 1})
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("Objects = %v, %v", p, err)
	}
	if da := p.Items[0].DateAdded; da < before || da > after {
		t.Errorf("date_added %d outside the database's clock during the write [%d, %d]", da, before, after)
	}
}

// latest is Tx.Latest in a transaction of its own.
func latest(s *Store, collectionID, id string) (v Version, ok bool, err error) {
	err = s.Update(context.Background(), func(tx *Tx) error {
		v, ok, err = tx.Latest(collectionID, id)
		return err
	})
	return v, ok, err
}
