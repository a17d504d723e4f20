package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// t0 is the fixed instant test clocks start from.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openTest(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "taxii.db")
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// backend is a store backend the contract tests run against. open returns
// a new empty store and where it lives (a file path or a URL), which reopen
// opens again (another process on the same database).
type backend struct {
	name string
	open func(t testing.TB, opts ...Option) (*Store, string)
}

var (
	sqliteBackend   = backend{"sqlite", openTest}
	postgresBackend = backend{"postgres", openPostgresTest}
)

// eachBackend runs f as a subtest per backend: SQLite always, PostgreSQL
// when TB_POSTGRES_URL names a server (it skips with a message otherwise).
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range []backend{sqliteBackend, postgresBackend} {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				pgtest.URL(t) // skips once for the variant
			}
			f(t, b)
		})
	}
}

// reopen opens the store at where (a path from openTest or a URL from
// openPostgresTest) once more.
func reopen(ctx context.Context, where string, opts ...Option) (*Store, error) {
	if strings.HasPrefix(where, "postgres://") {
		return OpenPostgres(ctx, where, opts...)
	}
	return Open(ctx, where, opts...)
}

// newPostgresSchema is a URL of the test server selecting a fresh schema
// (pgtest), or a skip without TB_POSTGRES_URL.
func newPostgresSchema(t testing.TB) string {
	t.Helper()
	u, _ := pgtest.Schema(t, "tb")
	return u
}

// openPostgresTest is openTest on PostgreSQL, in a fresh schema.
func openPostgresTest(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	u := newPostgresSchema(t)
	s, err := OpenPostgres(context.Background(), u, opts...)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // before the schema is dropped
	return s, u
}

func ensure(t testing.TB, s *Store, alias string) Collection {
	t.Helper()
	c, err := s.EnsureCollection(context.Background(), Collection{Alias: alias, Title: alias, Kind: "local"})
	if err != nil {
		t.Fatalf("EnsureCollection(%s): %v", alias, err)
	}
	return c
}

// obj builds a canonical STIX object. The hash covers everything but
// modified, like the real callers' hash.
func obj(typ string, n int, created, modified time.Time, tlp int, content string) Object {
	id := fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", typ, n)
	m := map[string]any{"id": id, "type": typ, "spec_version": "2.1", "name": content}
	if !created.IsZero() {
		m["created"] = formatSTIXTime(created)
	}
	h := marshalNoEscape(m)
	if !modified.IsZero() {
		m["modified"] = formatSTIXTime(modified)
	}
	b := marshalNoEscape(m)
	o := Object{ID: id, Type: typ, SpecVersion: "2.1", Created: created, Modified: modified, TLP: tlp, JSON: b}
	o.Hash = hash16(h)
	return o
}

func put(t testing.TB, s *Store, cid string, objs ...Object) PutResult {
	t.Helper()
	var res PutResult
	err := s.Update(context.Background(), func(tx *Tx) error {
		var err error
		res, err = tx.Put(cid, objs)
		return err
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return res
}

// sameCounts compares the counts of two PutResults.
func sameCounts(a, b PutResult) bool {
	return a.New == b.New && a.Unchanged == b.Unchanged
}

func marshalNoEscape(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// all pages through a listing with the given page size and returns every item.
func all(t testing.TB, list func(context.Context, Query) (Page, error), q Query, limit int) []Item {
	t.Helper()
	var out []Item
	q.Limit = limit
	for i := 0; ; i++ {
		p, err := list(context.Background(), q)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		out = append(out, p.Items...)
		if !p.More {
			return out
		}
		if len(p.Items) == 0 {
			t.Fatalf("page %d: More with no items", i)
		}
		k := p.LastKey()
		q.After = &k
	}
}

// formatSTIXTime writes a STIX timestamp as the mapper does (milliseconds,
// or microseconds when the instant needs them); storage itself never
// formats one.
func formatSTIXTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()%int(time.Millisecond) == 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000Z")
}

// hash16 is a content hash as callers compute it: SHA-256 cut to 16 bytes.
func hash16(b []byte) [16]byte {
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}
