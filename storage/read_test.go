package storage

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestListWithNewest checks that a page read WithNewest reports exactly
// what NewestDateAdded says for the same collection and cap, for readers
// with and without a cap that hides the newest row, and after the
// collection changed without a new row (an object withdrawn).
func TestListWithNewest(t *testing.T) { eachBackend(t, testListWithNewest) }

func testListWithNewest(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s, _ := be.open(t, WithNow(clk.now))
	c := ensure(t, s, "c")
	a := obj("indicator", 1, t0, t0, TLPGreen, "a")
	b := obj("indicator", 2, t0, t0, TLPGreen, "b")
	red := obj("indicator", 3, t0, t0, TLPRed, "red")
	for _, o := range []Object{a, b, red} {
		clk.t = clk.t.Add(time.Second)
		put(t, s, c.ID, o)
	}
	check := func(when string, maxTLP int, id string, wantItems int) {
		t.Helper()
		q := Query{CollectionID: c.ID, IDs: []string{id}, MaxTLP: maxTLP, Limit: 10, WithNewest: true}
		p, err := s.Objects(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != wantItems {
			t.Fatalf("%s: cap %d, %s: %d items, want %d", when, maxTLP, id, len(p.Items), wantItems)
		}
		want, err := s.NewestDateAdded(ctx, c.ID, maxTLP)
		if err != nil {
			t.Fatal(err)
		}
		if wantItems == 0 {
			want = 0
		}
		if p.Newest != want {
			t.Errorf("%s: cap %d, %s: Newest = %d, want %d", when, maxTLP, id, p.Newest, want)
		}
		if wantItems > 0 && (p.Items[0].ID != id || len(p.Items[0].JSON) == 0) {
			t.Errorf("%s: item %+v, want %s with its JSON", when, p.Items[0], id)
		}
	}
	check("start", TLPRed, a.ID, 1)
	check("start", TLPGreen, a.ID, 1) // the red row is newer than any green one
	check("start", TLPGreen, red.ID, 0)
	clk.t = clk.t.Add(time.Second)
	setVis(t, s, c.ID, b.ID, Withdrawn, true)
	check("after withdrawing b", TLPGreen, a.ID, 1)
	check("after withdrawing b", TLPGreen, b.ID, 0)
	// Without WithNewest nothing is read for it.
	p, err := s.Objects(ctx, Query{CollectionID: c.ID, IDs: []string{a.ID}, MaxTLP: TLPRed, Limit: 10})
	if err != nil || len(p.Items) != 1 || p.Newest != 0 {
		t.Errorf("without WithNewest: %d items, Newest %d, %v", len(p.Items), p.Newest, err)
	}
}

// TestSingleIDListing checks the single-id statement (no objects join) on
// an object with several versions: every mode names the object, in
// date_added order, and match[version] selects as in a crawl.
func TestSingleIDListing(t *testing.T) { eachBackend(t, testSingleIDListing) }

func testSingleIDListing(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s, _ := be.open(t, WithNow(clk.now))
	c := ensure(t, s, "c")
	var vs []Object
	for i := 0; i < 3; i++ {
		clk.t = clk.t.Add(time.Second)
		o := obj("indicator", 1, t0, t0.Add(time.Duration(i)*time.Hour), TLPGreen, string(rune('a'+i)))
		vs = append(vs, o)
		put(t, s, c.ID, o)
	}
	put(t, s, c.ID, obj("indicator", 2, t0, t0, TLPGreen, "other"))
	for _, tc := range []struct {
		name string
		vf   VersionFilter
		want []int // indexes into vs
	}{
		{"last", VersionFilter{}, []int{2}},
		{"first", VersionFilter{First: true}, []int{0}},
		{"all", VersionFilter{All: true}, []int{0, 1, 2}},
		{"at", VersionFilter{At: []time.Time{vs[1].Modified}}, []int{1}},
	} {
		for _, list := range []func(context.Context, Query) (Page, error){s.Objects, s.Manifest} {
			p, err := list(ctx, Query{CollectionID: c.ID, IDs: []string{vs[0].ID}, Versions: tc.vf, MaxTLP: TLPRed, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) != len(tc.want) {
				t.Fatalf("%s: %d items, want %d", tc.name, len(p.Items), len(tc.want))
			}
			for i, it := range p.Items {
				v := vs[tc.want[i]]
				if it.ID != v.ID || !it.Modified.Equal(v.Modified) || it.Type != "indicator" {
					t.Errorf("%s: item %d = %s %s %s, want %s %s", tc.name, i, it.ID, it.Type, it.Modified, v.ID, v.Modified)
				}
				if it.JSON != nil && string(it.JSON) != string(v.JSON) {
					t.Errorf("%s: item %d JSON %s, want %s", tc.name, i, it.JSON, v.JSON)
				}
			}
		}
	}
	p, err := s.Objects(ctx, Query{CollectionID: c.ID, IDs: []string{vs[0].ID}, Versions: VersionFilter{All: true}, MaxTLP: TLPRed, Limit: 2})
	if err != nil || len(p.Items) != 2 || !p.More {
		t.Fatalf("limit 2 of 3 versions: %d items, more %v, %v", len(p.Items), p.More, err)
	}
	k := p.LastKey()
	p, err = s.Objects(ctx, Query{CollectionID: c.ID, IDs: []string{vs[0].ID}, Versions: VersionFilter{All: true}, MaxTLP: TLPRed, Limit: 2, After: &k})
	if err != nil || len(p.Items) != 1 || p.More || !p.Items[0].Modified.Equal(vs[2].Modified) {
		t.Fatalf("after the cursor: %+v, %v", p, err)
	}
}

// TestListStmtCacheBounded checks that listings keep working, each with a
// statement of its own, once the statement cache is full, and that the
// cache does not grow past its bound.
func TestListStmtCacheBounded(t *testing.T) { eachBackend(t, testListStmtCacheBounded) }

func testListStmtCacheBounded(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := be.open(t)
	c := ensure(t, s, "c")
	a := obj("indicator", 1, t0, t0, TLPGreen, "a")
	put(t, s, c.ID, a)
	if _, err := s.Objects(ctx, Query{CollectionID: c.ID, MaxTLP: TLPRed, Limit: 10}); err != nil {
		t.Fatal(err)
	}
	s.smu.Lock()
	var any1 *sql.Stmt
	for _, st := range s.lstmts {
		any1 = st
	}
	for i := len(s.lstmts); i < maxListStmts; i++ {
		s.lstmts[1<<40+uint64(i)] = any1
	}
	s.smu.Unlock()
	for _, limit := range []int{1, 100, 1000} {
		for _, q := range []Query{
			{CollectionID: c.ID, MaxTLP: TLPRed, Limit: limit, Types: []string{"indicator"}},
			{CollectionID: c.ID, MaxTLP: TLPRed, Limit: limit, IDs: []string{a.ID}, WithNewest: true},
		} {
			p, err := s.Objects(ctx, q)
			if err != nil || len(p.Items) != 1 || string(p.Items[0].JSON) != string(a.JSON) {
				t.Fatalf("listing with a full cache: %+v, %v", p, err)
			}
		}
	}
	s.smu.Lock()
	n := len(s.lstmts)
	s.smu.Unlock()
	if n != maxListStmts {
		t.Errorf("%d cached statements, want the bound %d", n, maxListStmts)
	}
}

// TestJSONOnly checks that a JSONOnly listing returns the same bytes and
// positions as a full one, pages included, and nothing else.
func TestJSONOnly(t *testing.T) { eachBackend(t, testJSONOnly) }

func testJSONOnly(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &clock{t: t0}
	s, _ := be.open(t, WithNow(clk.now))
	c := ensure(t, s, "c")
	for i := 0; i < 7; i++ {
		clk.t = clk.t.Add(time.Second)
		put(t, s, c.ID, obj("indicator", i, t0, t0.Add(time.Duration(i)*time.Minute), TLPGreen, "x"))
	}
	walk := func(q Query) []Item {
		var all []Item
		for {
			p, err := s.Objects(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Items...)
			if !p.More {
				return all
			}
			k := p.LastKey()
			q.After = &k
		}
	}
	q := Query{CollectionID: c.ID, MaxTLP: TLPRed, Limit: 3}
	full := walk(q)
	q.JSONOnly = true
	lean := walk(q)
	if len(full) != 7 || len(lean) != len(full) {
		t.Fatalf("%d full items, %d lean ones", len(full), len(lean))
	}
	for i := range full {
		f, l := full[i], lean[i]
		if string(f.JSON) != string(l.JSON) || f.DateAdded != l.DateAdded || f.Key != l.Key {
			t.Errorf("item %d: lean %s %d %v, full %s %d %v", i, l.JSON, l.DateAdded, l.Key, f.JSON, f.DateAdded, f.Key)
		}
		if l.ID != "" || l.Type != "" || !l.Modified.IsZero() {
			t.Errorf("item %d: lean item has %q %q %v", i, l.ID, l.Type, l.Modified)
		}
	}
	one := Query{CollectionID: c.ID, MaxTLP: TLPRed, Limit: 3, IDs: []string{full[2].ID}, JSONOnly: true}
	if p, err := s.Objects(ctx, one); err != nil || len(p.Items) != 1 || p.Items[0].ID != full[2].ID || string(p.Items[0].JSON) != string(full[2].JSON) {
		t.Errorf("lean single id: %+v, %v", p, err)
	}
}
