package storage

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// fillClosed writes n objects of about 1 KB each into a new collection and
// closes the store, so everything is in the main file.
func fillClosed(t *testing.T, n int) string {
	t.Helper()
	s, path := openTest(t)
	c := ensure(t, s, "intel")
	objs := make([]Object, 0, n)
	for i := range n {
		objs = append(objs, obj("indicator", i, t0, t0, TLPGreen, strings.Repeat("x", 1000)+string(rune('a'+i%26))))
	}
	put(t, s, c.ID, objs...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// garble overwrites the middle third of the file, where the version bytes
// are, leaving the schema and the ends of the b-trees Open reads intact.
func garble(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 3; i < 2*len(b)/3; i++ {
		b[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStore_Check(t *testing.T) {
	ctx := context.Background()
	t.Run("Sound", func(t *testing.T) {
		path := fillClosed(t, 300)
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, full := range []bool{false, true} {
			if err := s.Check(ctx, full); err != nil {
				t.Errorf("Check(full=%v) = %v, want nil", full, err)
			}
		}
		got, err := s.Path(ctx)
		if err != nil || got != path {
			t.Errorf("Path() = %q, %v; want %q", got, err, path)
		}
	})
	t.Run("Garbled", func(t *testing.T) {
		path := fillClosed(t, 300)
		garble(t, path)
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open of a file damaged in the middle: %v (the test wants Open to succeed and Check to find it)", err)
		}
		defer s.Close()
		for _, full := range []bool{false, true} {
			err := s.Check(ctx, full)
			var ie *IntegrityError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), path) || !IsFault(err) {
				t.Errorf("Check(full=%v) = %v; want an IntegrityError naming %s", full, err, path)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		path := fillClosed(t, 300)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Open error %q does not name the file", err)
			}
			return
		}
		defer s.Close()
		if err := s.Check(ctx, false); err == nil || !strings.Contains(err.Error(), path) || !IsFault(err) {
			t.Errorf("Check of a truncated file = %v; want a fault naming %s", err, path)
		}
	})
}

func TestStore_StatsAndNewest(t *testing.T) { eachBackend(t, testStore_StatsAndNewest) }

func testStore_StatsAndNewest(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "intel")
	empty := ensure(t, s, "empty")
	put(t, s, c.ID, obj("indicator", 1, t0, t0, TLPGreen, "a"), obj("indicator", 2, t0, t0, TLPRed, "b"))
	put(t, s, c.ID, obj("indicator", 1, t0, t0.Add(1e9), TLPGreen, "a2"))
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byAlias := map[string]CollectionStats{}
	for _, cs := range st.Collections {
		byAlias[cs.Alias] = cs
	}
	if got := byAlias["intel"]; got.Objects != 2 || got.Versions != 3 || got.NewestDateAdded == 0 {
		t.Errorf("intel stats = %+v; want 2 objects, 3 versions, a newest date_added", got)
	}
	if got := byAlias["empty"]; got.Objects != 0 || got.Versions != 0 || got.NewestDateAdded != 0 {
		t.Errorf("empty stats = %+v; want zeros", got)
	}
	if st.DatabaseBytes <= 0 {
		t.Errorf("DatabaseBytes = %d", st.DatabaseBytes)
	}
	all, err := s.NewestDateAdded(ctx, c.ID, TLPRed)
	if err != nil || all != byAlias["intel"].NewestDateAdded {
		t.Errorf("NewestDateAdded(red) = %d, %v; want %d", all, err, byAlias["intel"].NewestDateAdded)
	}
	green, err := s.NewestDateAdded(ctx, c.ID, TLPGreen)
	if err != nil || green != all {
		t.Errorf("NewestDateAdded(green) = %d, %v; want %d (the second version of a green object is newest)", green, err, all)
	}
	put(t, s, c.ID, obj("indicator", 3, t0, t0, TLPRed, "c"))
	if g2, _ := s.NewestDateAdded(ctx, c.ID, TLPGreen); g2 != green {
		t.Errorf("a red object moved the green reader's newest date_added: %d → %d", green, g2)
	}
	if r2, _ := s.NewestDateAdded(ctx, c.ID, TLPRed); r2 <= all {
		t.Errorf("a red object did not move the red reader's newest date_added: %d → %d", all, r2)
	}
	if n, err := s.NewestDateAdded(ctx, empty.ID, TLPRed); n != 0 || err != nil {
		t.Errorf("NewestDateAdded(empty) = %d, %v", n, err)
	}
}
