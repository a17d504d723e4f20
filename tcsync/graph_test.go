package tcsync_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
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
				// An item that turns private after it was published is
				// revoked: the revocation retracts an id readers already
				// had. Nothing live may carry a private item's id.
				live := !stixmap.IsRevoked(js)
				if private[id] && live {
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
					if private[r] && live {
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
		if v, ok := tlp.FromMarking(r); ok {
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

func ownerAliasOf(owner string) string { return tcsync.OwnerAlias(owner, nil) }

// TestPublishedGraphNeverLeaksAndNeverDrifts runs the graph checker after
// the initial sync and after each kind of ThreatConnect mutation, with the
// simulator behaving like ThreatConnect (associations do not bump
// lastModified, so they are found by the reconciliation).
func TestPublishedGraphNeverLeaksAndNeverDrifts(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testPublishedGraph(t, openStore(t, "graph.db")) })
	t.Run("postgres", func(t *testing.T) { testPublishedGraph(t, openPostgresStore(t)) })
}

func testPublishedGraph(t *testing.T, store *storage.Store) {
	f := newFixture(t, 400, 40)
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

// syncAgain advances the clock and runs an incremental sync.
func syncAgain(t *testing.T, f *fixture, run func(context.Context) error) {
	t.Helper()
	f.clock.Advance(time.Hour)
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// served reports whether id appears anywhere (as an object or inside one)
// in what a reader with this cap is served from any collection.
func served(t *testing.T, store *storage.Store, capTLP int, id string) []string {
	t.Helper()
	var where []string
	cols, err := store.Collections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		for _, it := range list(t, store, storage.Query{CollectionID: c.ID, MaxTLP: capTLP, Versions: storage.VersionFilter{All: true}}) {
			if it.ID == id || strings.Contains(string(it.JSON), `"`+id+`"`) {
				where = append(where, c.Alias+":"+it.ID)
			}
		}
	}
	return where
}

// newGraphFixture is a small synced store with its sync and reconcile runs,
// for the regression tests of issue 9, each named after what it protects.
func newGraphFixture(t *testing.T) (*fixture, *storage.Store, func(context.Context) error, func(context.Context) error) {
	f := newFixture(t, 300, 30)
	store := openStore(t, "g.db")
	w := f.worker(store, syncConfig(), nil)
	run := func(ctx context.Context) error { _, err := w.RunOnce(ctx); return err }
	rec := func(ctx context.Context) error { _, err := w.Reconcile(ctx); return err }
	syncAgain(t, f, run)
	return f, store, run, rec
}

func sco(t *testing.T, f *fixture, ind tcapi.Indicator) string {
	t.Helper()
	objs, err := f.mapper.Indicator(ind)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if stixmap.IsObservable(o.Type) {
			return o.ID
		}
	}
	t.Fatalf("indicator %d has no observable", ind.ID)
	return ""
}

// TestAttributeLabelledAboveItsItemIsNotPublished protects issue 9 #2: a
// TLP:RED attribute on a TLP:CLEAR indicator never reaches STIX.
func TestAttributeLabelledAboveItsItemIsNotPublished(t *testing.T) {
	f, store, run, _ := newGraphFixture(t)
	ind, _ := pick(t, f)
	secret := "red-note-that-must-not-leak"
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) {
		in.SecurityLabels = labels("TLP:CLEAR")
		in.Attributes.Data = append(in.Attributes.Data, tcapi.Attribute{ID: 77, Type: "Additional Analysis and Context",
			Value: secret, SecurityLabels: labels("TLP:RED")})
	}); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	cur, _ := f.sim.Indicator(ind.ID)
	objs, _ := f.mapper.Indicator(cur)
	for _, capTLP := range readerCaps {
		if where := served(t, store, capTLP, objs[0].ID); len(where) == 0 {
			t.Fatalf("the indicator itself is not served")
		}
	}
	cols, _ := store.Collections(context.Background())
	for _, c := range cols {
		for _, it := range list(t, store, storage.Query{CollectionID: c.ID, MaxTLP: storage.TLPRed, Versions: storage.VersionFilter{All: true}}) {
			if strings.Contains(string(it.JSON), secret) {
				t.Errorf("%s serves the RED attribute of a CLEAR indicator: %s", c.Alias, it.JSON)
			}
		}
	}
}

