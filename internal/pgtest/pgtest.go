// Package pgtest gives tests a PostgreSQL database of their own: the server
// named by TB_POSTGRES_URL (on the project's machines
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; .ci/run sets it
// when that server answers), and a fresh schema per test, selected through
// the search_path parameter of the URL and dropped when the test ends, so
// that tests run in parallel and leave nothing behind. Without
// TB_POSTGRES_URL the tests that ask for it are skipped with a message
// that says so.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Env is the environment variable naming the test server.
const Env = "TB_POSTGRES_URL"

// URL is the test server's URL, or a skip saying that Env is not set.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u == "" {
		t.Skip(Env + " is not set: PostgreSQL test skipped (set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return u
}

// Schema creates a schema of the test's own (prefix plus random hex) and
// returns the test server's URL with search_path set to it, and the
// schema's name. The schema is dropped with everything in it when the test
// ends; close what uses it in an earlier cleanup (cleanups run last first,
// so register them after calling Schema).
func Schema(t testing.TB, prefix string) (u, schema string) {
	t.Helper()
	base := URL(t)
	var rnd [6]byte
	rand.Read(rnd[:])
	schema = prefix + "_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("connect to %s: %v", Env, err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	pu, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s does not parse as a URL", Env) // the error could quote a password
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String(), schema
}

// ServerCPU is the CPU time (user + system) used so far by every process of
// this machine named postgres: the database server's share of a benchmark
// when it runs on the same machine and nothing else uses it meanwhile.
// Processes that exit between two readings take their time with them (Linux
// /proc; 0 elsewhere).
func ServerCPU() time.Duration {
	var total time.Duration
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		name, rest, ok := strings.Cut(string(b), ") ")
		if !ok || !strings.HasSuffix(name, "(postgres") {
			continue
		}
		f := strings.Fields(rest) // f[11], f[12]: utime, stime in clock ticks
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			stime, _ := strconv.ParseInt(f[12], 10, 64)
			total += time.Duration(ut+stime) * 10 * time.Millisecond // USER_HZ = 100
		}
	}
	return total
}
