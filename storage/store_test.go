package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestOpenIsIdempotentAndKeepsCollectionIDs(t *testing.T) {
	eachBackend(t, testOpenIsIdempotentAndKeepsCollectionIDs)
}

func testOpenIsIdempotentAndKeepsCollectionIDs(t *testing.T, be backend) {
	ctx := context.Background()
	s, path := be.open(t)
	c := ensure(t, s, "local")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		s2, err := reopen(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		var n int
		if err := s2.w.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if be.name == "sqlite" {
			var pageSize int
			var mode string
			s2.w.QueryRow("PRAGMA page_size").Scan(&pageSize)
			s2.w.QueryRow("PRAGMA journal_mode").Scan(&mode)
			if pageSize != 16384 || mode != "wal" {
				t.Errorf("page_size %d, journal_mode %s; want 16384, wal (taxii21.md D-22)", pageSize, mode)
			}
		}
		ms, _ := loadMigrations()
		if n != len(ms) {
			t.Errorf("reopen %d: %d migrations recorded, want %d", i, n, len(ms))
		}
		// taxii21.md D-19: the id is generated once and persisted.
		c2, err := s2.EnsureCollection(ctx, Collection{Alias: "local", Title: "Renamed", Kind: "filter", CanWrite: true})
		if err != nil {
			t.Fatal(err)
		}
		if c2.ID != c.ID {
			t.Errorf("reopen %d: id changed from %s to %s", i, c.ID, c2.ID)
		}
		got, err := s2.Collection(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := Collection{ID: c.ID, Alias: "local", Title: "Renamed", Kind: "filter", CanWrite: true}
		if got != want {
			t.Errorf("Collection = %+v, want %+v", got, want)
		}
		if err := s2.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
		if err := s2.Maintain(ctx); err != nil {
			t.Errorf("Maintain: %v", err)
		}
		s2.Close()
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not sqlite at all "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	otherApp := filepath.Join(dir, "otherapp.db")
	newer := filepath.Join(dir, "newer.db")
	for path, stmts := range map[string][]string{
		foreign:  {"CREATE TABLE users (name TEXT)"},
		otherApp: {"PRAGMA application_id = 1234"},
	} {
		db, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range stmts {
			if _, err := db.Exec(st); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
	}
	s, err := Open(ctx, newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 'x')"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for _, tc := range []struct {
		name, path, want string
	}{
		{"garbage", garbage, "not a usable SQLite database"},
		{"foreign tables", foreign, "not a taxii-bridge database"},
		{"other application", otherApp, "belongs to another application"},
		{"newer schema", newer, "newer than this program knows"},
		{"empty path", "", "empty database path"},
		{"missing directory", filepath.Join(dir, "nope", "x.db"), "does not exist"},
		{"a directory", dir, "not a usable SQLite database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(tc.path)
			s, err := Open(ctx, tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if after, _ := os.ReadFile(tc.path); tc.name == "garbage" && !bytes.Equal(before, after) {
				t.Error("Open modified a file it refused")
			}
		})
	}
}

func TestCollections(t *testing.T) { eachBackend(t, testCollections) }

func testCollections(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	var ids []string
	for _, a := range []string{"b", "a", "c", "d"} {
		c := ensure(t, s, a)
		u, err := uuid.Parse(c.ID)
		if err != nil || u.Version() != 4 {
			t.Errorf("collection id %q is not a UUIDv4 (taxii21.md D-19)", c.ID)
		}
		ids = append(ids, c.ID)
	}
	cs, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	var got []string
	for _, c := range cs {
		got = append(got, c.ID)
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("Collections not sorted by id (taxii21.md D-3): %v", got)
	}
	if c, err := s.Collection(ctx, "c"); err != nil || c.Alias != "c" {
		t.Errorf("Collection by alias = %+v, %v", c, err)
	}
	if _, err := s.Collection(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing collection: err = %v, want ErrNotFound", err)
	}
	if _, err := s.EnsureCollection(ctx, Collection{}); err == nil {
		t.Error("EnsureCollection with empty alias succeeded")
	}
	if _, err := s.Objects(ctx, Query{CollectionID: "nope", Limit: 1, MaxTLP: 5}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Objects on a missing collection: err = %v, want ErrNotFound", err)
	}
}

func TestPutSemantics(t *testing.T) { eachBackend(t, testPutSemantics) }

func testPutSemantics(t *testing.T, be backend) {
	m1 := t0.Add(time.Hour)
	m2 := t0.Add(2 * time.Hour)
	type step struct {
		obj  Object
		want PutResult
	}
	for _, tc := range []struct {
		name  string
		steps []step
		// wantVersions lists the modified instants in the collection, by date_added.
		wantVersions []time.Time
	}{
		{"new then same content is unchanged (D-4)", []step{
			{obj("indicator", 1, t0, m1, 0, "a"), PutResult{New: 1}},
			{obj("indicator", 1, t0, m1, 0, "a"), PutResult{Unchanged: 1}},
			{obj("indicator", 1, t0, m2, 0, "a"), PutResult{Unchanged: 1}},
		}, []time.Time{m1}},
		{"changed content with a later modified is new", []step{
			{obj("indicator", 1, t0, m1, 0, "a"), PutResult{New: 1}},
			{obj("indicator", 1, t0, m2, 0, "b"), PutResult{New: 1}},
		}, []time.Time{m1, m2}},
		{"same id and modified is unchanged (storage never rewrites modified)", []step{
			{obj("indicator", 1, t0, m1, 0, "a"), PutResult{New: 1}},
			{obj("indicator", 1, t0, m1, 0, "b"), PutResult{Unchanged: 1}},
		}, []time.Time{m1}},
		{"older version posted later is kept but not latest", []step{
			{obj("indicator", 1, t0, m2, 0, "b"), PutResult{New: 1}},
			{obj("indicator", 1, t0, m1, 0, "a"), PutResult{New: 1}},
		}, []time.Time{m2, m1}},
		{"unversioned object is replaced in place when its hash changes", []step{
			{obj("ipv4-addr", 1, time.Time{}, time.Time{}, 0, "a"), PutResult{New: 1}},
			{obj("ipv4-addr", 1, time.Time{}, time.Time{}, 0, "a"), PutResult{Unchanged: 1}},
			{obj("ipv4-addr", 1, time.Time{}, time.Time{}, 0, "b"), PutResult{New: 1}},
		}, []time.Time{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := be.open(t)
			c := ensure(t, s, "c")
			for i, st := range tc.steps {
				if got := put(t, s, c.ID, st.obj); !sameCounts(got, st.want) {
					t.Errorf("step %d: %+v, want %+v", i, got, st.want)
				}
			}
			q := Query{CollectionID: c.ID, Versions: VersionFilter{All: true}, MaxTLP: 5}
			items := all(t, s.Objects, q, 10)
			if len(items) != len(tc.wantVersions) {
				t.Fatalf("%d versions stored, want %d", len(items), len(tc.wantVersions))
			}
			for i, it := range items {
				if !it.Modified.Equal(tc.wantVersions[i]) {
					t.Errorf("version %d modified %v, want %v", i, it.Modified, tc.wantVersions[i])
				}
			}
		})
	}
}

func TestPutRejectsBadObjectsAtomically(t *testing.T) {
	eachBackend(t, testPutRejectsBadObjectsAtomically)
}

func testPutRejectsBadObjectsAtomically(t *testing.T, be backend) {
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	good := obj("indicator", 1, t0, t0, 0, "a")
	for _, tc := range []struct {
		name string
		mod  func(*Object)
		want string
	}{
		{"empty id", func(o *Object) { o.ID = "" }, "empty id"},
		{"id of another type", func(o *Object) { o.Type = "malware" }, "form malware--"},
		{"tlp out of range", func(o *Object) { o.TLP = 6 }, "tlp rank 6"},
		{"no json", func(o *Object) { o.JSON = nil }, "empty json"},
		{"no spec_version", func(o *Object) { o.SpecVersion = "" }, "empty spec_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := obj("indicator", 2, t0, t0, 0, "b")
			tc.mod(&bad)
			err := s.Update(context.Background(), func(tx *Tx) error {
				_, err := tx.Put(c.ID, []Object{good, bad})
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			p, err := s.Objects(context.Background(), Query{CollectionID: c.ID, Limit: 10, MaxTLP: 5})
			if err != nil || len(p.Items) != 0 {
				t.Errorf("after a failed batch: %d items, %v; want nothing stored", len(p.Items), err)
			}
		})
	}
}

func TestDateAddedUniqueAcrossCollectionsAndRestarts(t *testing.T) {
	eachBackend(t, testDateAddedUniqueAcrossCollectionsAndRestarts)
}

func testDateAddedUniqueAcrossCollectionsAndRestarts(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s, path := be.open(t, WithNow(clk.now))
	a, b := ensure(t, s, "a"), ensure(t, s, "b")
	o := obj("indicator", 1, t0, t0, 0, "x")
	put(t, s, a.ID, o)
	put(t, s, b.ID, o) // taxii21.md D-2: membership carries its own date
	pa, _ := s.Objects(ctx, Query{CollectionID: a.ID, Limit: 5, MaxTLP: 5})
	pb, _ := s.Objects(ctx, Query{CollectionID: b.ID, Limit: 5, MaxTLP: 5})
	if len(pa.Items) != 1 || len(pb.Items) != 1 {
		t.Fatalf("items: %d, %d", len(pa.Items), len(pb.Items))
	}
	if pa.Items[0].DateAdded != t0.UnixMicro() || pb.Items[0].DateAdded != t0.UnixMicro()+1 {
		t.Errorf("date_added %d, %d; want %d and one µs later (taxii21.md D-1)", pa.Items[0].DateAdded, pb.Items[0].DateAdded, t0.UnixMicro())
	}
	var versions int
	s.w.QueryRow("SELECT count(*) FROM versions").Scan(&versions)
	if versions != 1 {
		t.Errorf("%d version rows for one version in two collections, want 1 (bytes shared)", versions)
	}
	// Remove every membership, close, set the clock back a day: the persisted
	// high-water mark still moves date_added forward.
	s.Update(ctx, func(tx *Tx) error {
		_, err := tx.Remove(a.ID, o.ID, TLPRed)
		if err == nil {
			_, err = tx.Remove(b.ID, o.ID, TLPRed)
		}
		return err
	})
	last := pb.Items[0].DateAdded
	s.Close()
	clk.t = t0.Add(-24 * time.Hour)
	s2, err := reopen(ctx, path, WithNow(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	put(t, s2, b.ID, obj("indicator", 2, t0, t0, 0, "y"))
	put(t, s2, a.ID, obj("indicator", 3, t0, t0, 0, "z"))
	pa, _ = s2.Objects(ctx, Query{CollectionID: a.ID, Limit: 5, MaxTLP: 5})
	pb, _ = s2.Objects(ctx, Query{CollectionID: b.ID, Limit: 5, MaxTLP: 5})
	// Each Remove took one tick too (the collections' change marks).
	if pb.Items[0].DateAdded != last+3 || pa.Items[0].DateAdded != last+4 {
		t.Errorf("after restart with clock back: %d, %d; want %d, %d", pb.Items[0].DateAdded, pa.Items[0].DateAdded, last+3, last+4)
	}
}

func TestLatestAndFirstFlags(t *testing.T) { eachBackend(t, testLatestAndFirstFlags) }

func testLatestAndFirstFlags(t *testing.T, be backend) {
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	mk := func(h int, content string) Object {
		return obj("malware", 7, t0, t0.Add(time.Duration(h)*time.Hour), 0, content)
	}
	// Arrive out of order: 2, 1, 3, 0 (taxii21.md D-5).
	put(t, s, c.ID, mk(2, "two"), mk(1, "one"), mk(3, "three"), mk(0, "zero"))
	for _, tc := range []struct {
		name string
		vf   VersionFilter
		want []int
	}{
		{"default is last", VersionFilter{}, []int{3}},
		{"last", VersionFilter{Last: true}, []int{3}},
		{"first", VersionFilter{First: true}, []int{0}},
		{"first and last", VersionFilter{First: true, Last: true}, []int{3, 0}},
		{"all", VersionFilter{All: true}, []int{2, 1, 3, 0}},
		// Instants, not strings: a different location is the same instant.
		{"at", VersionFilter{At: []time.Time{t0.Add(time.Hour).In(time.FixedZone("x", 3600))}}, []int{1}},
		{"at and first", VersionFilter{At: []time.Time{t0.Add(2 * time.Hour)}, First: true}, []int{2, 0}},
		{"at nothing", VersionFilter{At: []time.Time{t0.Add(time.Minute)}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := all(t, s.Manifest, Query{CollectionID: c.ID, Versions: tc.vf, MaxTLP: 5}, 1)
			var got []int
			for _, it := range items {
				got = append(got, int(it.Modified.Sub(t0)/time.Hour))
				if it.JSON != nil {
					t.Error("manifest item carries JSON")
				}
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !equalInts(got, tc.want)) {
				t.Errorf("versions %v, want %v", got, tc.want)
			}
		})
	}
	vs := all(t, s.Versions, Query{CollectionID: c.ID, IDs: []string{mk(0, "").ID}, MaxTLP: 5}, 3)
	if len(vs) != 4 {
		t.Errorf("Versions: %d items, want 4", len(vs))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMaxTLPHidesRows(t *testing.T) { eachBackend(t, testMaxTLPHidesRows) }

func testMaxTLPHidesRows(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	for tlp := 0; tlp <= 5; tlp++ {
		put(t, s, c.ID, obj("indicator", tlp, t0, t0, tlp, "x"))
	}
	for max := 0; max <= 5; max++ {
		for _, list := range []func(context.Context, Query) (Page, error){s.Objects, s.Manifest} {
			// Page size 1: a hidden row must never end a page or set More.
			items := all(t, list, Query{CollectionID: c.ID, MaxTLP: max}, 1)
			if len(items) != max+1 {
				t.Errorf("MaxTLP %d: %d items, want %d", max, len(items), max+1)
			}
		}
		for tlp := 0; tlp <= 5; tlp++ {
			id := obj("indicator", tlp, t0, t0, tlp, "x").ID
			p, err := s.Objects(ctx, Query{CollectionID: c.ID, IDs: []string{id}, MaxTLP: max, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if visible := len(p.Items) == 1; visible != (tlp <= max) || p.More {
				t.Errorf("MaxTLP %d, object TLP %d: visible=%v more=%v", max, tlp, visible, p.More)
			}
			v, _ := s.Versions(ctx, Query{CollectionID: c.ID, IDs: []string{id}, MaxTLP: max, Limit: 5})
			if visible := len(v.Items) == 1; visible != (tlp <= max) {
				t.Errorf("Versions: MaxTLP %d, object TLP %d: visible=%v", max, tlp, visible)
			}
		}
	}
}

func TestRemoveStateStatus(t *testing.T) { eachBackend(t, testRemoveStateStatus) }

func testRemoveStateStatus(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	a, b := ensure(t, s, "a"), ensure(t, s, "b")
	o := obj("indicator", 1, t0, t0, 0, "x")
	put(t, s, a.ID, o)
	put(t, s, b.ID, o)
	remove := func(cid string) bool {
		var ok bool
		if err := s.Update(ctx, func(tx *Tx) (err error) { ok, err = tx.Remove(cid, o.ID, TLPRed); return err }); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	count := func(table string) (n int) { s.w.QueryRow("SELECT count(*) FROM " + table).Scan(&n); return }
	if !remove(a.ID) || remove(a.ID) {
		t.Error("Remove: want true then false")
	}
	if count("versions") != 1 {
		t.Error("bytes still held by collection b were purged")
	}
	if p, _ := s.Objects(ctx, Query{CollectionID: b.ID, Limit: 5, MaxTLP: 5}); len(p.Items) != 1 {
		t.Error("Remove from a touched collection b")
	}
	remove(b.ID)
	if count("versions") != 0 || count("objects") != 0 {
		t.Error("orphaned version bytes kept after the last membership went")
	}
	put(t, s, a.ID, o) // re-adding after a purge works
	if p, _ := s.Objects(ctx, Query{CollectionID: a.ID, Limit: 5, MaxTLP: 5}); len(p.Items) != 1 {
		t.Error("re-add after purge")
	}

	if _, ok, err := s.State(ctx, "k"); ok || err != nil {
		t.Errorf("State of a missing key: %v %v", ok, err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.SetState("k", []byte("v1")) }); err != nil {
		t.Fatal(err)
	}
	s.Update(ctx, func(tx *Tx) error {
		tx.SetState("k", []byte("v2"))
		return errors.New("roll back")
	})
	if v, ok, err := s.State(ctx, "k"); string(v) != "v1" || !ok || err != nil {
		t.Errorf("State = %q %v %v, want v1 (rolled-back write ignored)", v, ok, err)
	}

	st := Status{ID: uuid.NewString(), Status: "complete", RequestTimestamp: t0, Total: 2, Success: 1, Failure: 1,
		Successes: []StatusDetail{{ID: o.ID, Version: "2026-01-02T03:04:05.000Z"}},
		Failures:  []StatusDetail{{ID: "x--y", Message: "bad id"}}}
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, err := s.Status(ctx, st.ID)
	if err != nil || got.Failures[0].Message != "bad id" || !got.RequestTimestamp.Equal(t0) || got.Total != 2 {
		t.Errorf("Status = %+v, %v", got, err)
	}
	if _, err := s.Status(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing status: %v", err)
	}
}

// TestMigrationUpgradesOlderSchema rolls a database back to schema 1 and
// checks that reopening applies migration 2 and keeps the data.
func TestMigrationUpgradesOlderSchema(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	c := ensure(t, s, "c")
	put(t, s, c.ID, obj("indicator", 1, t0, t0, 0, "x"))
	for _, st := range []string{
		"DELETE FROM schema_migrations WHERE version >= 2",
		"DROP TABLE edges",
		"DROP TABLE refs",
		"ALTER TABLE collections DROP COLUMN changed",
		"ALTER TABLE members DROP COLUMN vis",
		"ALTER TABLE versions DROP COLUMN revoked",
		"ALTER TABLE versions DROP COLUMN tcid",
		"ALTER TABLE versions DROP COLUMN valid_until",
		"DROP INDEX members_by_object",
		"CREATE INDEX members_by_object ON members (cid, oid, ver)",
		// Before 0004 objects held the STIX id itself.
		"UPDATE objects SET stix_id = '" + obj("indicator", 1, t0, t0, 0, "").ID + "'",
	} {
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
	var def string
	s2.w.QueryRow("SELECT sql FROM sqlite_schema WHERE name = 'members_by_object'").Scan(&def)
	if !strings.Contains(def, "date_added") {
		t.Errorf("index after upgrade: %s", def)
	}
	p, err := s2.Objects(ctx, Query{CollectionID: c.ID, IDs: []string{obj("indicator", 1, t0, t0, 0, "").ID}, Limit: 5, MaxTLP: 5})
	if err != nil || len(p.Items) != 1 {
		t.Errorf("after upgrade: %d items, %v", len(p.Items), err)
	}
}

func TestLatestAndCancelledReads(t *testing.T) { eachBackend(t, testLatestAndCancelledReads) }

func testLatestAndCancelledReads(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	o := obj("ipv4-addr", 1, time.Time{}, time.Time{}, TLPAmber, "x")
	put(t, s, c.ID, o)
	err := s.Update(ctx, func(tx *Tx) error {
		v, ok, err := tx.Latest(c.ID, o.ID)
		if err != nil || !ok || !bytes.Equal(v.JSON, o.JSON) || v.TLP != TLPAmber || !v.Modified.IsZero() || v.Type != "ipv4-addr" {
			t.Errorf("Latest = %+v, %v, %v", v, ok, err)
		}
		if _, ok, err := tx.Latest(c.ID, "ipv4-addr--nope"); ok || err != nil {
			t.Errorf("Latest of a missing id: %v, %v", ok, err)
		}
		if _, _, err := tx.Latest("nope", o.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Latest in a missing collection: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every read slot taken: a listing gives up when its context ends.
	for i := 0; i < cap(s.rsem); i++ {
		s.rsem <- struct{}{}
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.Objects(cctx, Query{CollectionID: c.ID, Limit: 1, MaxTLP: 5}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Objects with every slot busy: %v, want deadline exceeded", err)
	}
	for i := 0; i < cap(s.rsem); i++ {
		<-s.rsem
	}
	if _, err := s.Objects(ctx, Query{CollectionID: c.ID, Limit: 0, MaxTLP: 5}); err == nil || !strings.Contains(err.Error(), "limit 0") {
		t.Errorf("Limit 0: %v", err)
	}
	if _, err := s.Versions(ctx, Query{CollectionID: c.ID, Limit: 1, MaxTLP: 5}); err == nil {
		t.Error("Versions without an id succeeded")
	}
}

func TestPruneVersions(t *testing.T) { eachBackend(t, testPruneVersions) }

func testPruneVersions(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s, _ := be.open(t, WithNow(clk.now))
	a, b := ensure(t, s, "a"), ensure(t, s, "b")
	mk := func(h int) Object { return obj("malware", 1, t0, t0.Add(time.Duration(h)*time.Hour), 0, fmt.Sprint(h)) }
	// Versions 1..4 arrive a minute apart; version 1 is also in collection b.
	for h := 1; h <= 4; h++ {
		put(t, s, a.ID, mk(h))
		clk.t = clk.t.Add(time.Minute)
	}
	put(t, s, b.ID, mk(1))
	other := obj("indicator", 2, t0, t0, 0, "y") // a single version: latest, never pruned
	put(t, s, a.ID, other)

	var n int
	err := s.Update(ctx, func(tx *Tx) (err error) {
		n, err = tx.PruneVersions(a.ID, t0.Add(2*time.Minute).UnixMicro()+1) // versions 1, 2 and 3's membership time
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("pruned %d memberships, want 3", n)
	}
	versions := func(c Collection, vf VersionFilter) (hours []int) {
		for _, it := range all(t, s.Manifest, Query{CollectionID: c.ID, IDs: []string{mk(1).ID}, Versions: vf, MaxTLP: 5}, 10) {
			hours = append(hours, int(it.Modified.Sub(t0)/time.Hour))
		}
		return hours
	}
	if got := versions(a, VersionFilter{All: true}); !equalInts(got, []int{4}) {
		t.Errorf("a keeps versions %v, want [4]", got)
	}
	if got := versions(a, VersionFilter{First: true}); !equalInts(got, []int{4}) {
		t.Errorf("first after prune %v, want [4] (taxii21.md D-5)", got)
	}
	if got := versions(b, VersionFilter{All: true}); !equalInts(got, []int{1}) {
		t.Errorf("b keeps versions %v, want [1]", got)
	}
	var rows int
	s.w.QueryRow("SELECT count(*) FROM versions").Scan(&rows)
	if rows != 3 { // malware v1 (held by b), v4, the indicator
		t.Errorf("%d version rows after prune, want 3", rows)
	}
	if p, _ := s.Objects(ctx, Query{CollectionID: a.ID, IDs: []string{other.ID}, MaxTLP: 5, Limit: 5}); len(p.Items) != 1 {
		t.Error("a latest version was pruned")
	}
}

// TestWriteStatementsArePreparedOnce: a write transaction reuses the
// statements an earlier one prepared (Store.keepStmts) instead of parsing
// them again, and multi-row inserts use at most seven sizes per table.
func TestWriteStatementsArePreparedOnce(t *testing.T) {
	s, _ := openTest(t)
	c := ensure(t, s, "c").ID
	batch := func(from, n int) *Tx {
		var objs []Object
		for i := from; i < from+n; i++ {
			objs = append(objs, obj("malware", i, t0, t0, 0, fmt.Sprint(i)))
		}
		var seen *Tx
		if err := s.Update(context.Background(), func(tx *Tx) error {
			seen = tx
			_, err := tx.Put(c, objs)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if first := batch(1, 100); len(first.uncached) == 0 {
		t.Fatal("the first transaction prepared nothing of its own")
	}
	if second := batch(1000, 100); len(second.uncached) != 0 {
		t.Errorf("a transaction of the same shape prepared %d statements again: %q", len(second.uncached), second.uncached)
	}
	for i := 1; i <= 200; i++ {
		batch(10000*i, i%67+1)
	}
	sizes := map[string]int{}
	for q := range s.wstmts {
		if strings.HasPrefix(q, "INSERT INTO") && strings.Contains(q, "), (") {
			sizes[strings.Fields(q)[2]]++
		}
	}
	for table, n := range sizes {
		if n > 6 { // 2, 4, … 64 rows; one row has no "), ("
			t.Errorf("%d multi-row insert statements into %s are kept, want at most 6", n, table)
		}
	}
	if len(sizes) == 0 {
		t.Error("no multi-row insert statement is kept")
	}
}
