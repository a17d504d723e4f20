package storage

import (
	"context"
	"slices"
	"testing"
	"time"
)

// views lists an id through every read path a TAXII reader has, with a cap.
func views(t *testing.T, s *Store, col, id string, capTLP int) (objects, manifest, versions int) {
	t.Helper()
	ctx := context.Background()
	for _, vf := range []VersionFilter{{}, {All: true}, {First: true}} {
		q := Query{CollectionID: col, IDs: []string{id}, Versions: vf, MaxTLP: capTLP, Limit: 100}
		p, err := s.Objects(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		objects += len(p.Items)
		if p, err = s.Manifest(ctx, q); err != nil {
			t.Fatal(err)
		}
		manifest += len(p.Items)
	}
	p, err := s.Versions(ctx, Query{CollectionID: col, IDs: []string{id}, MaxTLP: capTLP, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return objects, manifest, len(p.Items)
}

// TestCappedReaderCannotSeeObjectWhoseLatestVersionIsAboveCap protects
// issue 9 point 6: visibility is decided on the latest version, so older
// versions below the cap do not leak through match[version] or the manifest.
func TestCappedReaderCannotSeeObjectWhoseLatestVersionIsAboveCap(t *testing.T) {
	eachBackend(t, testCappedReaderCannotSeeObjectWhoseLatestVersionIsAboveCap)
}

func testCappedReaderCannotSeeObjectWhoseLatestVersionIsAboveCap(t *testing.T, be backend) {
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	v1 := obj("indicator", 1, t0, t0, TLPGreen, "a")
	v2 := obj("indicator", 1, t0, t0.Add(time.Hour), TLPRed, "b")
	put(t, s, c.ID, v1, v2)
	if o, m, v := views(t, s, c.ID, v1.ID, TLPGreen); o+m+v != 0 {
		t.Errorf("GREEN reader sees %d objects, %d manifest entries, %d versions of a RED object", o, m, v)
	}
	if o, m, v := views(t, s, c.ID, v1.ID, TLPRed); o != 4 || m != 4 || v != 2 {
		t.Errorf("uncapped reader: %d objects, %d manifest entries, %d versions; want 4, 4, 2", o, m, v)
	}
	// Loosened again: the GREEN reader sees the object, but never the RED version.
	v3 := obj("indicator", 1, t0, t0.Add(2*time.Hour), TLPGreen, "c")
	put(t, s, c.ID, v3)
	if _, _, v := views(t, s, c.ID, v1.ID, TLPGreen); v != 2 {
		t.Errorf("GREEN reader sees %d versions after loosening, want 2 (the RED one hidden)", v)
	}
}

// TestHiddenObjectIsInvisibleToEveryReaderAndReappearsWithFreshDateAdded
// checks SetVisibility: withdrawn and blocked objects are absent for every
// cap, and publishing again moves date_added so added_after pollers see it.
func TestHiddenObjectIsInvisibleToEveryReaderAndReappearsWithFreshDateAdded(t *testing.T) {
	eachBackend(t, testHiddenObjectIsInvisibleToEveryReaderAndReappearsWithFreshDateAdded)
}

func testHiddenObjectIsInvisibleToEveryReaderAndReappearsWithFreshDateAdded(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s, _ := be.open(t, WithNow(clk.now))
	c := ensure(t, s, "c")
	o := obj("indicator", 1, t0, t0, TLPClear, "a")
	put(t, s, c.ID, o)
	first := all(t, s.Objects, Query{CollectionID: c.ID, MaxTLP: TLPRed}, 10)[0].DateAdded
	for _, v := range []Visibility{Withdrawn, Blocked} {
		setVis(t, s, c.ID, o.ID, v, true)
		for capTLP := TLPNone; capTLP <= TLPRed; capTLP++ {
			if a, b, d := views(t, s, c.ID, o.ID, capTLP); a+b+d != 0 {
				t.Errorf("%v object visible to cap %d", v, capTLP)
			}
		}
		// A new version of a hidden object stays hidden.
		clk.t = clk.t.Add(time.Minute)
		put(t, s, c.ID, obj("indicator", 1, t0, clk.t, TLPClear, clk.t.String()))
		if a, _, _ := views(t, s, c.ID, o.ID, TLPRed); a != 0 {
			t.Errorf("new version of a %v object is visible", v)
		}
		setVis(t, s, c.ID, o.ID, Published, true)
		setVis(t, s, c.ID, o.ID, Published, false)
		items := all(t, s.Objects, Query{CollectionID: c.ID, AddedAfter: first, MaxTLP: TLPRed}, 10)
		if len(items) != 1 || items[0].ID != o.ID {
			t.Fatalf("after publishing again, added_after the first date_added lists %d items", len(items))
		}
		first = items[0].DateAdded
	}
	err := s.Update(ctx, func(tx *Tx) error {
		m, err := tx.Meta(c.ID, []string{o.ID, "indicator--00000000-0000-4000-8000-000000000099"})
		if err != nil {
			return err
		}
		if len(m) != 1 || m[o.ID].Vis != Published || m[o.ID].TLP != TLPClear {
			t.Errorf("Meta = %+v", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func setVis(t *testing.T, s *Store, col, id string, v Visibility, wantChange bool) {
	t.Helper()
	err := s.Update(context.Background(), func(tx *Tx) error {
		changed, err := tx.SetVisibility(col, id, v)
		if changed != wantChange {
			t.Errorf("SetVisibility(%v) changed = %v, want %v", v, changed, wantChange)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEdgesFollowLatestVersion checks that reference edges are those of the
// latest version, that origins are replaced as a set, and the batch lookups.
func TestEdgesFollowLatestVersion(t *testing.T) { eachBackend(t, testEdgesFollowLatestVersion) }

func testEdgesFollowLatestVersion(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	d := ensure(t, s, "d")
	a, b := obj("indicator", 1, t0, t0, 0, "a"), obj("malware", 2, t0, t0, 0, "b")
	r := obj("relationship", 3, t0, t0, 0, "r")
	r.Refs = []string{a.ID, b.ID}
	r.TCID = 42
	put(t, s, c.ID, r, a, b) // refs may precede their targets
	put(t, s, d.ID, a)
	err := s.Update(ctx, func(tx *Tx) error {
		refs, err := tx.Referrers(c.ID, EdgeRef, []string{a.ID, b.ID})
		if err != nil {
			return err
		}
		if !slices.Equal(refs[a.ID], []string{r.ID}) || !slices.Equal(refs[b.ID], []string{r.ID}) {
			t.Errorf("Referrers = %v", refs)
		}
		r2 := obj("relationship", 3, t0, t0.Add(time.Hour), 0, "r2")
		r2.Refs, r2.Revoked = []string{a.ID}, true
		if _, err := tx.Put(c.ID, []Object{r2}); err != nil {
			return err
		}
		tg, err := tx.Targets(c.ID, EdgeRef, []string{r.ID})
		if err != nil {
			return err
		}
		if !slices.Equal(tg[r.ID], []string{a.ID}) {
			t.Errorf("Targets after a new version = %v, want only %s", tg, a.ID)
		}
		m, err := tx.Meta(c.ID, []string{r.ID})
		if err != nil {
			return err
		}
		if !m[r.ID].Revoked || m[r.ID].TCID != 0 {
			t.Errorf("Meta of the revoked version = %+v", m[r.ID])
		}
		if _, err := tx.SetOrigins(c.ID, map[string][]string{a.ID: {b.ID, r.ID}}); err != nil {
			return err
		}
		gone, err := tx.SetOrigins(c.ID, map[string][]string{a.ID: {r.ID}})
		if err != nil {
			return err
		}
		if !slices.Equal(gone[a.ID], []string{b.ID}) {
			t.Errorf("SetOrigins gone = %v", gone)
		}
		from, err := tx.Referrers(c.ID, EdgeOrigin, []string{b.ID, r.ID})
		if err != nil {
			return err
		}
		if len(from[b.ID]) != 0 || !slices.Equal(from[r.ID], []string{a.ID}) {
			t.Errorf("origin referrers = %v", from)
		}
		h, err := tx.Holding([]string{a.ID, b.ID})
		if err != nil {
			return err
		}
		if len(h[a.ID]) != 2 || len(h[b.ID]) != 1 {
			t.Errorf("Holding = %v", h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	graphTablesAgree(t, s)
}

// TestHidingMovesNewestDateAdded: conditional polling rests on
// NewestDateAdded, so hiding an object (no new row) must move it, or a
// reader would get 304 for a listing that changed.
func TestHidingMovesNewestDateAdded(t *testing.T) { eachBackend(t, testHidingMovesNewestDateAdded) }

func testHidingMovesNewestDateAdded(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	o := obj("indicator", 1, t0, t0, TLPGreen, "a")
	put(t, s, c.ID, o, obj("indicator", 2, t0, t0, TLPGreen, "b"))
	before, err := s.NewestDateAdded(ctx, c.ID, TLPGreen)
	if err != nil {
		t.Fatal(err)
	}
	setVis(t, s, c.ID, o.ID, Blocked, true)
	after, err := s.NewestDateAdded(ctx, c.ID, TLPGreen)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("NewestDateAdded did not move when an object was hidden: %d then %d", before, after)
	}
}

// TestTighterVersionMovesNewestDateAdded: a new version marked above a
// reader's cap hides the object from that reader (its rows take the new
// rank) without a row the reader can see, so the collection's change mark
// must move, or the reader's conditional poll would be answered 304 for a
// listing that lost an object.
func TestTighterVersionMovesNewestDateAdded(t *testing.T) {
	eachBackend(t, testTighterVersionMovesNewestDateAdded)
}

func testTighterVersionMovesNewestDateAdded(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	put(t, s, c.ID, obj("indicator", 1, t0, t0, TLPGreen, "a"), obj("indicator", 2, t0, t0, TLPGreen, "b"))
	before, err := s.NewestDateAdded(ctx, c.ID, TLPGreen)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, c.ID, obj("indicator", 1, t0, t0.Add(time.Hour), TLPRed, "a, now red"))
	after, err := s.NewestDateAdded(ctx, c.ID, TLPGreen)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all(t, s.Objects, Query{CollectionID: c.ID, MaxTLP: TLPGreen}, 10)); n != 1 {
		t.Fatalf("a green reader sees %d objects after one turned red, want 1", n)
	}
	if after <= before {
		t.Errorf("NewestDateAdded for a green reader did not move when an object turned red: %d then %d", before, after)
	}
}

// TestPutReportsWrittenIDs: the sync settles only what a Put wrote.
func TestPutReportsWrittenIDs(t *testing.T) { eachBackend(t, testPutReportsWrittenIDs) }

func testPutReportsWrittenIDs(t *testing.T, be backend) {
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	a, b := obj("indicator", 1, t0, t0, 0, "a"), obj("indicator", 2, t0, t0, 0, "b")
	put(t, s, c.ID, a)
	res := put(t, s, c.ID, a, b, obj("indicator", 1, t0, t0.Add(time.Hour), 0, "a2"))
	if !slices.Equal(res.Written, []string{b.ID, a.ID}) {
		t.Errorf("Written = %v, want [%s %s]", res.Written, b.ID, a.ID)
	}
}

// TestCurrentAtKeepsOnlyCurrentVersions: the bootstrap view leaves out
// revoked versions and those past their valid_until, in every mode.
func TestCurrentAtKeepsOnlyCurrentVersions(t *testing.T) {
	eachBackend(t, testCurrentAtKeepsOnlyCurrentVersions)
}

func testCurrentAtKeepsOnlyCurrentVersions(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	live := obj("indicator", 1, t0, t0, 0, "live")
	expired := obj("indicator", 2, t0, t0, 0, "expired")
	expired.ValidUntil = t0.Add(time.Hour)
	later := obj("indicator", 3, t0, t0, 0, "later")
	later.ValidUntil = t0.Add(48 * time.Hour)
	revoked := obj("indicator", 4, t0, t0, 0, "revoked")
	revoked.Revoked = true
	put(t, s, c.ID, live, expired, later, revoked)
	now := t0.Add(24 * time.Hour).UnixMicro()
	for name, list := range map[string]func(context.Context, Query) (Page, error){"objects": s.Objects, "manifest": s.Manifest} {
		var got []string
		for _, it := range all(t, list, Query{CollectionID: c.ID, MaxTLP: TLPRed, CurrentAt: now}, 10) {
			got = append(got, it.ID)
		}
		if want := []string{live.ID, later.ID}; !slices.Equal(got, want) {
			t.Errorf("%s, current only: %v, want %v", name, got, want)
		}
		if n := len(all(t, list, Query{CollectionID: c.ID, MaxTLP: TLPRed}, 10)); n != 4 {
			t.Errorf("%s without CurrentAt: %d objects, want 4", name, n)
		}
	}
	_ = ctx
}
