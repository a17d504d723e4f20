package tcsync_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// readerCaps are the reader views the graph checker walks: no cap, CLEAR,
// GREEN and AMBER.
var readerCaps = []int{storage.TLPRed, storage.TLPClear, storage.TLPGreen, storage.TLPAmber}

// checkGraph is the publication rule as a test (DESIGN.md §10): for every
// collection and reader cap, every reference of every object served
// resolves to an object served in the same collection to the same reader,
// no object is marked looser than what it references, the latest and
// all-versions views list the same ids, and nothing derived from a private
// ThreatConnect item appears anywhere.
func checkGraph(t *testing.T, f *fixture, store *storage.Store, when string) {
	t.Helper()
	ctx := context.Background()
	private := privateIDs(t, f)
	cols, err := store.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	problems := 0
	report := func(format string, args ...any) {
		t.Helper()
		if problems++; problems <= 15 {
			t.Errorf("%s: "+format, append([]any{when}, args...)...)
		}
	}
	for _, c := range cols {
		for _, capTLP := range readerCaps {
			latest := map[string][]byte{}
			for _, it := range list(t, store, storage.Query{CollectionID: c.ID, MaxTLP: capTLP}) {
				latest[it.ID] = it.JSON
			}
			allIDs := map[string]bool{}
			for _, it := range list(t, store, storage.Query{CollectionID: c.ID, MaxTLP: capTLP, Versions: storage.VersionFilter{All: true}}) {
				allIDs[it.ID] = true
				if _, ok := latest[it.ID]; !ok {
					report("%s cap %d: %s has versions listed but no latest version", c.Alias, capTLP, it.ID)
				}
			}
			if len(allIDs) != len(latest) {
				report("%s cap %d: %d ids in all versions, %d latest", c.Alias, capTLP, len(allIDs), len(latest))
			}
			for id, js := range latest {
				if private[id] {
					report("%s cap %d: %s is derived from a private item", c.Alias, capTLP, id)
				}
				var o struct {
					CreatedBy string   `json:"created_by_ref"`
					Markings  []string `json:"object_marking_refs"`
				}
				if err := json.Unmarshal(js, &o); err != nil {
					t.Fatal(err)
				}
				own := markingLevel(o.Markings)
				refs := stixmap.Refs(js)
				for _, r := range append(append(slices.Clone(refs), o.Markings...), o.CreatedBy) {
					if r == "" {
						continue
					}
					if private[r] {
						report("%s cap %d: %s references %s, derived from a private item", c.Alias, capTLP, id, r)
					}
					if _, ok := latest[r]; !ok {
						report("%s cap %d: %s references %s, which this reader is not served here", c.Alias, capTLP, id, r)
					}
				}
				for _, r := range refs {
					if rj, ok := latest[r]; ok {
						var ro struct {
							Markings []string `json:"object_marking_refs"`
						}
						json.Unmarshal(rj, &ro)
						if l := markingLevel(ro.Markings); l > own {
							report("%s cap %d: %s (TLP %v) references %s marked %v", c.Alias, capTLP, id, own, r, l)
						}
					}
				}
			}
		}
	}
}

func markingLevel(refs []string) tlp.Level {
	l := tlp.None
	for _, r := range refs {
		if v, ok := stixmap.MarkingLevel(r); ok {
			l = tlp.Max(l, v)
		}
	}
	return l
}

