package tcsync

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// The publication rule (DESIGN.md §10), in STIX terms. An object is served
// in a collection to a reader only if the reader may see it and every
// object it references (source_ref, target_ref, object_refs, sample_refs,
// …) is served in the same collection to the same reader. Marking
// definitions, the bridge's and the owners' identities are written into a
// collection ahead of the objects that use them, so only content references
// (and a relationship's creator, which may be another owner) are tracked.
// Each kind keeps the rule its own way:
//
//   - relationship: the mapper marks it like its strictest end; it is
//     blocked while an end or its creator is not published in the
//     collection, or while an end is marked stricter than it (until either
//     item is mapped again with the new label); it is revoked when an end
//     is revoked (deleted in ThreatConnect) or when the item that asserted
//     it no longer does (the association was removed). One that names
//     another owner (its creator or an SDO end: stixmap.Object.RefOwners)
//     is not written into an owner's collection at all, where it could
//     only ever be blocked, nor into the asserting item's origins there
//     (a collection's origins list what the item derives in it); it lives
//     in the filter collections holding both ends, whose origins list it,
//     so removing the association revokes it where it is served.
//   - container (report, grouping, …): in its owner's collection, its
//     object_refs list the members (Object.Wants) published there, not
//     revoked and marked at most like the container — recomputed, as a new
//     version, whenever a member comes or goes; with none left it lists its
//     creator, as the mapping does for an empty container. Observables the
//     container derives itself (an Email's addresses) are judged by
//     derivation, not by a marking that may still be settling. In any other
//     collection it is blocked while a reference does not resolve there.
//   - observable (SCO): derived from the items whose objects name it (its
//     origins). It is marked like the least restrictive live origin in the
//     collection (that item discloses the value at that level), remarked in
//     place when that changes, and withdrawn when no live origin is left.
//     It carries only its TLP marking, so its content is a function of its
//     value and level.
//   - everything else: blocked while a reference does not resolve.
//
// Because every reference of a served object is served with a marking no
// stricter than the referrer's, a reader's TLP cap needs no graph walk:
// storage serves an object to a reader whose cap is at least its rank.
// Withdrawn objects (out of a filter) are never revoked for it: revocation
// travels to every collection, so it is kept for what ThreatConnect
// deleted or took out of the sync's scope. A version never follows a
// revoked one (keepRevoked).
//
// Cost: a batch reads the store's state of what it queued in one query
// per collection, writes, then settles in rounds; each round reads the
// references of what it did not write and the referrers of what changed,
// one query each per collection. Objects a batch wrote are judged from the
// batch's own copy.

// derivedAt is the time given to versions the rule derives (a raised
// marking, a container's new member list): none, so that their modified is
// the previous one plus a millisecond and a sync interrupted at any point
// converges to the same store as an uninterrupted one.
var derivedAt time.Time

