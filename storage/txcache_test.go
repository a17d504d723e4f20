package storage

import (
	"context"
	"testing"
)

// TestKnownIDsNeverHideAnotherWritersRows: the filter of ids the objects
// table may hold is built when a large lookup finds ids absent; when another
// process writes to the file afterwards, its ids must not be taken for
// absent (a duplicate objects row would fail every later write).
func TestKnownIDsNeverHideAnotherWritersRows(t *testing.T) {
	eachBackend(t, testKnownIDsNeverHideAnotherWritersRows)
}

func testKnownIDsNeverHideAnotherWritersRows(t *testing.T, be backend) {
	ctx := context.Background()
	a, path := be.open(t)
	ca, cb := ensure(t, a, "a"), ensure(t, a, "b")
	var ids []string
	var batch []Object
	for i := range 2 * knownBuildAsk {
		o := obj("indicator", i, t0, t0, 0, "x")
		ids, batch = append(ids, o.ID), append(batch, o)
	}
	err := a.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Meta(ca.ID, ids); err != nil { // all absent: the filter is built
			return err
		}
		_, err := tx.Put(ca.ID, batch)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.known == nil {
		t.Fatal("a lookup of 1,024 absent ids did not build the filter")
	}

	other, err := reopen(ctx, path) // another process on the same file
	if err != nil {
		t.Fatal(err)
	}
	late := obj("indicator", 5000, t0, t0, 0, "written by the other process")
	put(t, other, ca.ID, late)
	other.Close()

	if res := put(t, a, cb.ID, late); res.New != 1 {
		t.Errorf("Put of an id another process stored = %+v, want it new in this collection", res)
	}
	var m map[string]Meta
	err = a.Update(ctx, func(tx *Tx) error { m, err = tx.Meta(ca.ID, []string{late.ID}); return err })
	if err != nil || m[late.ID].Hash != late.Hash {
		t.Errorf("Meta after another process wrote = %v, %v; want its version", m, err)
	}
}

// TestEncodedFormFollowsTheJSON: an object prepared with Encode and then
// given new JSON (the sync bumps or remarks after preparing) is stored as
// its new JSON, not as what was prepared.
func TestEncodedFormFollowsTheJSON(t *testing.T) { eachBackend(t, testEncodedFormFollowsTheJSON) }

func testEncodedFormFollowsTheJSON(t *testing.T, be backend) {
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	o := obj("indicator", 1, t0, t0, 0, "prepared")
	o.Encode()
	n := obj("indicator", 1, t0, t0, 0, "replaced after Encode")
	o.JSON, o.Hash = n.JSON, n.Hash
	put(t, s, c.ID, o)
	items := all(t, s.Objects, Query{CollectionID: c.ID, MaxTLP: TLPRed}, 10)
	if len(items) != 1 || string(items[0].JSON) != string(n.JSON) {
		for _, it := range items {
			t.Logf("stored %s", it.JSON)
		}
		t.Fatalf("want only %s", n.JSON)
	}
}

// TestKnownIDsGrowByRebuilding: a filter that holds more ids than it was
// sized for is rebuilt from the table, larger, and still never answers "no"
// for a stored id.
func TestKnownIDsGrowByRebuilding(t *testing.T) { eachBackend(t, testKnownIDsGrowByRebuilding) }

func testKnownIDsGrowByRebuilding(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	var ids []string
	var batch []Object
	for i := range 2 * knownBuildAsk {
		o := obj("indicator", i, t0, t0, 0, "x")
		ids, batch = append(ids, o.ID), append(batch, o)
	}
	err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Meta(c.ID, ids); err != nil {
			return err
		}
		_, err := tx.Put(c.ID, batch[:knownBuildAsk])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.known == nil {
		t.Fatal("no filter built")
	}
	s.known.limit = knownBuildAsk / 2 // as if sized for fewer ids: it is full
	first := s.known
	err = s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Put(c.ID, batch[knownBuildAsk:]); err != nil {
			return err
		}
		m, err := tx.Meta(c.ID, ids) // a lookup after the filter filled
		if err != nil {
			return err
		}
		if len(m) != len(ids) {
			t.Errorf("Meta found %d of %d stored ids", len(m), len(ids))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.known == first || s.known.limit < knownMinCapacity {
		t.Errorf("the full filter was not rebuilt larger (limit %d)", s.known.limit)
	}
	for _, id := range ids {
		if !s.known.mayHold(id) {
			t.Fatalf("the rebuilt filter says %s is absent", id)
		}
	}
}