// TestTightenedItemTightensItsObservableAndRelationshipsEverywhere protects
// issue 9 #5: after GREEN → RED, a GREEN reader sees neither the value nor
// any relationship of the item in any collection.
func TestTightenedItemTightensItsObservableAndRelationshipsEverywhere(t *testing.T) {
	f, store, run, _ := newGraphFixture(t)
	ind, _ := pick(t, f)
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.SecurityLabels = labels("TLP:GREEN") }); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	obs := sco(t, f, ind)
	if len(served(t, store, storage.TLPGreen, obs)) == 0 {
		t.Fatal("GREEN indicator's observable is not served to a GREEN reader")
	}
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.SecurityLabels = labels("TLP:RED") }); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	if where := served(t, store, storage.TLPGreen, obs); len(where) != 0 {
		t.Errorf("after tightening to RED a GREEN reader is still served the observable or something naming it: %v", where)
	}
	cur, _ := f.sim.Indicator(ind.ID)
	objs, _ := f.mapper.Indicator(cur)
	if where := served(t, store, storage.TLPGreen, objs[0].ID); len(where) != 0 {
		t.Errorf("a GREEN reader is served the RED indicator or a relationship to it: %v", where)
	}
	checkGraph(t, f, store, "tightened")
}

// TestRelationshipLeavingAFilterIsNotRevoked protects §10's split between
// leaving and revoking: when a group tightens from GREEN to AMBER, the
// relationship of a GREEN indicator to it leaves the TLP:GREEN filter
// collection (withdrawn there) while the indicator stays, and its owner's
// collection serves a new AMBER version of it, not a revocation: the
// association still exists in ThreatConnect.
func TestRelationshipLeavingAFilterIsNotRevoked(t *testing.T) {
	f, store, run, _ := newGraphFixture(t)
	ind, g := pick(t, f)
	green := func(in *tcapi.Indicator) { in.SecurityLabels = labels("TLP:GREEN") }
	if err := f.sim.Modify(ind.ID, green); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.ModifyGroup(g.ID, func(gr *tcapi.Group) { gr.SecurityLabels = labels("TLP:GREEN") }); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Associate(ind.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	if found, revoked := relationshipState(t, f, store, ind, g); !found || revoked {
		t.Fatalf("GREEN indicator and group: relationship found %v, revoked %v", found, revoked)
	}
	objs, _ := f.mapper.Indicator(ind)
	if len(served(t, store, storage.TLPGreen, objs[0].ID)) == 0 {
		t.Fatal("the GREEN indicator is not served to a GREEN reader")
	}
	// The group tightens; the indicator stays GREEN (and in the filter)
	// and is read again.
	if err := f.sim.ModifyGroup(g.ID, func(gr *tcapi.Group) { gr.SecurityLabels = labels("TLP:AMBER") }); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.Description = "read again" }); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	if found, revoked := relationshipState(t, f, store, ind, g); !found || revoked {
		t.Errorf("after the group tightened to AMBER: relationship found %v, revoked %v in the owner's collection; want a live AMBER version", found, revoked)
	}
	if len(served(t, store, storage.TLPGreen, objs[0].ID)) == 0 {
		t.Error("the GREEN indicator is no longer served to a GREEN reader")
	}
	checkGraph(t, f, store, "group tightened to AMBER")
}

// TestPrivateItemLeavesNoTrace protects issue 9 #4: an indicator made
// private is revoked where it was published, and from then on nothing
// derived from it is published: no relationship from its groups' side, no
// container reference.
func TestPrivateItemLeavesNoTrace(t *testing.T) {
	f, store, run, rec := newGraphFixture(t)
	ind, g := pick(t, f)
	if err := f.sim.Associate(ind.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, rec)
	if found, _ := relationshipState(t, f, store, ind, g); !found {
		t.Fatal("association not published before the item turned private")
	}
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.PrivateFlag = true }); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	syncAgain(t, f, rec)
	if found, revoked := relationshipState(t, f, store, ind, g); found && !revoked {
		t.Error("the relationship of a private item is still live")
	}
	objs, _ := f.mapper.Indicator(ind)
	for _, it := range list(t, store, storage.Query{CollectionID: collectionID(t, store, ownerAliasOf(ind.OwnerName)), MaxTLP: 5}) {
		s := string(it.JSON)
		if strings.Contains(s, `"`+objs[0].ID+`"`) && !strings.Contains(s, `"revoked":true`) {
			t.Errorf("a live object names the private item: %s", s)
		}
	}
	checkGraph(t, f, store, "private")
}