// prepare rewrites the containers and observables queued in this batch
// before they are compared with the store, so that a resync of an unchanged
// item writes nothing: containers list the members their owner's
// collection publishes, observables take the marking of their least
// restrictive live origin.
func (b *batch) prepare() error {
	b.indexQueued()
	if !b.queuesContainer() { // a page of indicators: nothing below applies
		return b.prepareObservables()
	}
	queued := map[string]storage.Object{}
	in := map[string]map[string]storage.Object{} // collection → id → version queued there
	for _, col := range b.order {
		in[col] = map[string]storage.Object{}
		for _, o := range b.puts[col] {
			queued[o.ID] = o
			in[col][o.ID] = o
		}
	}
	// Containers mapped in this batch, and what their owner collection
	// holds of their would-be members.
	containers := func(yield func(id string, o storage.Object) bool) {
		for id, o := range queued {
			if !o.Revoked && stixmap.IsContainer(o.Type) && b.home[id] != "" && len(o.Refs) > 0 {
				if !yield(id, o) {
					return
				}
			}
		}
	}
	need := map[string][]string{}
	for id, o := range containers {
		need[b.home[id]] = append(append(need[b.home[id]], o.Refs...), o.Wants...)
	}
	stored := map[string]map[string]storage.Meta{}
	for col, ids := range need {
		m, err := b.tx.Meta(col, ids)
		if err != nil {
			return err
		}
		stored[col] = m
	}
	for id, o := range containers {
		col := b.home[id]
		// A reference resolves as the store has it, updated by this
		// batch's version of it; one the store does not hold yet resolves
		// when this batch brings it.
		look := func(r string) (level int, revoked, ok bool) {
			if w, has := b.want[col][r]; has && !w {
				return 0, false, false
			}
			m, stored := stored[col][r]
			q, queued := in[col][r]
			switch {
			case stored && m.Vis != storage.Published:
				return 0, false, false
			case queued:
				return q.TLP, q.Revoked, true
			case stored:
				return m.TLP, m.Revoked, true
			}
			return 0, false, false
		}
		wants := o.Wants
		if wants == nil {
			wants = o.Refs
		}
		var keep []string
		for _, r := range wants {
			// An observable the container derives itself (an Email's
			// addresses) discloses nothing the container does not: its
			// marking settles at most at the container's.
			own := slices.Contains(b.origins[col][id], r) && stixmap.IsObservable(typeOf(r))
			if l, rev, ok := look(r); ok && !rev && (l <= o.TLP || own) {
				keep = append(keep, r)
			}
		}
		if sameMembers(keep, o.Refs, wants) {
			o.Wants = wants
			b.replace(id, o)
			continue
		}
		r, err := stixmap.WithObjectRefs(fromStorageObject(o), keep, derivedAt)
		if err != nil {
			return err
		}
		nobj := toStorage(r)
		nobj.TCID, nobj.Wants = o.TCID, wants
		b.replace(id, nobj)
	}
	return b.prepareObservables()
}

// queuesContainer tells whether a container is queued in any collection.
func (b *batch) queuesContainer() bool {
	for _, col := range b.order {
		for _, o := range b.puts[col] {
			if stixmap.IsContainer(o.Type) {
				return true
			}
		}
	}
	return false
}

// keepRevoked reads what the store holds of every id the batch queued or
// routed in cols (b.before) and drops every queued version there that would
// follow a revoked one: STIX revocation is permanent (stix-mapping.md §3.3),
// whichever item asserts the object again.
func (b *batch) keepRevoked(cols []string) error {
	for _, col := range cols {
		ids := make([]string, 0, len(b.puts[col])+len(b.want[col]))
		for _, o := range b.puts[col] {
			ids = append(ids, o.ID)
		}
		for id := range b.want[col] {
			ids = append(ids, id)
		}
		metas, err := b.tx.Meta(col, ids)
		if err != nil {
			return err
		}
		b.before[col] = metas
		b.puts[col] = slices.DeleteFunc(b.puts[col], func(o storage.Object) bool {
			return !o.Revoked && !o.Modified.IsZero() && metas[o.ID].Revoked
		})
	}
	return nil
}

