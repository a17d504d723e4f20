package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the test's own connection, to make and drop its schema

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// syncedStore syncs the simulator into a SQLite file and adds what a sync
// does not write (a status, a local collection), so the store has several
// collections, versions, statuses and sync state.
func syncedStore(t *testing.T, dir string) string {
	t.Helper()
	cfg, path := syncTestConfig(t, dir, simServer(t, 300))
	code, out, errOut := runCmd(t, "", map[string]string{"TC_SECRET_KEY": "cmd-test-secret"}, "sync", "-once", "-config", cfg)
	if code != exitOK {
		t.Fatalf("sync -once: exit %d\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	s, err := storage.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.EnsureCollection(ctx, storage.Collection{Alias: "inbox", Title: "Inbox", Kind: "local", CanWrite: true}); err != nil {
		t.Fatal(err)
	}
	st := storage.Status{ID: "00000000-0000-4000-8000-000000000042", Status: "complete", Total: 1, Success: 1,
		Owner: "user:alice", RequestTimestamp: time.Now().UTC(), Expires: time.Now().Add(24 * time.Hour)}
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	return path
}

// listStore is what the read API says of a store: every collection, its
// manifest (every version: id, date_added, modified) and every version's
// bytes, the sync state, and the status added by syncedStore.
func listStore(t *testing.T, s *storage.Store) string {
	t.Helper()
	ctx := context.Background()
	cols, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range cols {
		fmt.Fprintf(&b, "collection %+v\n", c)
		for _, read := range []func(context.Context, storage.Query) (storage.Page, error){s.Manifest, s.Objects} {
			q := storage.Query{CollectionID: c.ID, Versions: storage.VersionFilter{All: true}, MaxTLP: storage.TLPRed, Limit: 500}
			for {
				p, err := read(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range p.Items {
					fmt.Fprintf(&b, "%s %d %s %s %s\n", it.ID, it.DateAdded, it.Modified.Format(time.RFC3339Nano), it.Type, it.JSON)
				}
				if !p.More {
					break
				}
				k := p.LastKey()
				q.After = &k
			}
		}
	}
	// The sync's cursors (tcsync/state.go) and the date_added high-water
	// mark (storage/store.go).
	for _, k := range []string{"tcsync/indicators", "tcsync/groups", "tcsync/deleted", "storage.date_added_high_water"} {
		v, ok, err := s.State(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("state %s is absent; the test wants it carried", k)
		}
		fmt.Fprintf(&b, "state %s %s\n", k, v)
	}
	st, err := s.Status(ctx, "00000000-0000-4000-8000-000000000042")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "status %+v\n", st)
	return b.String()
}

func listFile(t *testing.T, path string) string {
	t.Helper()
	s, err := storage.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return listStore(t, s)
}

// TestMigrate runs migrate SQLite → SQLite end to end: the copy reads back
// identically through the read API, a re-run writes nothing, a destination
// holding other data is refused, and absent or damaged sources are clear
// errors.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	src := syncedStore(t, dir)
	before := listFile(t, src)
	if n := strings.Count(before, "collection {"); n < 3 {
		t.Fatalf("the source has %d collections; the test wants several", n)
	}
	dst := filepath.Join(dir, "copy.db")

	code, out, errOut := runCmd(t, "", nil, "migrate", "-from", src, "-to", dst)
	if code != exitOK || !strings.Contains(out, "migrated ") {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, table := range []string{"state", "collections", "objects", "versions", "members", "edges", "statuses"} {
		if !strings.Contains(out, "  "+table+" ") {
			t.Errorf("the report does not list table %s:\n%s", table, out)
		}
	}
	if after := listFile(t, dst); after != before {
		t.Errorf("the copy reads back differently through the read API:\n got %.2000s\nwant %.2000s", after, before)
	}
	if again := listFile(t, src); again != before {
		t.Error("migrate changed the source")
	}

	code, out, errOut = runCmd(t, "", nil, "migrate", "-from", src, "-to", dst)
	if code != exitOK || !strings.Contains(out, "verified, nothing written") {
		t.Fatalf("re-run: exit %d\n%s\n%s", code, out, errOut)
	}

	// The destination gains data of its own: refused, named, not merged. (A
	// status is two rows: the document and its expiry-index entry.)
	s, err := storage.Open(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutStatus(context.Background(), storage.Status{ID: "00000000-0000-4000-8000-000000000043", Status: "complete"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	want := listFile(t, dst)
	code, _, errOut = runCmd(t, "", nil, "migrate", "-from", src, "-to", dst)
	if code != exitFailure || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "table statuses has 3 rows (source 2)") {
		t.Errorf("migrate into a different store: exit %d\n%s", code, errOut)
	}
	if listFile(t, dst) != want {
		t.Error("a refused migrate changed the destination")
	}

	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"absent source", []string{"-from", filepath.Join(dir, "nope.db"), "-to", filepath.Join(dir, "x.db")}, exitUsage, "no such file"},
		{"no -to", []string{"-from", src}, exitUsage, "-from and -to are both required"},
		{"same file", []string{"-from", src, "-to", src}, exitUsage, "names the source"},
		{"damaged source", []string{"-from", garbageFile(t, dir), "-to", filepath.Join(dir, "y.db")}, exitFailure, "not a usable SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, "", nil, append([]string{"migrate"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.contains) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tt.code, tt.contains)
			}
		})
	}
}

