package storage

import "slices"

// freshGraph answers "who references X" (Tx.Referrers) for the object keys
// this transaction created. No row written before the transaction can name
// such a key, so its reverse edges are exactly those the transaction wrote
// itself, and each write of the edges table (putBatch.edges, setEdges,
// dropKey) records them here as well. Most of a sync's "who references X"
// questions are about objects it has just written for the first time;
// they are answered without a query. Keys the transaction did not create
// are read from the edges table as before.
type freshGraph struct {
	keys  map[int64]bool
	rev   map[revKey][]int64 // sources, without duplicates
	names map[int64]string   // STIX ids of keys, where known
}

type revKey struct {
	cid  int64
	kind int
	dst  int64
}

func (g *freshGraph) init() {
	if g.keys == nil {
		g.keys, g.rev, g.names = map[int64]bool{}, map[revKey][]int64{}, map[int64]string{}
	}
}

// created records a key this transaction gave to id.
func (g *freshGraph) created(oid int64, id string) {
	g.init()
	g.keys[oid] = true
	g.names[oid] = id
}

// name records the STIX id of a key that is the source of edges written.
func (g *freshGraph) name(oid int64, id string) {
	g.init()
	g.names[oid] = id
}

// referrers returns, for each created key of keys, the sources of its
// kind-edges in the collection; the other keys are returned in ask.
func (g *freshGraph) referrers(cid int64, kind int, keys []int64) (srcs map[int64][]int64, ask []int64) {
	srcs = map[int64][]int64{}
	for _, k := range keys {
		if !g.keys[k] {
			ask = append(ask, k)
		} else if s := g.rev[revKey{cid, kind, k}]; len(s) > 0 {
			srcs[k] = s
		}
	}
	return srcs, ask
}

// add records the edge src → dst when dst is a created key.
func (g *freshGraph) add(cid int64, kind int, dst, src int64) {
	if !g.keys[dst] {
		return
	}
	k := revKey{cid, kind, dst}
	if !slices.Contains(g.rev[k], src) {
		g.rev[k] = append(g.rev[k], src)
	}
}

// remove records that the edge src → dst is gone.
func (g *freshGraph) remove(cid int64, kind int, dst, src int64) {
	if !g.keys[dst] {
		return
	}
	k := revKey{cid, kind, dst}
	g.rev[k] = slices.DeleteFunc(g.rev[k], func(s int64) bool { return s == src })
	if len(g.rev[k]) == 0 {
		delete(g.rev, k)
	}
}

// drop forgets a key that no longer names an object (dropKey removed every
// edge to it); if the key is given out again, created records it anew.
func (g *freshGraph) drop(oid int64) {
	if !g.keys[oid] {
		return
	}
	delete(g.keys, oid)
	delete(g.names, oid)
	for k := range g.rev {
		if k.dst == oid {
			delete(g.rev, k)
		}
	}
}
