package tcsync

import (
	"fmt"
	"slices"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// batch gathers one transaction's writes per collection, puts the objects
// others refer to (marking definitions, the bridge and owner identities)
// ahead of the objects that refer to them (taxii21.md D-20), and then makes
// the publication rule hold for everything the writes touched (graph.go).
type batch struct {
	w     *Worker
	tx    *storage.Tx
	now   time.Time
	sum   *Summary
	puts  map[string][]storage.Object
	order []string
	have  map[string]map[string]bool // collection → ids queued in this batch
	// queued is, per collection, the versions queued (id and modified).
	queued map[string]map[versionKey]bool
	// owners caches the owner identities mapped in this batch.
	owners map[string]storage.Object

	// want is the routing decision per collection and id: true when a TC
	// item in scope puts the object there, false when the collection must
	// stop showing it (it left a filter). Absent: no opinion (a copy of a
	// new version sent to every collection that holds the id).
	want map[string]map[string]bool
	// home is the owner collection of each primary object queued.
	home map[string]string
	// origins lists, per collection and TC item (its primary object), the
	// objects the item currently derives there.
	origins map[string]map[string][]string
	// asserts lists, per TC item in scope (its primary object), the
	// relationships its mapping makes now, whatever collection holds
	// them: one that left a collection's origins is revoked only when the
	// item no longer asserts it at all (settleOrigins).
	asserts map[string][]string
	// touched lists, per collection, the ids whose publication must be
	// decided again (written, routed, or something they reference changed).
	touched map[string]map[string]bool
	revoked map[string]bool // ids revoked by this batch
	// fresh lists, per collection, ids written since they were last settled.
	fresh map[string]map[string]bool
	// known is, per collection, the latest version of each id queued in
	// this batch (its references are known without reading them back).
	known map[string]map[string]storage.Object
	// before is what the store held of each queued id before this batch
	// wrote (read once in prepare).
	before map[string]map[string]storage.Meta
	// vis is, per collection, the visibility this batch set.
	vis map[string]map[string]storage.Visibility
	// at is, per collection, where each id sits in puts (indexQueued).
	at map[string]map[string][]int
}

func newBatch(w *Worker, tx *storage.Tx, now time.Time, sum *Summary) *batch {
	return &batch{w: w, tx: tx, now: now, sum: sum, puts: map[string][]storage.Object{},
		have: map[string]map[string]bool{}, want: map[string]map[string]bool{}, home: map[string]string{},
		origins: map[string]map[string][]string{}, asserts: map[string][]string{}, touched: map[string]map[string]bool{}, revoked: map[string]bool{},
		fresh: map[string]map[string]bool{}, known: map[string]map[string]storage.Object{},
		before: map[string]map[string]storage.Meta{}, vis: map[string]map[string]storage.Visibility{},
		queued: map[string]map[versionKey]bool{},
		owners: map[string]storage.Object{}}
}

type versionKey struct {
	id  string
	mod int64
}

// queue adds an object to a collection's writes, once per batch.
func (b *batch) queue(col string, o storage.Object) {
	seen, ok := b.have[col]
	if !ok {
		seen = map[string]bool{}
		b.have[col] = seen
		b.queued[col] = map[versionKey]bool{}
		b.order = append(b.order, col)
	}
	key := versionKey{o.ID, o.Modified.UnixMicro()}
	if b.queued[col][key] {
		return
	}
	b.queued[col][key] = true
	seen[o.ID] = true
	b.puts[col] = append(b.puts[col], o)
}

func (b *batch) touch(col, id string) {
	t := b.touched[col]
	if t == nil {
		t = map[string]bool{}
		b.touched[col] = t
	}
	t[id] = true
}

func (b *batch) setWant(col, id string, v bool) {
	m := b.want[col]
	if m == nil {
		m = map[string]bool{}
		b.want[col] = m
	}
	if v || !m[id] { // publishing wins over withdrawing within a batch
		m[id] = v
	}
}

// prerequisites queues what a collection needs before an owner's objects.
func (b *batch) prerequisites(col string, u unit) error {
	if _, ok := b.have[col]; !ok {
		for _, m := range b.w.m.Markings() {
			b.queue(col, toStorage(m))
			b.setWant(col, m.ID, true)
		}
		br := b.w.m.Bridge()
		b.queue(col, toStorage(br))
		b.setWant(col, br.ID, true)
	}
	id, ok := b.owners[u.owner.Name]
	if !ok {
		o, err := b.w.m.Owner(u.owner)
		if err != nil {
			return fmt.Errorf("map owner %q: %w", u.owner.Name, err)
		}
		id = toStorage(o)
		b.owners[u.owner.Name] = id
	}
	b.queue(col, id)
	b.setWant(col, id.ID, true)
	return nil
}

// unit routes one TC item's objects: into its owner's collection and the
// filter collections that match, withdrawn from the filter collections it
// no longer matches, and revoked everywhere when it left the sync's scope.
func (b *batch) unit(u unit, incremental bool) error {
	primary, hasPrimary := primaryObject(u)
	if !u.inScope {
		if hasPrimary {
			// Another item may hold the id (the same owner, type and
			// value): only the item that published it can take it back.
			m, err := b.stored(u.ownerCol, primary.ID)
			if err != nil {
				return fmt.Errorf("look up %s: %w", primary.ID, err)
			}
			if stored, ok := m[primary.ID]; ok && stored.TCID != 0 && stored.TCID != u.tcID {
				return nil
			}
		}
		for _, o := range u.objs {
			if isVersioned(o) {
				if err := b.revokeEverywhere(o.ID); err != nil {
					return err
				}
			}
		}
		if hasPrimary {
			return b.forgetItem(primary.ID)
		}
		return nil
	}
	targets := []struct {
		col  string
		keep func(stixmap.Object) bool
	}{{u.ownerCol, func(stixmap.Object) bool { return true }}}
	for _, f := range b.w.filters {
		f := f
		targets = append(targets, struct {
			col  string
			keep func(stixmap.Object) bool
		}{f.id, func(o stixmap.Object) bool { return filterMatches(f.cfg.Filter, u.it, o.Type, o.TLP) }})
	}
	if hasPrimary && incremental {
		m, err := b.stored(u.ownerCol, primary.ID)
		if err != nil {
			return fmt.Errorf("look up %s: %w", primary.ID, err)
		}
		stored, ok := m[primary.ID]
		switch {
		case ok && stored.Revoked:
			b.sum.skip("revoked_earlier") // STIX revocation is permanent (stix-mapping.md §3.3)
			return nil
		case ok && stored.TCID != 0 && stored.TCID != u.tcID && stored.TCID < u.tcID:
			// Two ThreatConnect items map to one STIX id (the same owner,
			// type and normalised value): the older item keeps it, so the
			// object does not flip between them on every run.
			b.sum.skip("duplicate_value")
			return nil
		}
	}
	if hasPrimary {
		b.home[primary.ID] = u.ownerCol
		var rels []string
		for _, o := range u.objs {
			if o.Type == "relationship" {
				rels = append(rels, o.ID)
			}
		}
		b.asserts[primary.ID] = rels
	}
	for _, t := range targets {
		if hasPrimary && (u.onlyIfStored || (incremental && t.col != u.ownerCol)) {
			m, err := b.stored(t.col, primary.ID)
			if err != nil {
				return fmt.Errorf("look up %s: %w", primary.ID, err)
			}
			stored, ok := m[primary.ID]
			switch {
			case ok && stored.Revoked:
				continue // revocation is permanent
			case !ok && u.onlyIfStored:
				if t.col == u.ownerCol {
					b.sum.skip("inactive")
				}
				continue
			}
		}
		var kept, derived []string
		for i, o := range u.objs {
			if t.keep(o) {
				// A foreign relationship stays out of the owner's
				// collection, and out of the item's origins there: a
				// collection's origins list what the item derives in it.
				// Where it is served (a filter collection) it is among
				// the origins, so removing the association revokes it.
				if t.col == u.ownerCol && u.isForeign(i) {
					continue
				}
				kept = append(kept, o.ID)
				if !hasPrimary || o.ID != primary.ID {
					derived = append(derived, o.ID)
				}
			} else {
				// It left this (filter) collection but lives on elsewhere:
				// it stops being visible here, it is not revoked (§10).
				b.setWant(t.col, o.ID, false)
			}
		}
		if len(kept) == 0 {
			continue
		}
		if err := b.prerequisites(t.col, u); err != nil {
			return err
		}
		for i, o := range u.objs {
			if slices.Contains(kept, o.ID) {
				if i < len(u.stored) {
					b.queue(t.col, u.stored[i])
				} else {
					b.queue(t.col, toStorage(o))
				}
				b.setWant(t.col, o.ID, true)
			}
		}
		if hasPrimary {
			if b.origins[t.col] == nil {
				b.origins[t.col] = map[string][]string{}
			}
			b.origins[t.col][primary.ID] = derived
		}
	}
	return nil
}

// preload reads, in one query per collection, what the store holds of the
// primary objects of units, so that the routing decisions of unit find it
// in the transaction's cache (storage.Tx.Meta) instead of a query each.
func (b *batch) preload(units []unit) error {
	ids := map[string][]string{}
	for _, u := range units {
		if p, ok := primaryObject(u); ok {
			ids[u.ownerCol] = append(ids[u.ownerCol], p.ID)
			for _, f := range b.w.filters {
				ids[f.id] = append(ids[f.id], p.ID)
			}
		}
	}
	for col, list := range ids {
		if _, err := b.tx.Meta(col, list); err != nil {
			return err
		}
	}
	return nil
}

// stored is what the store holds of id in col.
func (b *batch) stored(col, id string) (map[string]storage.Meta, error) {
	return b.tx.Meta(col, []string{id})
}

// forgetItem records that a TC item derives nothing any more in every
// collection that holds its object (deleted, out of scope).
func (b *batch) forgetItem(primaryID string) error {
	held, err := b.tx.Holding([]string{primaryID})
	if err != nil {
		return fmt.Errorf("look up %s: %w", primaryID, err)
	}
	for _, col := range held[primaryID] {
		if b.origins[col] == nil {
			b.origins[col] = map[string][]string{}
		}
		b.origins[col][primaryID] = nil
		b.touch(col, primaryID)
	}
	return nil
}

// revokeEverywhere revokes id in every collection holding it (one id, one
// history: DESIGN.md §10).
func (b *batch) revokeEverywhere(id string) error {
	if b.revoked[id] {
		return nil
	}
	held, err := b.tx.Holding([]string{id})
	if err != nil {
		return fmt.Errorf("look up %s: %w", id, err)
	}
	cols := held[id]
	if len(cols) == 0 {
		return nil
	}
	v, ok, err := b.tx.Latest(cols[0], id)
	if err != nil {
		return fmt.Errorf("look up %s: %w", id, err)
	}
	if !ok || v.Revoked || v.Modified.IsZero() {
		return nil
	}
	r, err := stixmap.Revoke(fromStorage(v), b.now)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	for _, col := range cols {
		b.queue(col, toStorage(r))
	}
	b.revoked[id] = true
	b.sum.Revoked++
	return nil
}

func (b *batch) flush() error {
	// What the store holds of everything queued is read first (b.before);
	// only versions that differ from it travel to other collections.
	if err := b.keepRevoked(b.order); err != nil {
		return err
	}
	copied, err := b.propagate()
	if err != nil {
		return err
	}
	if err := b.keepRevoked(copied); err != nil { // the collections copies went to
		return err
	}
	if err := b.prepare(); err != nil {
		return err
	}
	if err := b.write(); err != nil {
		return err
	}
	b.touchRouted()
	return b.settle()
}

// touchRouted marks for settling what the routing changed without a
// write: objects a collection stops wanting, and wanted objects it had
// withdrawn.
func (b *batch) touchRouted() {
	for col, wants := range b.want {
		for id, w := range wants {
			m, stored := b.before[col][id]
			if stored && (!w && m.Vis != storage.Withdrawn || w && m.Vis == storage.Withdrawn) {
				b.touch(col, id)
			}
		}
	}
}

// write puts every queued object and empties the queues.
func (b *batch) write() error {
	for _, col := range b.order {
		if len(b.puts[col]) == 0 {
			continue
		}
		if err := b.version(col); err != nil {
			return err
		}
		if b.known[col] == nil {
			b.known[col] = map[string]storage.Object{}
		}
		for _, o := range b.puts[col] {
			b.known[col][o.ID] = o
		}
		res, err := b.tx.Put(col, b.puts[col])
		if err != nil {
			return fmt.Errorf("write collection %s: %w", col, err)
		}
		b.sum.NewVersions += res.New
		b.sum.Unchanged += res.Unchanged
		if b.fresh[col] == nil {
			b.fresh[col] = map[string]bool{}
		}
		for _, id := range res.Written {
			b.touch(col, id)
			b.fresh[col][id] = true
		}
		b.puts[col] = b.puts[col][:0]
		clear(b.queued[col])
	}
	return nil
}

// version makes each queued versioned object whose content changed newer
// than the version it follows (the collection's latest, or one queued
// before it): ThreatConnect does not move lastModified for every change
// (an association, a label), and storage never rewrites what it is given.
func (b *batch) version(col string) error {
	var ids []string
	for _, o := range b.puts[col] {
		if !o.Modified.IsZero() {
			ids = append(ids, o.ID)
		}
	}
	stored, err := b.tx.Meta(col, ids)
	if err != nil {
		return err
	}
	type prev struct {
		mod  time.Time
		hash [16]byte
	}
	latest := make(map[string]prev, len(stored))
	for id, m := range stored {
		latest[id] = prev{m.Modified, m.Hash}
	}
	for i, o := range b.puts[col] {
		if o.Modified.IsZero() {
			continue
		}
		p, ok := latest[o.ID]
		if ok && p.hash != o.Hash && !p.mod.IsZero() && !o.Modified.After(p.mod) {
			r, err := stixmap.Bump(fromStorageObject(o), p.mod)
			if err != nil {
				return fmt.Errorf("version %s: %w", o.ID, err)
			}
			o.JSON, o.Modified, o.Hash = r.JSON, r.Modified, r.Hash
			b.puts[col][i] = o
		}
		if !ok || o.Modified.After(p.mod) {
			latest[o.ID] = prev{o.Modified, o.Hash}
		}
	}
	return nil
}

// propagate sends every new version of a versioned object to each
// collection that already holds the id, so that every collection shows
// the same latest version (DESIGN.md §10). The copy changes nothing of the
// object's visibility there. A version the collection it was queued for
// holds already is in every collection holding the id: it travelled when
// it was written. It returns the collections it queued copies into.
func (b *batch) propagate() (copied []string, err error) {
	byID := map[string]storage.Object{}
	var ids []string
	for _, col := range b.order {
		for _, o := range b.puts[col] {
			if o.Modified.IsZero() {
				continue
			}
			if m, ok := b.before[col][o.ID]; ok && m.Hash == o.Hash {
				continue
			}
			if _, ok := byID[o.ID]; !ok {
				ids = append(ids, o.ID)
			}
			byID[o.ID] = o
		}
	}
	held, err := b.tx.Holding(ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		for _, col := range held[id] {
			if !b.have[col][id] {
				b.queue(col, byID[id])
				if !slices.Contains(copied, col) {
					copied = append(copied, col)
				}
			}
		}
	}
	return copied, nil
}

// primaryObject is the SDO a TC item maps to (its indicator or group object).
func primaryObject(u unit) (stixmap.Object, bool) {
	for _, o := range u.objs {
		if o.TCID == u.tcID && isVersioned(o) && o.Type != "relationship" {
			return o, true
		}
	}
	return stixmap.Object{}, false
}

// isVersioned tells SDOs and SROs (which have modified and can be revoked)
// from observables.
func isVersioned(o stixmap.Object) bool { return !o.Modified.IsZero() }

func toStorage(o stixmap.Object) storage.Object {
	so := storage.Object{ID: o.ID, Type: o.Type, SpecVersion: "2.1", Created: o.Created, Modified: o.Modified,
		TLP: int(o.TLP), Hash: o.Hash, JSON: o.JSON, Refs: closureRefs(o), TCID: o.TCID, ValidUntil: o.ValidUntil,
		Revoked: stixmap.IsRevoked(o.JSON)}
	if o.Type == "relationship" || o.Modified.IsZero() {
		so.TCID = 0 // only an item's own object carries its TC id
	}
	return so
}

// closureRefs are the references the publication rule checks for o. A
// relationship's creator is one: it may be another owner's identity, which
// is not served in this owner's collection.
func closureRefs(o stixmap.Object) []string {
	refs := stixmap.Refs(o.JSON)
	if o.Type == "relationship" {
		if c := stixmap.CreatedBy(o.JSON); c != "" {
			refs = append(refs, c)
		}
	}
	return refs
}

func fromStorage(v storage.Version) stixmap.Object {
	return stixmap.Object{ID: v.ID, Type: v.Type, Created: v.Created, Modified: v.Modified, TLP: tlp.Level(v.TLP),
		Hash: v.Hash, JSON: v.JSON, TCID: v.TCID}
}
