package storage

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// Issue 9 point 6: a new database and its -wal and -shm files are readable
// and writable by their owner only.
func TestOpenCreatesDatabaseFilesOwnerOnly(t *testing.T) {
	s, path := openTest(t)
	ensure(t, s, "a") // a write, so the WAL exists
	if _, err := s.Collections(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, m)
		}
	}
}

// Issue 14 and issue 9 point 4: a status keeps its owner, stays readable
// until it expires, and expired statuses are deleted by the next PutStatus
// through the expiry index (never by reading bodies).
func TestStatusOwnerAndRetention(t *testing.T) { eachBackend(t, testStatusOwnerAndRetention) }

func testStatusOwnerAndRetention(t *testing.T, be backend) {
	clk := &clock{t: t0}
	s, _ := be.open(t, WithNow(clk.now))
	ctx := context.Background()
	st := Status{ID: "00000000-0000-4000-8000-000000000001", Status: "complete", Total: 1, Success: 1,
		Successes: []StatusDetail{{ID: "x", Version: "v"}}, Owner: "alice", Expires: t0.Add(24 * time.Hour)}
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	forever := Status{ID: "00000000-0000-4000-8000-000000000002", Status: "complete", Owner: "bob"}
	if err := s.PutStatus(ctx, forever); err != nil {
		t.Fatal(err)
	}
	got, err := s.Status(ctx, st.ID)
	if err != nil || got.Owner != "alice" || !got.Expires.Equal(st.Expires) || len(got.Successes) != 1 {
		t.Fatalf("Status = %+v, %v", got, err)
	}
	if _, err := s.Status(ctx, statusExpiryKey(st.Expires, st.ID)); !errors.Is(err, ErrNotFound) {
		t.Errorf("an index key reads as a status: %v", err)
	}
	if err := s.PutStatus(ctx, Status{ID: "~x"}); err == nil {
		t.Errorf("PutStatus took an id in the index key space")
	}

	clk.t = t0.Add(24 * time.Hour)
	if _, err := s.Status(ctx, st.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired status: %v, want ErrNotFound", err)
	}
	rows := func() int {
		var n int
		if err := s.r.QueryRow("SELECT count(*) FROM statuses").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 3 {
		t.Fatalf("%d rows before pruning, want 3 (two statuses, one index row)", n)
	}
	clk.t = t0.Add(25 * time.Hour)
	next := Status{ID: "00000000-0000-4000-8000-000000000003", Status: "complete", Expires: clk.t.Add(time.Hour)}
	if err := s.PutStatus(ctx, next); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 3 {
		t.Errorf("%d rows after pruning, want 3 (the status without expiry, the new one and its index row)", n)
	}
	if _, err := s.Status(ctx, forever.ID); err != nil {
		t.Errorf("status without expiry: %v", err)
	}
	if _, err := s.Status(ctx, next.ID); err != nil {
		t.Errorf("new status: %v", err)
	}
}

// Issue 14: the stored form of a status is bounded.
func TestPutStatusRefusesOversizedStatus(t *testing.T) {
	eachBackend(t, testPutStatusRefusesOversizedStatus)
}

func testPutStatusRefusesOversizedStatus(t *testing.T, be backend) {
	s, _ := be.open(t)
	big := Status{ID: "00000000-0000-4000-8000-000000000001", Status: "complete",
		Failures: []StatusDetail{{ID: "x", Message: strings.Repeat("a", MaxStatusBytes)}}}
	if err := s.PutStatus(context.Background(), big); err == nil {
		t.Fatal("PutStatus stored a status larger than MaxStatusBytes")
	}
}

// Issue 9 point 3: Remove with a TLP cap removes nothing of an object whose
// latest version is above the cap, and only the visible versions of one
// whose latest version is within it; the flags move to what remains.
func TestRemoveRespectsTLPCap(t *testing.T) { eachBackend(t, testRemoveRespectsTLPCap) }

func testRemoveRespectsTLPCap(t *testing.T, be backend) {
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	ctx := context.Background()
	t1, t2 := t0, t0.Add(time.Minute)
	// Object 1: GREEN, then RED (hidden from a GREEN reader).
	put(t, s, c.ID, obj("indicator", 1, t1, t1, TLPGreen, "a"))
	put(t, s, c.ID, obj("indicator", 1, t1, t2, TLPRed, "b"))
	// Object 2: RED, then GREEN (visible; its RED version is not).
	put(t, s, c.ID, obj("indicator", 2, t1, t1, TLPRed, "a"))
	put(t, s, c.ID, obj("indicator", 2, t1, t2, TLPGreen, "b"))
	remove := func(id string, maxTLP int) bool {
		t.Helper()
		var ok bool
		if err := s.Update(ctx, func(tx *Tx) (err error) { ok, err = tx.Remove(c.ID, id, maxTLP); return err }); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	versions := func(id string) []Item {
		return all(t, s.Versions, Query{CollectionID: c.ID, IDs: []string{id}, MaxTLP: TLPRed}, 10)
	}
	id1, id2 := obj("indicator", 1, t1, t1, 0, "").ID, obj("indicator", 2, t1, t1, 0, "").ID
	if remove(id1, TLPGreen) {
		t.Errorf("a GREEN reader removed an object whose latest version is RED")
	}
	if n := len(versions(id1)); n != 2 {
		t.Errorf("object 1 has %d versions after a refused remove, want 2", n)
	}
	if !remove(id2, TLPGreen) {
		t.Errorf("a GREEN reader could not remove an object whose latest version is GREEN")
	}
	vs := versions(id2)
	if len(vs) != 1 || !vs[0].Modified.Equal(t1) {
		t.Fatalf("object 2 keeps %+v, want its RED version only", vs)
	}
	err := s.Update(ctx, func(tx *Tx) error {
		v, ok, err := tx.Latest(c.ID, id2)
		if err != nil || !ok || v.TLP != TLPRed {
			t.Errorf("Latest after partial remove = %+v, %v, %v; want the RED version", v, ok, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	first := all(t, s.Manifest, Query{CollectionID: c.ID, IDs: []string{id2}, Versions: VersionFilter{First: true}, MaxTLP: TLPRed}, 10)
	if len(first) != 1 {
		t.Errorf("match[version]=first finds %d versions after partial remove, want 1", len(first))
	}
	if !remove(id1, TLPRed) || len(versions(id1)) != 0 {
		t.Errorf("an uncapped remove left versions")
	}
}