// prepareObservables marks each queued observable like the least
// restrictive live item that derives it in its collection, counting the
// items of this batch as they are now.
func (b *batch) prepareObservables() error {
	for _, col := range b.order {
		queued := map[string]storage.Object{}
		var scos []string
		for _, o := range b.puts[col] {
			queued[o.ID] = o
			if stixmap.IsObservable(o.Type) {
				scos = append(scos, o.ID)
			}
		}
		if len(scos) == 0 {
			continue
		}
		stored, err := b.tx.Referrers(col, storage.EdgeOrigin, scos)
		if err != nil {
			return err
		}
		derivedBy := map[string][]string{}
		for item, ds := range b.origins[col] {
			for _, d := range ds {
				derivedBy[d] = append(derivedBy[d], item)
			}
		}
		var lookup []string
		cands := map[string][]string{}
		for _, sco := range scos {
			for _, it := range stored[sco] {
				if _, inBatch := b.origins[col][it]; !inBatch {
					cands[sco] = append(cands[sco], it)
				}
			}
			cands[sco] = append(cands[sco], derivedBy[sco]...)
			for _, it := range cands[sco] {
				if _, ok := queued[it]; !ok {
					lookup = append(lookup, it)
				}
			}
		}
		metas, err := b.tx.Meta(col, lookup)
		if err != nil {
			return err
		}
		for _, sco := range scos {
			lowest, live, outside := tlp.Red, false, false
			for _, it := range cands[sco] {
				if q, ok := queued[it]; ok {
					if w, has := b.want[col][it]; (has && !w) || q.Revoked {
						continue
					}
					live, lowest = true, min(lowest, tlp.Level(q.TLP))
				} else if m, ok := metas[it]; ok && m.Vis != storage.Withdrawn && !m.Revoked {
					live, lowest, outside = true, min(lowest, tlp.Level(m.TLP)), true
				}
			}
			o := queued[sco]
			// Two items can name one observable with different content
			// beyond its id properties (an email-message's date or
			// recipients): while an item outside this batch still names
			// the stored content, it stays, so the object does not flip
			// with the order items are read in.
			if stored, ok := b.before[col][sco]; ok && outside && stored.Hash != o.Hash {
				v, held, err := b.tx.Latest(col, sco)
				if err != nil {
					return err
				}
				if held {
					o = toStorage(fromStorage(v))
					o.TLP = v.TLP
				}
			}
			if live && int(b.w.m.Emitted(lowest)) != o.TLP {
				r, err := b.w.m.Remark(fromStorageObject(o), lowest, derivedAt)
				if err != nil {
					return err
				}
				o = toStorage(r)
			}
			for _, i := range b.at[col][sco] {
				b.puts[col][i] = o
			}
		}
	}
	return nil
}

func fromStorageObject(o storage.Object) stixmap.Object {
	return stixmap.Object{ID: o.ID, Type: o.Type, Created: o.Created, Modified: o.Modified, TLP: tlp.Level(o.TLP),
		Hash: o.Hash, JSON: o.JSON, TCID: o.TCID}
}

// indexQueued records where each id sits in the queues (b.at), for
// replace; valid until the queues change length.
func (b *batch) indexQueued() {
	b.at = make(map[string]map[string][]int, len(b.order))
	for _, col := range b.order {
		at := make(map[string][]int, len(b.puts[col]))
		for i, o := range b.puts[col] {
			at[o.ID] = append(at[o.ID], i)
		}
		b.at[col] = at
	}
}

// replace swaps the queued version of id for o in every collection.
func (b *batch) replace(id string, o storage.Object) {
	for _, col := range b.order {
		for _, i := range b.at[col][id] {
			b.puts[col][i] = o
		}
	}
}

// settle makes the publication rule hold for everything this batch
// touched, after it was written: origins first (what each item derives),
// then rounds of visibility decisions that spread to the referrers of
// every object that changed, until nothing changes.
func (b *batch) settle() error {
	if err := b.settleOrigins(); err != nil {
		return err
	}
	if err := b.write(); err != nil {
		return err
	}
	for round := 0; len(b.touched) > 0; round++ {
		if round == 64 {
			return fmt.Errorf("publication rule: no fixed point after %d rounds", round)
		}
		cur := b.touched
		b.touched = map[string]map[string]bool{}
		for _, col := range slices.Sorted(maps.Keys(cur)) {
			if err := b.settleCollection(col, cur[col]); err != nil {
				return err
			}
		}
		if err := b.write(); err != nil {
			return err
		}
	}
	return nil
}

// settleOrigins records what each item of the batch now derives in each
// collection. A relationship the item no longer asserts means that
// ThreatConnect no longer holds the association: it is revoked. Everything
// whose origins changed is settled below.
func (b *batch) settleOrigins() error {
	for _, col := range slices.Sorted(maps.Keys(b.origins)) {
		gone, err := b.tx.SetOrigins(col, b.origins[col])
		if err != nil {
			return err
		}
		for _, p := range slices.Sorted(maps.Keys(gone)) {
			for _, g := range gone[p] {
				b.touch(col, g)
				// Out of this collection (a filter it no longer matches,
				// withdrawn there) is not out of ThreatConnect.
				if isRelationshipID(g) && !slices.Contains(b.asserts[p], g) {
					if err := b.revokeEverywhere(g); err != nil {
						return err
					}
				}
			}
		}
	}
	b.origins = map[string]map[string][]string{}
	b.asserts = map[string][]string{}
	return nil
}

