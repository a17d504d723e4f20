package tcsync

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// batch gathers one transaction's writes per collection, puts the objects
// others refer to (marking definitions, the bridge and owner identities)
// ahead of the objects that refer to them (taxii21.md D-20), and decides
// revocations against what is stored.
type batch struct {
	w     *Worker
	tx    *storage.Tx
	now   time.Time
	sum   *Summary
	puts  map[string][]storage.Object
	order []string
	have  map[string]map[string]bool // collection → ids already queued in this batch
	obs   map[string]map[string]int  // collection → observable id → index in puts
}

func newBatch(w *Worker, tx *storage.Tx, now time.Time, sum *Summary) *batch {
	return &batch{w: w, tx: tx, now: now, sum: sum, puts: map[string][]storage.Object{},
		have: map[string]map[string]bool{}, obs: map[string]map[string]int{}}
}

// queue adds an object to a collection's writes, once per batch.
func (b *batch) queue(col string, o storage.Object) {
	seen, ok := b.have[col]
	if !ok {
		seen = map[string]bool{}
		b.have[col] = seen
		b.order = append(b.order, col)
	}
	key := o.ID + "\x00" + o.Modified.String()
	if seen[key] {
		return
	}
	seen[key] = true
	b.puts[col] = append(b.puts[col], o)
}

// queueObservable queues an observable (an SCO: no modified, no versions).
// One value can come from several items with different markings (an e-mail
// address in an indicator and in an Email group, the same address under two
// owners in a filter collection), and writing each in turn would flip the
// object's marking on every run. The least restrictive marking wins, since
// that item already discloses the value at that level; so an observable is
// written only when it is new to the collection or less restricted than the
// stored one, and the store converges after one pass.
func (b *batch) queueObservable(col string, o storage.Object) error {
	if i, ok := b.obs[col][o.ID]; ok {
		if o.TLP < b.puts[col][i].TLP {
			b.puts[col][i] = o
		}
		return nil
	}
	v, ok, err := b.tx.Latest(col, o.ID)
	if err != nil {
		return fmt.Errorf("look up %s: %w", o.ID, err)
	}
	if ok && v.TLP <= o.TLP {
		return nil
	}
	b.queue(col, o)
	if b.obs[col] == nil {
		b.obs[col] = map[string]int{}
	}
	b.obs[col][o.ID] = len(b.puts[col]) - 1
	return nil
}

// prerequisites queues what a collection needs before an owner's objects.
func (b *batch) prerequisites(col string, u unit) error {
	if _, ok := b.have[col]; !ok {
		for _, m := range b.w.m.Markings() {
			b.queue(col, toStorage(m))
		}
		b.queue(col, toStorage(b.w.m.Bridge()))
	}
	id, err := b.w.m.Owner(u.owner)
	if err != nil {
		return fmt.Errorf("map owner %q: %w", u.owner.Name, err)
	}
	b.queue(col, toStorage(id))
	return nil
}

// unit routes one TC item's objects: into its owner's collection and the
// filter collections that match, and revoked where it no longer belongs.
func (b *batch) unit(u unit, incremental bool) error {
	primary, hasPrimary := primaryObject(u)
	if !u.inScope {
		for _, o := range u.objs {
			if isVersioned(o) {
				if err := b.revokeEverywhere(o.ID, u.ownerCol); err != nil {
					return err
				}
			}
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
		v, ok, err := b.tx.Latest(u.ownerCol, primary.ID)
		if err != nil {
			return fmt.Errorf("look up %s: %w", primary.ID, err)
		}
		stored := storedMeta(v.JSON)
		switch {
		case ok && stored.Revoked:
			b.sum.skip("revoked_earlier") // STIX revocation is permanent (stix-mapping.md §3.3)
			return nil
		case ok && stored.TCID != "" && stored.TCID != strconv.FormatInt(u.tcID, 10) && lessID(stored.TCID, u.tcID):
			// Two ThreatConnect items map to one STIX id (the same owner,
			// type and normalised value): the older item keeps it, so the
			// object does not flip between them on every run.
			b.sum.skip("duplicate_value")
			return nil
		}
	}
	for _, t := range targets {
		if hasPrimary && (u.onlyIfStored || (incremental && t.col != u.ownerCol)) {
			v, ok, err := b.tx.Latest(t.col, primary.ID)
			if err != nil {
				return fmt.Errorf("look up %s: %w", primary.ID, err)
			}
			switch {
			case ok && storedMeta(v.JSON).Revoked:
				continue // revoked here when it left this collection's filter: permanent
			case !ok && u.onlyIfStored:
				if t.col == u.ownerCol {
					b.sum.skip("inactive")
				}
				continue
			}
		}
		var kept []stixmap.Object
		for _, o := range u.objs {
			if t.keep(o) {
				kept = append(kept, o)
			} else if incremental && isVersioned(o) {
				if err := b.revokeIn(t.col, o.ID); err != nil {
					return err
				}
			}
		}
		if len(kept) == 0 {
			continue
		}
		if err := b.prerequisites(t.col, u); err != nil {
			return err
		}
		for _, o := range kept {
			if isVersioned(o) {
				b.queue(t.col, toStorage(o))
			} else if err := b.queueObservable(t.col, toStorage(o)); err != nil {
				return err
			}
		}
	}
	return nil
}

// revokeEverywhere revokes id in the owner collection and every filter collection holding it.
func (b *batch) revokeEverywhere(id, ownerCol string) error {
	if err := b.revokeIn(ownerCol, id); err != nil {
		return err
	}
	for _, f := range b.w.filters {
		if err := b.revokeIn(f.id, id); err != nil {
			return err
		}
	}
	return nil
}

// revokeIn queues a revoked version of id's latest version in col, if there is
// one and it is not revoked already.
func (b *batch) revokeIn(col, id string) error {
	v, ok, err := b.tx.Latest(col, id)
	if err != nil {
		return fmt.Errorf("look up %s: %w", id, err)
	}
	if !ok || storedMeta(v.JSON).Revoked {
		return nil
	}
	r, err := stixmap.Revoke(fromStorage(v), b.now)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	b.queue(col, toStorage(r))
	b.sum.Revoked++
	return nil
}

func (b *batch) flush() error {
	for _, col := range b.order {
		res, err := b.tx.Put(col, b.puts[col], storage.PutOptions{BumpModified: true})
		if err != nil {
			return fmt.Errorf("write collection %s: %w", col, err)
		}
		b.sum.NewVersions += res.New
		b.sum.Unchanged += res.Unchanged
	}
	return nil
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
	return storage.Object{ID: o.ID, Type: o.Type, SpecVersion: "2.1", Created: o.Created, Modified: o.Modified,
		TLP: int(o.TLP), Hash: o.Hash, JSON: o.JSON}
}

func fromStorage(v storage.Version) stixmap.Object {
	return stixmap.Object{ID: v.ID, Type: v.Type, Created: v.Created, Modified: v.Modified, TLP: tlp.Level(v.TLP),
		Hash: v.Hash, JSON: v.JSON}
}

// meta is what the worker reads back from a stored object.
type meta struct {
	Revoked bool   `json:"revoked"`
	TCID    string `json:"x_threatconnect_id"`
}

func storedMeta(b []byte) meta {
	var m meta
	_ = json.Unmarshal(b, &m) // stored bytes are our own canonical JSON
	return m
}

// lessID reports whether the decimal TC id a is below b.
func lessID(a string, b int64) bool {
	v, err := strconv.ParseInt(a, 10, 64)
	return err == nil && v < b
}