// TestDeletedIndicatorRevokesItsRelationshipsAndLeavesContainers protects
// issue 9 #8 for indicators: every relationship it is an end of is revoked
// and no live container lists it.
func TestDeletedIndicatorRevokesItsRelationshipsAndLeavesContainers(t *testing.T) {
	f, store, run, rec := newGraphFixture(t)
	ind, g := pick(t, f)
	if err := f.sim.Associate(ind.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, rec)
	objs, _ := f.mapper.Indicator(ind)
	if err := f.sim.Delete(ind.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	cols, _ := store.Collections(context.Background())
	for _, c := range cols {
		for _, it := range list(t, store, storage.Query{CollectionID: c.ID, MaxTLP: 5}) {
			s := string(it.JSON)
			if strings.Contains(s, `"`+objs[0].ID+`"`) && !strings.Contains(s, `"revoked":true`) {
				t.Errorf("%s: a live object still names the deleted indicator: %s", c.Alias, s)
			}
		}
	}
	checkGraph(t, f, store, "deleted indicator")
}

// TestDeletedGroupIsRevokedByReconciliation protects issue 9 #8 for groups:
// ThreatConnect keeps no deleted list for groups; the reconciliation finds
// the group gone and revokes it and its relationships.
func TestDeletedGroupIsRevokedByReconciliation(t *testing.T) {
	f, store, run, rec := newGraphFixture(t)
	_, g := pick(t, f)
	gid := f.mapper.GroupID(g.Type, g.ID)
	if err := f.sim.DeleteGroup(g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	syncAgain(t, f, rec)
	col := collectionID(t, store, ownerAliasOf(g.OwnerName))
	its := list(t, store, storage.Query{CollectionID: col, MaxTLP: 5})
	found := false
	for _, it := range its {
		s := string(it.JSON)
		if it.ID == gid {
			found = true
			if !strings.Contains(s, `"revoked":true`) {
				t.Errorf("deleted group not revoked: %s", s)
			}
		} else if strings.Contains(s, `"`+gid+`"`) && !strings.Contains(s, `"revoked":true`) {
			t.Errorf("a live object still names the deleted group: %s", s)
		}
	}
	if !found {
		t.Error("deleted group no longer served at all: its revocation must be")
	}
}

// TestAssociationsTravelWithoutLastModified protects issue 9 #7: added and
// removed associations, which do not move lastModified, are found by the
// reconciliation (and not before: the simulator behaves like ThreatConnect).
func TestAssociationsTravelWithoutLastModified(t *testing.T) {
	f, store, run, rec := newGraphFixture(t)
	ind, g := pick(t, f)
	if err := f.sim.Associate(ind.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	if found, _ := relationshipState(t, f, store, ind, g); found {
		t.Fatal("an incremental sync saw an association that moved no lastModified: the simulator is too kind")
	}
	syncAgain(t, f, rec)
	if found, revoked := relationshipState(t, f, store, ind, g); !found || revoked {
		t.Fatalf("reconciliation: added association found %v, revoked %v", found, revoked)
	}
	if err := f.sim.Disassociate(ind.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, rec)
	if _, revoked := relationshipState(t, f, store, ind, g); !revoked {
		t.Error("reconciliation did not revoke a removed association")
	}
}

// TestCollectionsAreSelfContained protects issue 9 #9: with active_only,
// a type-filtered sync and a TLP filter collection, every reference of
// every served object resolves in its collection for every reader.
func TestCollectionsAreSelfContained(t *testing.T) {
	f := newFixture(t, 300, 30)
	store := openStore(t, "s.db")
	s := syncConfig()
	s.ActiveOnly = true
	s.IndicatorTypes = []string{tcapi.TypeHost, tcapi.TypeAddress, tcapi.TypeURL}
	w := f.worker(store, s, nil)
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkGraph(t, f, store, "filtered sync")
}

// redMemberOfGreenReport turns an indicator TLP:RED, files it in a new
// TLP:GREEN report of its owner and reconciles (a new association does not
// move lastModified). It returns the indicator and the report's STIX id.
func redMemberOfGreenReport(t *testing.T, f *fixture, rec func(context.Context) error) (tcapi.Indicator, string) {
	t.Helper()
	ind, _ := pick(t, f)
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.SecurityLabels = labels("TLP:RED") }); err != nil {
		t.Fatal(err)
	}
	rid, err := f.sim.AddGroup(tcapi.Group{Type: tcapi.GroupReport, Name: "green report", OwnerID: ind.OwnerID, OwnerName: ind.OwnerName,
		SecurityLabels: labels("TLP:GREEN")})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Associate(ind.ID, rid); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, rec)
	g, _ := f.sim.Group(rid)
	reportID := f.mapper.GroupID(g.Type, g.ID)
	return ind, reportID
}