// sameMembers tells whether a container that lists refs already lists
// exactly keep of its wanted members; with none kept, it lists only a
// placeholder (its creator), which is not a wanted member.
func sameMembers(keep, refs, wants []string) bool {
	if len(keep) == 0 {
		for _, r := range refs {
			if slices.Contains(wants, r) {
				return false
			}
		}
		return len(refs) > 0
	}
	return sameSet(keep, refs)
}

// sameSet tells whether a and b hold the same ids.
func sameSet(a, b []string) bool { return slices.Equal(sortedCopy(a), sortedCopy(b)) }

func sortedCopy(v []string) []string {
	c := slices.Clone(v)
	slices.Sort(c)
	return slices.Compact(c)
}

// typeOf is the STIX type of an id.
func typeOf(id string) string {
	t, _, _ := strings.Cut(id, "--")
	return t
}

func isRelationshipID(id string) bool { return len(id) > 14 && id[:14] == "relationship--" }

// settleCollection decides the visibility of ids in one collection.
func (b *batch) settleCollection(col string, set map[string]bool) error {
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	metas, err := b.meta(col, ids)
	if err != nil {
		return err
	}
	// References of what this batch wrote are known; the store is read
	// for the rest.
	var unknown, containers []string
	for _, id := range ids {
		if _, ok := b.known[col][id]; !ok {
			unknown = append(unknown, id)
			if m, ok := metas[id]; ok && stixmap.IsContainer(m.Type) {
				containers = append(containers, id)
			}
		}
	}
	refs, err := b.tx.Targets(col, storage.EdgeRef, unknown)
	if err != nil {
		return err
	}
	wants, err := b.tx.Targets(col, storage.EdgeWant, containers)
	if err != nil {
		return err
	}
	var allContainers []string
	for _, id := range ids {
		if m, ok := metas[id]; ok && stixmap.IsContainer(m.Type) {
			allContainers = append(allContainers, id)
		}
	}
	derived, err := b.tx.Targets(col, storage.EdgeOrigin, allContainers)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if k, ok := b.known[col][id]; ok {
			refs[id], wants[id] = k.Refs, k.Wants
			if stixmap.IsContainer(k.Type) && k.Wants == nil {
				wants[id] = k.Refs
			}
		}
	}
	var scos, more []string
	for _, id := range ids {
		if m, ok := metas[id]; ok && stixmap.IsObservable(m.Type) {
			scos = append(scos, id)
		}
		for _, r := range append(refs[id], wants[id]...) {
			if _, ok := metas[r]; !ok {
				more = append(more, r)
			}
		}
	}
	origins, err := b.tx.Referrers(col, storage.EdgeOrigin, scos)
	if err != nil {
		return err
	}
	for _, s := range scos {
		for _, o := range origins[s] {
			if _, ok := metas[o]; !ok {
				more = append(more, o)
			}
		}
	}
	others, err := b.meta(col, more)
	if err != nil {
		return err
	}
	meta := func(id string) (storage.Meta, bool) {
		if m, ok := metas[id]; ok {
			return m, true
		}
		m, ok := others[id]
		return m, ok
	}
	var spread []string // ids whose change their referrers must see
	visChanged := map[string]bool{}
	setVis := map[string]storage.Visibility{} // decided in this round, written at its end
	for _, id := range ids {
		m, ok := metas[id]
		if !ok {
			continue
		}
		want, hasWant := b.want[col][id]
		if hasWant && !want {
			if m.Vis != storage.Withdrawn {
				setVis[id] = storage.Withdrawn
			}
			continue
		}
		if !hasWant && m.Vis == storage.Withdrawn {
			continue
		}
		desired := storage.Published
		resolves := func(r string) (storage.Meta, bool) {
			rm, ok := meta(r)
			return rm, ok && rm.Vis == storage.Published
		}
		switch {
		case m.Type == "relationship" && !m.Revoked:
			endRevoked, top := false, m.TLP
			for _, r := range refs[id] {
				rm, ok := resolves(r)
				if !ok {
					desired = storage.Blocked
					continue
				}
				endRevoked = endRevoked || rm.Revoked
				top = max(top, rm.TLP)
			}
			if endRevoked {
				if err := b.revokeEverywhere(id); err != nil {
					return err
				}
				continue
			}
			if top > m.TLP {
				// Marked looser than an end: not served until the mapping
				// of either item marks it at least as strictly (the
				// mapper takes the stricter end's label).
				desired = storage.Blocked
			}
		case stixmap.IsContainer(m.Type) && !m.Revoked:
			if b.isHome(col, m) {
				var keep []string
				for _, r := range wants[id] {
					own := slices.Contains(derived[id], r) && stixmap.IsObservable(typeOf(r))
					if rm, ok := resolves(r); ok && !rm.Revoked && (rm.TLP <= m.TLP || own) {
						keep = append(keep, r)
					}
				}
				if len(wants[id]) > 0 && !sameMembers(keep, refs[id], wants[id]) {
					w := wants[id]
					if err := b.rewrite(col, id, w, func(o stixmap.Object) (stixmap.Object, error) {
						return stixmap.WithObjectRefs(o, keep, derivedAt)
					}); err != nil {
						return err
					}
					continue
				}
			}
			for _, r := range refs[id] {
				own := slices.Contains(derived[id], r) && stixmap.IsObservable(typeOf(r))
				if rm, ok := resolves(r); !ok || rm.Revoked || (rm.TLP > m.TLP && !own) {
					desired = storage.Blocked
				}
			}
		case stixmap.IsObservable(m.Type):
			lowest, live := tlp.Red, false
			for _, o := range origins[id] {
				// An origin is live while its collection wants it: one
				// blocked by a reference of its own still discloses the
				// value at its marking.
				om, ok := meta(o)
				if !ok || om.Vis == storage.Withdrawn || om.Revoked {
					continue
				}
				live = true
				lowest = min(lowest, tlp.Level(om.TLP))
			}
			if !live {
				desired = storage.Withdrawn
				break
			}
			if int(b.w.m.Emitted(lowest)) != m.TLP {
				if err := b.rewrite(col, id, nil, func(o stixmap.Object) (stixmap.Object, error) {
					return b.w.m.Remark(o, lowest, derivedAt)
				}); err != nil {
					return err
				}
				continue
			}
			// An observable with references (an email-message's sender and
			// recipients) needs them served here too.
			for _, r := range refs[id] {
				if _, ok := resolves(r); !ok {
					desired = storage.Blocked
				}
			}
		default:
			for _, r := range refs[id] {
				if _, ok := resolves(r); !ok {
					desired = storage.Blocked
				}
			}
		}
		if m.Vis != desired {
			setVis[id] = desired
		}
	}
	changed, err := b.tx.SetVisibilities(col, setVis)
	if err != nil {
		return err
	}
	for _, id := range changed {
		if b.vis[col] == nil {
			b.vis[col] = map[string]storage.Visibility{}
		}
		b.vis[col][id] = setVis[id]
	}
	for _, id := range changed {
		spread = append(spread, id)
		visChanged[id] = true
	}
	// Referrers of what changed, and the observables derived from items
	// that changed, are decided again in the next round.
	written := make([]string, 0, len(ids))
	for _, id := range ids {
		if b.wrote(col, id) {
			written = append(written, id)
		}
	}
	for _, id := range written {
		if m, ok := metas[id]; ok && !prerequisite(m.Type) {
			spread = append(spread, id)
		}
	}
	if len(spread) == 0 {
		return nil
	}
	referrers, err := b.tx.Referrers(col, storage.EdgeRef, spread)
	if err != nil {
		return err
	}
	// Containers that want what changed but do not list it (a member
	// above their marking, blocked or withdrawn) decide their list again.
	wanting, err := b.tx.Referrers(col, storage.EdgeWant, spread)
	if err != nil {
		return err
	}
	for id, ws := range wanting {
		referrers[id] = append(referrers[id], ws...)
	}
	// What an item derives was written with it when the item is new here;
	// only an item the store held before can have derived objects to
	// decide again.
	var heldBefore []string
	for _, id := range spread {
		if _, ok := b.before[col][id]; ok || visChanged[id] {
			heldBefore = append(heldBefore, id)
		} else if _, known := b.known[col][id]; !known {
			heldBefore = append(heldBefore, id)
		}
	}
	derivedBySpread, err := b.tx.Targets(col, storage.EdgeOrigin, heldBefore)
	if err != nil {
		return err
	}
	for _, id := range spread {
		for _, r := range referrers[id] {
			if !set[r] || visChanged[id] {
				b.touch(col, r)
			}
		}
		for _, d := range derivedBySpread[id] {
			if !set[d] {
				b.touch(col, d)
			}
		}
	}
	return nil
}

