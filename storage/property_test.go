package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

// model is a brute-force reference of the store: it keeps every membership
// row in a slice and answers queries by scanning all of them.
type model struct {
	next int64 // next date_added (the test clock never moves)
	rows []mrow
}

type mrow struct {
	coll, id, typ, spec string
	da, ver             int64
	versioned           bool
	tlp                 int
	hash                [16]byte
	json                []byte
}

func (m *model) group(coll, id string) []*mrow {
	var g []*mrow
	for i := range m.rows {
		if r := &m.rows[i]; r.coll == coll && r.id == id {
			g = append(g, r)
		}
	}
	return g
}

// flags computes latest/first from scratch: latest is the greatest
// (ver, date_added), first the smallest.
func (m *model) flags(r *mrow) (latest, first bool) {
	latest, first = true, true
	for _, o := range m.group(r.coll, r.id) {
		if o.ver > r.ver || (o.ver == r.ver && o.da > r.da) {
			latest = false
		}
		if o.ver < r.ver || (o.ver == r.ver && o.da < r.da) {
			first = false
		}
	}
	return latest, first
}

func (m *model) latest(coll, id string) *mrow {
	for _, r := range m.group(coll, id) {
		if l, _ := m.flags(r); l {
			return r
		}
	}
	return nil
}

func (m *model) put(coll string, o Object) (res PutResult) {
	versioned := !o.Modified.IsZero()
	mod := toMicro(o.Modified)
	if l := m.latest(coll, o.ID); l != nil {
		if l.hash == o.Hash {
			res.Unchanged++
			return
		}
		if versioned && mod <= l.ver {
			for _, r := range m.group(coll, o.ID) {
				if r.versioned && r.ver == mod {
					res.Unchanged++
					return
				}
			}
		}
	}
	if !versioned && m.latest(coll, o.ID) != nil {
		m.remove(coll, o.ID) // an unversioned object is replaced in place
	}
	da := m.next
	m.next++
	ver := mod
	if !versioned {
		if ver = toMicro(o.Created); ver == 0 {
			ver = da
		}
	}
	m.rows = append(m.rows, mrow{coll: coll, id: o.ID, typ: o.Type, spec: o.SpecVersion, da: da, ver: ver,
		versioned: versioned, tlp: o.TLP, hash: o.Hash, json: o.JSON})
	res.New++
	return
}

func (m *model) remove(coll, id string) {
	kept := m.rows[:0]
	for _, r := range m.rows {
		if r.coll != coll || r.id != id {
			kept = append(kept, r)
		}
	}
	m.rows = kept
}

func (m *model) prune(coll string, before int64) int {
	var kept []mrow
	for i := range m.rows {
		r := &m.rows[i]
		if latest, _ := m.flags(r); r.coll == coll && r.da < before && !latest {
			continue
		}
		kept = append(kept, *r)
	}
	n := len(m.rows) - len(kept)
	m.rows = kept
	return n
}

func in[T comparable](xs []T, x T) bool {
	if len(xs) == 0 {
		return true
	}
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func (m *model) query(coll string, q Query) []mrow {
	var out []mrow
	for i := range m.rows {
		r := &m.rows[i]
		if r.coll != coll || r.da <= q.AddedAfter || r.tlp > q.MaxTLP || m.latest(r.coll, r.id).tlp > q.MaxTLP ||
			!in(q.IDs, r.id) || !in(q.Types, r.typ) || !in(q.SpecVersions, r.spec) {
			continue
		}
		latest, first := m.flags(r)
		vf := q.Versions
		ok := vf.All || (vf.Last && latest) || (vf.First && first) ||
			(!vf.Last && !vf.First && len(vf.At) == 0 && latest)
		for _, t := range vf.At {
			ok = ok || t.UnixMicro() == r.ver
		}
		if ok {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].da < out[j].da })
	return out
}