// TestContainerNeverListsMembersAboveItsMarking protects issue 9 #3: a
// GREEN report associated with a RED indicator does not list it (nor its
// observable), so a GREEN reader cannot confirm a guessed value offline.
func TestContainerNeverListsMembersAboveItsMarking(t *testing.T) {
	f, store, _, rec := newGraphFixture(t)
	ind, reportID := redMemberOfGreenReport(t, f, rec)
	cur, _ := f.sim.Indicator(ind.ID)
	objs, _ := f.mapper.Indicator(cur)
	col := collectionID(t, store, ownerAliasOf(ind.OwnerName))
	it, ok := latest(t, store, col, reportID)
	if !ok {
		t.Fatal("report not published")
	}
	for _, r := range refs(t, it.JSON, "object_refs") {
		if r == objs[0].ID || r == sco(t, f, cur) {
			t.Errorf("GREEN report lists RED member %s: %s", r, it.JSON)
		}
	}
	if where := served(t, store, storage.TLPGreen, objs[0].ID); len(where) != 0 {
		t.Errorf("a GREEN reader is served the RED member or a reference to it: %v", where)
	}
	checkGraph(t, f, store, "green report, red member")
}

// TestObjectsWithoutModifiedAreVersionedByCreatedOrReplaced protects issue
// 9 #10: marking definitions are versioned by created, and an observable
// whose marking changes is replaced in place (one version).
func TestObjectsWithoutModifiedAreVersionedByCreatedOrReplaced(t *testing.T) {
	f, store, run, _ := newGraphFixture(t)
	col := collectionID(t, store, ownerAliasOf(tcsim.Owners()[0].Name))
	for _, it := range list(t, store, storage.Query{CollectionID: col, MaxTLP: 5, Types: []string{"marking-definition"}}) {
		if it.Created.IsZero() {
			t.Errorf("marking definition %s stored without its created time (versioned by date_added)", it.ID)
		}
	}
	ind, _ := pick(t, f)
	for _, l := range []string{"TLP:GREEN", "TLP:AMBER"} {
		if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.SecurityLabels = labels(l) }); err != nil {
			t.Fatal(err)
		}
		syncAgain(t, f, run)
	}
	obs := sco(t, f, ind)
	vs := list(t, store, storage.Query{CollectionID: collectionID(t, store, ownerAliasOf(ind.OwnerName)), MaxTLP: 5,
		IDs: []string{obs}, Versions: storage.VersionFilter{All: true}})
	if len(vs) != 1 {
		t.Errorf("observable has %d versions after two marking changes; want it replaced in place", len(vs))
	}
}

// TestStoreFromBeforeTheGraphIsBackfilled: a store written before the
// graph columns and edges existed (storage migration 0003 adds them empty)
// gets them filled on the next run, which reads everything once; the rule
// then holds and a further sync writes nothing.
func TestStoreFromBeforeTheGraphIsBackfilled(t *testing.T) {
	f := newFixture(t, 300, 30)
	path := filepath.Join(t.TempDir(), "old.db")
	store, err := storage.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.worker(store, syncConfig(), nil).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DELETE FROM edges", "UPDATE versions SET revoked = 0, tcid = 0", "DELETE FROM state WHERE key = 'tcsync/graph'"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	store, err = storage.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w := f.worker(store, syncConfig(), nil)
	f.clock.Advance(time.Hour)
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkGraph(t, f, store, "backfilled")
	f.clock.Advance(time.Hour)
	sum, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewVersions != 0 || sum.Revoked != 0 {
		t.Errorf("after the backfill a sync with nothing changed wrote %d versions, %d revocations", sum.NewVersions, sum.Revoked)
	}
}