// prerequisite tells the types every collection serves before the objects
// that use them; changes to them never need to spread.
func prerequisite(typ string) bool {
	return typ == "identity" || typ == "marking-definition" || typ == "extension-definition"
}

// meta returns the latest-version metadata of ids in col, from what this
// batch wrote and what the store held before it when it knows them, and
// from the store for the rest.
func (b *batch) meta(col string, ids []string) (map[string]storage.Meta, error) {
	out := make(map[string]storage.Meta, len(ids))
	var ask []string
	for _, id := range ids {
		k, ok := b.known[col][id]
		if !ok {
			ask = append(ask, id)
			continue
		}
		m := storage.Meta{ID: id, Type: k.Type, Modified: k.Modified, TLP: k.TLP, Revoked: k.Revoked, TCID: k.TCID, Hash: k.Hash}
		if before, stored := b.before[col][id]; stored && before.Vis != storage.Published {
			m.Vis = before.Vis // hidden stays hidden whatever version arrives
		}
		if v, ok := b.vis[col][id]; ok {
			m.Vis = v
		}
		if before, stored := b.before[col][id]; stored && !before.Modified.IsZero() && before.Modified.After(k.Modified) {
			ask = append(ask, id) // an older version arrived: the store decides which is latest
			continue
		}
		out[id] = m
	}
	stored, err := b.tx.Meta(col, ask)
	if err != nil {
		return nil, err
	}
	for id, m := range stored {
		out[id] = m
	}
	return out, nil
}