// TestQueriesMatchReferenceModel applies random batches (new, changed,
// re-sent, bumped, older, removed versions; several TLPs, types and spec
// versions; two collections sharing ids) to the store and to the model, then
// compares random filter combinations, paged at random sizes, with the
// brute-force answer (taxii21.md D-3, D-5, D-7).
func TestQueriesMatchReferenceModel(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		seeds := 6
		if testing.Short() {
			seeds = 2
		}
		for seed := 0; seed < seeds; seed++ {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { checkModel(t, b, uint64(seed)) })
		}
	})
}

func checkModel(t *testing.T, b backend, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 42))
	s, _ := b.open(t, WithNow(func() time.Time { return t0 }))
	m := &model{next: t0.UnixMicro()}
	colls := []Collection{ensure(t, s, "a"), ensure(t, s, "b")}
	types := []string{"indicator", "malware", "ipv4-addr", "marking-definition"}
	instants := []time.Time{t0, t0.Add(time.Second), t0.Add(time.Minute), t0.Add(time.Hour), t0.Add(time.Hour + time.Millisecond)}
	gen := func() Object {
		n := rng.IntN(25)
		typ := types[n%len(types)]
		var created, modified time.Time
		if typ == "indicator" || typ == "malware" {
			created = t0
			modified = instants[rng.IntN(len(instants))]
		} else if n%3 == 0 {
			created = t0.Add(-time.Hour)
		}
		o := obj(typ, n, created, modified, rng.IntN(6), fmt.Sprint("c", rng.IntN(3)))
		if rng.IntN(8) == 0 {
			o.SpecVersion = "2.0"
		}
		return o
	}
	for batch := 0; batch < 40; batch++ {
		coll := colls[rng.IntN(2)]
		if rng.IntN(12) == 0 {
			cut := t0.UnixMicro() + int64(rng.IntN(int(m.next-t0.UnixMicro())+1))
			var got int
			s.Update(ctx, func(tx *Tx) (err error) { got, err = tx.PruneVersions(coll.ID, cut); return err })
			want := m.prune(coll.ID, cut)
			if want > 0 {
				m.next++ // the collection's change tick (Tx.changed)
			}
			if got != want {
				t.Fatalf("batch %d: PruneVersions = %d, model says %d", batch, got, want)
			}
			continue
		}
		if rng.IntN(10) == 0 {
			id := gen().ID
			s.Update(ctx, func(tx *Tx) error { _, err := tx.Remove(coll.ID, id, TLPRed); return err })
			if len(m.group(coll.ID, id)) > 0 {
				m.next++ // the collection's change tick (Tx.changed)
			}
			m.remove(coll.ID, id)
			continue
		}
		objs := make([]Object, 1+rng.IntN(8))
		var want PutResult
		for i := range objs {
			objs[i] = gen()
			r := m.put(coll.ID, objs[i])
			want.New += r.New
			want.Unchanged += r.Unchanged
		}
		if got := put(t, s, coll.ID, objs...); !sameCounts(got, want) {
			t.Fatalf("batch %d: Put = %+v, model says %+v", batch, got, want)
		}
	}

	pick := func(all []string) []string {
		var out []string
		for _, x := range all {
			if rng.IntN(3) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	var allIDs []string
	for n := 0; n < 27; n++ { // two ids that never exist
		allIDs = append(allIDs, obj(types[n%len(types)], n, time.Time{}, time.Time{}, 0, "").ID)
	}
	for qi := 0; qi < 150; qi++ {
		coll := colls[rng.IntN(2)]
		q := Query{CollectionID: coll.ID, MaxTLP: rng.IntN(6)}
		if rng.IntN(3) == 0 {
			q.AddedAfter = m.next - 1 - int64(rng.IntN(int(m.next-t0.UnixMicro())+1))
		}
		if rng.IntN(3) == 0 {
			q.IDs = pick(allIDs)
		}
		if rng.IntN(3) == 0 {
			q.Types = pick(append(types, "campaign"))
		}
		if rng.IntN(4) == 0 {
			q.SpecVersions = pick([]string{"2.1", "2.0"})
		}
		switch rng.IntN(5) {
		case 0:
			q.Versions.All = true
		case 1:
			q.Versions.First = true
		case 2:
			q.Versions.Last = rng.IntN(2) == 0
			q.Versions.At = []time.Time{instants[rng.IntN(len(instants))], t0.Add(-time.Hour)}
		case 3:
			q.Versions.Last = true
		}
		want := m.query(coll.ID, q)
		limit := 1 + rng.IntN(6)
		for mode, list := range []func(context.Context, Query) (Page, error){s.Objects, s.Manifest} {
			got := all(t, list, q, limit)
			if len(got) != len(want) {
				t.Fatalf("query %d %+v mode %d: %d items, model says %d", qi, q, mode, len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.ID != w.id || g.DateAdded != w.da || g.Type != w.typ || g.SpecVersion != w.spec ||
					(w.versioned && g.Modified.UnixMicro() != w.ver) || (!w.versioned && !g.Modified.IsZero()) {
					t.Fatalf("query %d %+v item %d: got %+v, model %+v", qi, q, i, g, w)
				}
				if mode == 0 && !bytes.Equal(g.JSON, w.json) {
					t.Fatalf("query %d item %d: JSON %s, model %s", qi, i, g.JSON, w.json)
				}
			}
		}
		if len(q.IDs) > 0 {
			vq := q
			vq.Versions = VersionFilter{All: true}
			vq.IDs = q.IDs[:1]
			want := m.query(coll.ID, vq)
			got := all(t, s.Versions, q, limit)
			if len(got) != len(want) {
				t.Fatalf("versions query %d: %d items, model says %d", qi, len(got), len(want))
			}
		}
	}
}

// TestKeysetPagingIsLosslessUnderConcurrentWrites crawls a collection by
// keyset while another goroutine keeps adding objects: every object present
// before the crawl started is returned exactly once, in strictly increasing
// date_added order (taxii21.md D-7, D-9).
func TestKeysetPagingIsLosslessUnderConcurrentWrites(t *testing.T) {
	eachBackend(t, testKeysetPagingIsLosslessUnderConcurrentWrites)
}

func testKeysetPagingIsLosslessUnderConcurrentWrites(t *testing.T, b backend) {
	ctx := context.Background()
	s, _ := b.open(t)
	c := ensure(t, s, "c")
	var batch []Object
	for i := 0; i < 500; i++ {
		batch = append(batch, obj("indicator", i, t0, t0, 0, "x"))
	}
	put(t, s, c.ID, batch...)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 500; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// New objects and new versions of old ones.
			objs := []Object{obj("indicator", i, t0, t0, 0, "x"), obj("indicator", i%500, t0, t0.Add(time.Duration(i)*time.Second), 0, fmt.Sprint(i))}
			err := s.Update(ctx, func(tx *Tx) error { _, err := tx.Put(c.ID, objs); return err })
			if err != nil {
				t.Errorf("concurrent put: %v", err)
				return
			}
		}
	}()
	for _, mode := range []string{"next", "added_after"} {
		seen := map[int64]bool{}
		ids := map[string]bool{}
		q := Query{CollectionID: c.ID, Versions: VersionFilter{All: true}, MaxTLP: 5, Limit: 7}
		last := int64(0)
		for {
			p, err := s.Manifest(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				if seen[it.DateAdded] || it.DateAdded <= last {
					t.Fatalf("%s: date_added %d repeated or out of order", mode, it.DateAdded)
				}
				seen[it.DateAdded] = true
				last = it.DateAdded
				ids[it.ID] = true
			}
			if !p.More || len(seen) > 3000 {
				break
			}
			if mode == "next" {
				k := p.LastKey()
				q.After = &k
			} else {
				q.AddedAfter = p.LastDateAdded()
			}
		}
		for _, o := range batch {
			if !ids[o.ID] {
				t.Errorf("%s: object %s lost", mode, o.ID)
			}
		}
	}
	close(stop)
	wg.Wait()
}