// TestSharedObservableKeepsItsContent: two Email groups whose messages share
// the id properties (sender, subject, body) but not the date or recipient
// map to one email-message with two contents. Whichever is stored stays
// while the other item still names it, so a read in another order writes
// nothing (seen at 1M, where the simulator's hostile subjects repeat).
func TestSharedObservableKeepsItsContent(t *testing.T) {
	f := newFixture(t, 40, 4)
	store := openStore(t, "shared.db")
	s := syncConfig()
	s.PageSize = 1 // the two groups in two batches
	w := f.worker(store, s, nil)
	ctx := context.Background()
	owner := tcsim.Owners()[0]
	for i, to := range []string{"a@victim.example", "b@victim.example"} {
		f.clock.Advance(time.Duration(i+1) * 24 * time.Hour)
		if _, err := f.sim.AddGroup(tcapi.Group{Type: tcapi.GroupEmail, Name: fmt.Sprintf("same message %d", i),
			OwnerID: owner.ID, OwnerName: owner.Name, From: "sender@bad.example", To: to,
			EmailSubject: "one subject", Body: "one body"}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Hour)
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		f.clock.Advance(time.Hour)
		sum, err := w.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.NewVersions != 0 {
			t.Errorf("reconciliation %d with nothing changed wrote %d versions", i+1, sum.NewVersions)
		}
	}
	checkGraph(t, f, store, "shared observable")
}

// TestLoosenedMemberRejoinsItsContainer: a container lists a member again
// as soon as the member is published at most at the container's marking —
// here a RED indicator of a GREEN report turned GREEN — on the next
// incremental sync, although the report itself did not change (its
// membership travels through the store's wants, not through ThreatConnect's
// lastModified).
func TestLoosenedMemberRejoinsItsContainer(t *testing.T) {
	f, store, run, rec := newGraphFixture(t)
	ind, reportID := redMemberOfGreenReport(t, f, rec)
	col := collectionID(t, store, ownerAliasOf(ind.OwnerName))
	member := func() bool {
		cur, _ := f.sim.Indicator(ind.ID)
		objs, _ := f.mapper.Indicator(cur)
		it, ok := latest(t, store, col, reportID)
		if !ok {
			t.Fatal("report not published")
		}
		return slices.Contains(refs(t, it.JSON, "object_refs"), objs[0].ID)
	}
	if member() {
		t.Fatal("the GREEN report lists its RED member")
	}
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.SecurityLabels = labels("TLP:GREEN") }); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, run)
	if !member() {
		t.Error("the member turned GREEN is not listed by its GREEN report after the next sync")
	}
	checkGraph(t, f, store, "member loosened")
}