func list(t *testing.T, store *storage.Store, q storage.Query) []storage.Item {
	t.Helper()
	var out []storage.Item
	q.Limit = 5000
	for {
		p, err := store.Objects(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if !p.More {
			return out
		}
		k := p.LastKey()
		q.After = &k
	}
}

// privateIDs are the indicator ids of the simulator's private items.
func privateIDs(t *testing.T, f *fixture) map[string]bool {
	out := map[string]bool{}
	for n := 1; n <= f.nInd; n++ {
		ind, ok := f.sim.Indicator(tcsim.IndicatorID(n))
		if !ok || !ind.PrivateFlag {
			continue
		}
		ind.PrivateFlag = false // the mapper would map it: these are the ids it would use
		if objs, err := f.mapper.Indicator(ind); err == nil && len(objs) > 0 {
			out[objs[0].ID] = true
		}
	}
	return out
}

// pick returns the first public, active, mappable indicator of the
// organization with a group of the same owner, and that group.
func pick(t *testing.T, f *fixture, skip ...int64) (tcapi.Indicator, tcapi.Group) {
	t.Helper()
	for n := 1; n <= f.nInd; n++ {
		ind, ok := f.sim.Indicator(tcsim.IndicatorID(n))
		if !ok || !ind.Active || ind.PrivateFlag || slices.Contains(skip, ind.ID) || ind.Type != tcapi.TypeHost {
			continue
		}
		for m := 1; m <= f.nGrp; m++ {
			g, ok := f.sim.Group(tcsim.GroupID(m))
			if ok && g.OwnerName == ind.OwnerName && (g.Type == tcapi.GroupAdversary || g.Type == tcapi.GroupMalware ||
				g.Type == tcapi.GroupIntrusionSet || g.Type == tcapi.GroupCampaign) {
				return ind, g
			}
		}
	}
	t.Fatal("no indicator with a group of its owner")
	return tcapi.Indicator{}, tcapi.Group{}
}

func labels(name string) tcapi.List[tcapi.SecurityLabel] {
	return tcapi.List[tcapi.SecurityLabel]{Data: []tcapi.SecurityLabel{{Name: name}}}
}

// relationshipState returns the latest version of the relationship between
// an indicator and a group as the owner collection serves it uncapped.
func relationshipState(t *testing.T, f *fixture, store *storage.Store, ind tcapi.Indicator, g tcapi.Group) (found, revoked bool) {
	t.Helper()
	objs, err := f.mapper.Indicator(ind)
	if err != nil {
		t.Fatal(err)
	}
	gid := f.mapper.GroupID(g.Type, g.ID)
	col := collectionID(t, store, ownerAliasOf(ind.OwnerName))
	for _, it := range list(t, store, storage.Query{CollectionID: col, MaxTLP: 5, Types: []string{"relationship"}}) {
		s := string(it.JSON)
		if strings.Contains(s, `"`+objs[0].ID+`"`) && strings.Contains(s, `"`+gid+`"`) {
			return true, strings.Contains(s, `"revoked":true`)
		}
	}
	return false, false
}

func ownerAliasOf(owner string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(owner)), "-")
}

// TestPublishedGraphNeverLeaksAndNeverDrifts runs the graph checker after
// the initial sync and after each kind of ThreatConnect mutation, with the
// simulator behaving like ThreatConnect (associations do not bump
// lastModified, so they are found by the reconciliation).
func TestPublishedGraphNeverLeaksAndNeverDrifts(t *testing.T) {
	f := newFixture(t, 400, 40)
	store := openStore(t, "graph.db")
	w := f.worker(store, syncConfig(), nil)
	ctx := context.Background()
	run := func(what string) {
		t.Helper()
		f.clock.Advance(time.Hour)
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		checkGraph(t, f, store, what)
	}
	reconcile := func(what string) {
		t.Helper()
		f.clock.Advance(time.Hour)
		if _, err := w.Reconcile(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		checkGraph(t, f, store, what+" (reconciled)")
	}
	run("initial sync")

	ind, g := pick(t, f)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.Description = "modified by the graph test" }))
	run("modify")

	// Tighten: the indicator's observable and relationships follow.
	must(f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.SecurityLabels = labels("TLP:RED") }))
	run("tighten TLP")
	// Loosen again.
	must(f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.SecurityLabels = labels("TLP:CLEAR") }))
	run("loosen TLP")

	// Add an association: not seen by an incremental run (no lastModified
	// bump), found by the reconciliation.
	must(f.sim.Associate(ind.ID, g.ID))
	run("add association")
	reconcile("add association")
	cur, _ := f.sim.Indicator(ind.ID)
	if found, revoked := relationshipState(t, f, store, cur, g); !found || revoked {
		t.Errorf("after reconciling an added association: relationship found %v, revoked %v; want live", found, revoked)
	}
	must(f.sim.Disassociate(ind.ID, g.ID))
	run("remove association")
	reconcile("remove association")
	if found, revoked := relationshipState(t, f, store, cur, g); found && !revoked {
		t.Errorf("after reconciling a removed association the relationship is still live")
	}

	other, _ := pick(t, f, ind.ID)
	must(f.sim.Deactivate(other.ID))
	run("deactivate")
	must(f.sim.Delete(ind.ID))
	run("delete indicator")

	// Delete a group: no deleted list for groups; the reconciliation
	// revokes it and its relationships, and containers drop it.
	must(f.sim.DeleteGroup(g.ID))
	run("delete group")
	reconcile("delete group")
	gid := f.mapper.GroupID(g.Type, g.ID)
	col := collectionID(t, store, ownerAliasOf(g.OwnerName))
	for _, it := range list(t, store, storage.Query{CollectionID: col, MaxTLP: 5, IDs: []string{gid}}) {
		if !strings.Contains(string(it.JSON), `"revoked":true`) {
			t.Errorf("deleted group %s is not revoked after reconciliation", gid)
		}
	}

	// A sync after which ThreatConnect did not change writes nothing.
	f.clock.Advance(time.Hour)
	sum, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewVersions != 0 || sum.Revoked != 0 {
		t.Errorf("a sync with nothing changed wrote %d versions, %d revocations", sum.NewVersions, sum.Revoked)
	}
	sum, err = w.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewVersions != 0 || sum.Revoked != 0 {
		t.Errorf("a reconciliation with nothing changed wrote %d versions, %d revocations", sum.NewVersions, sum.Revoked)
	}
}