// wrote reports whether a version of id was queued in col since it was
// last settled there, and marks it settled: a new version spreads once.
func (b *batch) wrote(col, id string) bool {
	if !b.fresh[col][id] {
		return false
	}
	delete(b.fresh[col], id)
	return true
}

// isHome tells whether col is the owner collection of a container.
func (b *batch) isHome(col string, m storage.Meta) bool {
	if h, ok := b.home[m.ID]; ok {
		return h == col
	}
	return b.w.isOwnerCollection(col)
}

// rewrite queues a new version of id made by edit from its stored latest
// version: versioned objects go to every collection holding the id (one
// history), observables are replaced in this collection only.
func (b *batch) rewrite(col, id string, wants []string, edit func(stixmap.Object) (stixmap.Object, error)) error {
	v, ok, err := b.tx.Latest(col, id)
	if err != nil || !ok {
		return err
	}
	o, err := edit(fromStorage(v))
	if err != nil {
		return err
	}
	so := toStorage(o)
	so.TCID, so.Wants = v.TCID, wants
	if o.Modified.IsZero() {
		b.queue(col, so)
		return nil
	}
	held, err := b.tx.Holding([]string{id})
	if err != nil {
		return err
	}
	for _, c := range held[id] {
		b.queue(c, so)
	}
	return nil
}
