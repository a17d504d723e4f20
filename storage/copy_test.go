package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCopyTables fails when a migration adds a table Copy does not carry or
// a foreign key that the order of copyTables would break. Columns need no
// list: Copy reads them.
func TestCopyTables(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM sqlite_schema
		WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	want := slices.Sorted(slices.Values(copyTables))
	if !slices.Equal(tables, want) {
		t.Fatalf("schema tables %v, copyTables %v: add the new table to copyTables (copy.go)", tables, want)
	}
	for i, tab := range copyTables {
		// Parents first.
		fks, err := s.r.QueryContext(ctx, `SELECT "table" FROM pragma_foreign_key_list(?)`, tab)
		if err != nil {
			t.Fatal(err)
		}
		for fks.Next() {
			var parent string
			if err := fks.Scan(&parent); err != nil {
				t.Fatal(err)
			}
			if j := slices.Index(copyTables, parent); j < 0 || j > i {
				t.Errorf("table %s references %s, which copyTables does not put before it", tab, parent)
			}
		}
		fks.Close()
	}
}

// seedCopySource fills a store with what Copy must carry: several
// collections, versioned and unversioned objects with several versions,
// references and origins (edges), a hidden object, statuses and sync state.
func seedCopySource(t testing.TB, s *Store, objects int) {
	t.Helper()
	ctx := context.Background()
	a, b, c := ensure(t, s, "alpha"), ensure(t, s, "beta"), ensure(t, s, "empty")
	_ = c
	for i := 0; i < objects; i++ {
		o := obj("indicator", i, t0, t0.Add(time.Duration(i)*time.Second), i%4, fmt.Sprintf("v1-%d", i))
		ob := obj("ipv4-addr", i, time.Time{}, time.Time{}, 0, fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		o.Refs = []string{ob.ID}
		put(t, s, a.ID, ob, o)
		if i%3 == 0 {
			o2 := obj("indicator", i, t0, t0.Add(time.Hour+time.Duration(i)*time.Second), i%4, fmt.Sprintf("v2-%d", i))
			o2.Refs = o.Refs
			put(t, s, a.ID, o2)
			put(t, s, b.ID, o2)
		}
	}
	err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.SetOrigins(a.ID, map[string][]string{obj("indicator", 0, t0, t0, 0, "").ID: {obj("ipv4-addr", 0, time.Time{}, time.Time{}, 0, "").ID}}); err != nil {
			return err
		}
		if _, err := tx.SetVisibility(a.ID, obj("indicator", 1, t0, t0, 0, "").ID, Withdrawn); err != nil {
			return err
		}
		if err := tx.SetState("tcsync.cursor.indicators", []byte("2026-01-02T03:04:05Z")); err != nil {
			return err
		}
		return tx.SetState("taxii.cursor_secret", []byte{0, 1, 2, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		st := Status{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Status: "complete", Total: 1, Success: 1,
			Owner: "alice", Expires: t0.Add(time.Duration(1000+i) * time.Hour), RequestTimestamp: t0}
		if err := s.PutStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
}

// listing is everything the read API says about a store: collections, and
// per collection its manifest and objects (every version) and the state.
func listing(t testing.TB, s *Store) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	cols, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out["collections"] = cols
	for _, c := range cols {
		for mode, read := range map[string]func(context.Context, Query) (Page, error){"manifest": s.Manifest, "objects": s.Objects} {
			var items []Item
			q := Query{CollectionID: c.ID, Versions: VersionFilter{All: true}, MaxTLP: TLPRed, Limit: 7}
			for {
				p, err := read(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				items = append(items, p.Items...)
				if !p.More {
					break
				}
				k := p.LastKey()
				q.After = &k
			}
			out[c.Alias+"/"+mode] = items
		}
		n, err := s.NewestDateAdded(ctx, c.ID, TLPRed)
		if err != nil {
			t.Fatal(err)
		}
		out[c.Alias+"/newest"] = n
	}
	for _, k := range []string{"tcsync.cursor.indicators", "taxii.cursor_secret", hwKey} {
		v, ok, err := s.State(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out["state/"+k] = fmt.Sprint(ok, v)
	}
	st, err := s.Status(ctx, "00000000-0000-4000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	out["status"] = st
	return out
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0.Add(24 * time.Hour)}
	src, _ := openTest(t, WithNow(clk.now))
	seedCopySource(t, src, 40)
	before := listing(t, src)

	dst, _ := openTest(t, WithNow(clk.now))
	var progressed bool
	rep, err := Copy(ctx, dst, src, CopyOptions{Progress: func(string, int64) { progressed = true }})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if !rep.Written || !progressed {
		t.Errorf("Copy wrote %v, reported progress %v; want both", rep.Written, progressed)
	}
	rows := map[string]int64{}
	for _, tr := range rep.Tables {
		rows[tr.Name] = tr.Rows
	}
	for _, tab := range copyTables {
		if rows[tab] == 0 {
			t.Errorf("report: table %s copied no rows; the seed should cover it", tab)
		}
	}
	if len(rep.Manifests) != 3 || rep.VersionHashes == "" {
		t.Errorf("report: %d manifests, version hashes %q", len(rep.Manifests), rep.VersionHashes)
	}
	if after := listing(t, dst); !reflect.DeepEqual(before, after) {
		for k := range before {
			if !reflect.DeepEqual(before[k], after[k]) {
				t.Errorf("after the copy, %s differs:\n got %v\nwant %v", k, after[k], before[k])
			}
		}
	}
	if after := listing(t, src); !reflect.DeepEqual(before, after) {
		t.Error("the copy changed the source")
	}

	// A re-run verifies and writes nothing.
	rep2, err := Copy(ctx, dst, src, CopyOptions{Progress: func(string, int64) { t.Error("re-run wrote a batch") }})
	if err != nil {
		t.Fatalf("second Copy: %v", err)
	}
	if rep2.Written || !reflect.DeepEqual(rep2.Tables, rep.Tables) || !reflect.DeepEqual(rep2.Manifests, rep.Manifests) {
		t.Errorf("second Copy: written %v, report %+v; want nothing written and the first report", rep2.Written, rep2)
	}

	// The copy is a working store: a new version gets a date_added past
	// every copied one and new keys.
	clk.t = t0 // a clock set back: the copied high-water mark rules
	c, err := dst.Collection(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	newest, _ := dst.NewestDateAdded(ctx, c.ID, TLPRed)
	put(t, dst, c.ID, obj("indicator", 1000, t0, t0, 0, "new"), obj("indicator", 2, t0, t0.Add(48*time.Hour), 0, "changed"))
	n2, _ := dst.NewestDateAdded(ctx, c.ID, TLPRed)
	if n2 <= newest {
		t.Errorf("newest date_added after a write to the copy = %d, want > %d", n2, newest)
	}

	// Now the destination holds other data: refused, and named.
	_, err = Copy(ctx, dst, src, CopyOptions{})
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "table objects has 81 rows (source 80)") {
		t.Errorf("Copy into a different store: %v; want ErrNotEmpty naming the objects table", err)
	}
}

func TestCopy_SchemaMismatch(t *testing.T) {
	src, _ := openTest(t)
	dst, _ := openTest(t)
	if _, err := dst.w.Exec("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)"); err != nil {
		t.Fatal(err)
	}
	_, err := Copy(context.Background(), dst, src, CopyOptions{})
	if !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("Copy = %v, want ErrSchemaMismatch", err)
	}
}

// An interrupted copy leaves the destination as it was; the next run
// succeeds.
func TestCopy_Interrupted(t *testing.T) {
	src, _ := openTest(t)
	seedCopySource(t, src, 300)
	dst, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Copy(ctx, dst, src, CopyOptions{Progress: func(table string, _ int64) {
		if table == "versions" {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("Copy with a cancelled context succeeded")
	}
	if empty, err := isEmpty(context.Background(), dst.r); err != nil || !empty {
		t.Fatalf("after an interrupted copy the destination is empty: %v (%v)", empty, err)
	}
	rep, err := Copy(context.Background(), dst, src, CopyOptions{})
	if err != nil || !rep.Written {
		t.Fatalf("Copy after an interrupted one: written %v, %v", rep.Written, err)
	}
}

// BenchmarkCopy copies a store of TB_COPY_INDICATORS TC indicators (three
// objects each, like the sync writes; default 2,000). The scale:
// TB_COPY_INDICATORS=100000 go test -run '^$' -bench Copy -benchtime 1x ./storage
func BenchmarkCopy(b *testing.B) {
	n := 2000
	if v := os.Getenv("TB_COPY_INDICATORS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("TB_COPY_INDICATORS=%q: want a positive integer", v)
		}
	}
	path := filepath.Join(b.TempDir(), "src.db")
	if _, _, err := fill(path, 3*n); err != nil {
		b.Fatal(err)
	}
	src, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for b.Loop() {
		b.StopTimer()
		dst, _ := openTest(b)
		runtime.GC()
		// Reset the peak RSS (Linux), so VmHWM below is the copy's peak.
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		before := rssMiB()
		b.StartTimer()
		rep, err := Copy(context.Background(), dst, src, CopyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(rep.Tables[slices.Index(copyTables, "versions")].Rows), "versions")
		b.ReportMetric(before, "rss-before-MiB")
		b.ReportMetric(peakRSSMiB(), "peak-rss-MiB")
		dst.Close()
		b.StartTimer()
	}
}

// Row digests do not depend on which driver read a row: integers of any
// width and booleans, text and bytes, encode alike; other values do not
// collide.
func TestCopyDigestDriverIndependent(t *testing.T) {
	same := [][2][]any{
		{{int64(1), "a", []byte{0}}, {int32(1), []byte("a"), "\x00"}},
		{{int64(1), int64(0)}, {true, false}},
		{{nil}, {nil}},
	}
	for _, p := range same {
		a, b := newTableSum("x", nil), newTableSum("x", nil)
		a.add(p[0])
		b.add(p[1])
		if a.sum != b.sum {
			t.Errorf("digests of %v and %v differ", p[0], p[1])
		}
	}
	differ := [][2][]any{
		{{"ab", "c"}, {"a", "bc"}},
		{{int64(1)}, {"1"}},
		{{nil}, {""}},
		{{int64(0)}, {nil}},
	}
	for _, p := range differ {
		a, b := newTableSum("x", nil), newTableSum("x", nil)
		a.add(p[0])
		b.add(p[1])
		if a.sum == b.sum {
			t.Errorf("digests of %v and %v are equal", p[0], p[1])
		}
	}
	if got := asDeclared("x", kindBytes); !reflect.DeepEqual(got, []byte("x")) {
		t.Errorf("asDeclared(text, BLOB) = %#v", got)
	}
	if got := asDeclared([]byte("x"), kindText); got != "x" {
		t.Errorf("asDeclared(bytes, TEXT) = %#v", got)
	}
}

// peakRSSMiB is the process's peak resident set size (VmHWM, Linux only).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