// TestCrossOwnerRelationshipIsStoredOnlyWhereItCanBeServed: a relationship
// between two owners' objects can never be served in either owner's
// collection (neither holds the other's objects or identity), so it is
// stored only in the collections that hold both ends, here the TLP:GREEN
// filter collection; removing the association still revokes it there.
func TestCrossOwnerRelationshipIsStoredOnlyWhereItCanBeServed(t *testing.T) {
	f, store, _, rec := newGraphFixture(t)
	atMostGreen := func(l tcapi.List[tcapi.SecurityLabel]) bool {
		for _, s := range l.Data {
			if s.Name != "TLP:CLEAR" && s.Name != "TLP:WHITE" && s.Name != "TLP:GREEN" {
				return false
			}
		}
		return true
	}
	var ind tcapi.Indicator
	var g tcapi.Group
	found := false
	for n := 1; n <= f.nInd && !found; n++ {
		i, ok := f.sim.Indicator(tcsim.IndicatorID(n))
		if !ok || !i.Active || i.PrivateFlag || i.Type != tcapi.TypeHost || !atMostGreen(i.SecurityLabels) {
			continue
		}
		for m := 1; m <= f.nGrp && !found; m++ {
			gr, ok := f.sim.Group(tcsim.GroupID(m))
			if ok && gr.OwnerName != i.OwnerName && atMostGreen(gr.SecurityLabels) &&
				(gr.Type == tcapi.GroupAdversary || gr.Type == tcapi.GroupMalware || gr.Type == tcapi.GroupIntrusionSet) {
				ind, g, found = i, gr, true
			}
		}
	}
	if !found {
		t.Fatal("no TLP:GREEN indicator and group of two owners in the simulator")
	}
	if err := f.sim.Associate(ind.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, rec)
	objs, err := f.mapper.Indicator(ind)
	if err != nil {
		t.Fatal(err)
	}
	gid := f.mapper.GroupID(g.Type, g.ID)
	rel := ""
	green := collectionID(t, store, greenFilter.Alias)
	for _, it := range list(t, store, storage.Query{CollectionID: green, MaxTLP: 5, Types: []string{"relationship"}}) {
		if s := string(it.JSON); strings.Contains(s, `"`+objs[0].ID+`"`) && strings.Contains(s, `"`+gid+`"`) {
			rel = it.ID
		}
	}
	if rel == "" {
		t.Fatalf("the filter collection serves no relationship between %s and %s", objs[0].ID, gid)
	}
	holding := func() []string {
		t.Helper()
		var aliases []string
		err := store.Update(context.Background(), func(tx *storage.Tx) error {
			held, err := tx.Holding([]string{rel})
			if err != nil {
				return err
			}
			cols, err := store.Collections(context.Background())
			if err != nil {
				return err
			}
			for _, c := range cols {
				if slices.Contains(held[rel], c.ID) {
					aliases = append(aliases, c.Alias)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(aliases)
		return aliases
	}
	if got := holding(); !slices.Equal(got, []string{greenFilter.Alias}) {
		t.Fatalf("the relationship of %s (%s) and %s (%s) is held by %v, want only %s",
			ind.OwnerName, objs[0].ID, g.OwnerName, gid, got, greenFilter.Alias)
	}
	// Only where it is held is it among what the indicator derives.
	var deriving []string
	err = store.Update(context.Background(), func(tx *storage.Tx) error {
		cols, err := store.Collections(context.Background())
		if err != nil {
			return err
		}
		for _, c := range cols {
			derived, err := tx.Targets(c.ID, storage.EdgeOrigin, []string{objs[0].ID})
			if err != nil {
				return err
			}
			if slices.Contains(derived[objs[0].ID], rel) {
				deriving = append(deriving, c.Alias)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deriving, []string{greenFilter.Alias}) {
		t.Errorf("the indicator's origins list the relationship in %v, want only %s", deriving, greenFilter.Alias)
	}
	// A store written before foreign relationships left the owner's
	// origins lists it there too; reading the indicator again (the lists
	// differ) must not revoke what the filter collection serves.
	ownerCol := collectionID(t, store, ownerAliasOf(ind.OwnerName))
	err = store.Update(context.Background(), func(tx *storage.Tx) error {
		derived, err := tx.Targets(ownerCol, storage.EdgeOrigin, []string{objs[0].ID})
		if err != nil {
			return err
		}
		_, err = tx.SetOrigins(ownerCol, map[string][]string{objs[0].ID: append(derived[objs[0].ID], rel)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Modify(ind.ID, func(in *tcapi.Indicator) { in.Description = "read again" }); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, rec)
	if it, ok := latest(t, store, green, rel); !ok || strings.Contains(string(it.JSON), `"revoked":true`) {
		t.Fatalf("an upgraded store's extra origin revoked the relationship the filter collection serves: %s", it.JSON)
	}
	if err := f.sim.Disassociate(ind.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	syncAgain(t, f, rec)
	it, ok := latest(t, store, green, rel)
	if !ok || !strings.Contains(string(it.JSON), `"revoked":true`) {
		t.Errorf("after the association was removed, the filter collection serves %s", it.JSON)
	}
	checkGraph(t, f, store, "cross-owner association removed")
}