func garbageFile(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(p, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The PostgreSQL password, in the URL or in the environment, appears in no
// message, whatever fails.
func TestMigratePasswordNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.Open(context.Background(), filepath.Join(dir, "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, tc := range []struct {
		to  string
		env map[string]string
	}{
		{"postgres://tb:s3cr%2Fet-pw@127.0.0.1:1/test?sslmode=disable", nil},
		{"postgres://tb@127.0.0.1:1/test?sslmode=disable&password=s3cr%2Fet-pw", nil},
		{"postgresql://tb@127.0.0.1:1/test", map[string]string{config.EnvPostgresPassword: "s3cr/et-pw"}},
	} {
		code, out, errOut := runCmd(t, "", tc.env, "migrate", "-from", filepath.Join(dir, "src.db"), "-to", tc.to)
		if code == exitOK {
			t.Errorf("migrate to an unreachable %s succeeded", tc.to)
		}
		// A password on the command line is refused: ps shows it to every user.
		if tc.env == nil && !strings.Contains(errOut, config.EnvPostgresPassword) {
			t.Errorf("migrate -to with a password in the URL: %s", errOut)
		}
		for _, secret := range []string{"s3cr/et-pw", "s3cr%2Fet-pw", "s3cr"} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("migrate -to %s printed the password:\n%s%s", tc.to, out, errOut)
			}
		}
	}
}

// TestMigratePostgres is TestMigrate's copy into PostgreSQL, in a schema of
// its own (search_path in the URL) that it drops afterwards. It needs
// TB_POSTGRES_URL.
func TestMigratePostgres(t *testing.T) {
	ctx := context.Background()
	to, _ := pgtest.Schema(t, "tb_migrate")
	probe, err := storage.OpenPostgres(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()

	dir := t.TempDir()
	src := syncedStore(t, dir)
	before := listFile(t, src)
	code, out, errOut := runCmd(t, "", nil, "migrate", "-from", src, "-to", to)
	if code != exitOK || !strings.Contains(out, "migrated ") {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	s, err := storage.OpenPostgres(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	after := listStore(t, s)
	s.Close()
	if after != before {
		t.Errorf("the PostgreSQL copy reads back differently:\n got %.2000s\nwant %.2000s", after, before)
	}
	code, out, errOut = runCmd(t, "", nil, "migrate", "-from", src, "-to", to)
	if code != exitOK || !strings.Contains(out, "verified, nothing written") {
		t.Fatalf("re-run: exit %d\n%s\n%s", code, out, errOut)
	}
}
