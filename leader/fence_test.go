package leader_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/taxii-bridge/taxii-bridge/leader"
	"github.com/taxii-bridge/taxii-bridge/storage"
)

func mustOpenStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fencedWrite writes key=value in a transaction that checks f first.
func fencedWrite(t *testing.T, s *storage.Store, f *leader.Fence, key string) error {
	t.Helper()
	return s.Update(t.Context(), func(tx *storage.Tx) error {
		if err := f.Check(tx); err != nil {
			return err
		}
		return tx.SetState(key, []byte("written"))
	})
}

// A term that a newer one superseded can no longer write: the fenced
// transaction fails and leaves nothing behind.
func TestFence_StaleEpochWritesNothing(t *testing.T) {
	s := mustOpenStore(t)
	var old, cur leader.Fence

	if err := fencedWrite(t, s, &old, "before-any-term"); !errors.Is(err, leader.ErrFenced) {
		t.Errorf("write without a term = %v; want ErrFenced", err)
	}
	e1, err := old.Begin(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if err := fencedWrite(t, s, &old, "term1"); err != nil {
		t.Fatalf("write in the current term: %v", err)
	}
	e2, err := cur.Begin(t.Context(), s) // another replica takes over
	if err != nil {
		t.Fatal(err)
	}
	if e2 != e1+1 {
		t.Errorf("epochs %d then %d; want consecutive", e1, e2)
	}
	if err := fencedWrite(t, s, &old, "stale"); !errors.Is(err, leader.ErrFenced) {
		t.Errorf("write of the superseded term = %v; want ErrFenced", err)
	}
	if err := fencedWrite(t, s, &cur, "term2"); err != nil {
		t.Errorf("write of the new term: %v", err)
	}
	cur.End()
	if err := fencedWrite(t, s, &cur, "after-end"); !errors.Is(err, leader.ErrFenced) {
		t.Errorf("write after End = %v; want ErrFenced", err)
	}

	for key, want := range map[string]bool{"before-any-term": false, "term1": true, "stale": false, "term2": true, "after-end": false} {
		_, ok, err := s.State(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Errorf("state %q present = %v; want %v", key, ok, want)
		}
	}
	v, _, _ := s.State(t.Context(), leader.EpochKey)
	if string(v) != "2" {
		t.Errorf("stored epoch = %q; want 2", v)
	}
}
