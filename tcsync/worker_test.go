package tcsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/taxii-bridge/taxii-bridge/kind"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tcsync"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcsim"
	"github.com/taxii-bridge/taxii-bridge/tlp"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// clock is a settable time shared by the simulator, the client and the worker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a simulator on loopback plus everything the worker needs.
type fixture struct {
	t      testing.TB
	clock  *clock
	sim    *tcsim.Simulator
	client *tcapi.Client
	mapper *stixmap.Mapper
	base   string
	nInd   int
	nGrp   int
}

func newFixture(t testing.TB, nInd, nGrp int) *fixture {
	t.Helper()
	// Later than every generated lastModified (the simulator's data starts in 2024).
	clk := &clock{t: time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)}
	sim, err := tcsim.New(tcsim.Options{Seed: 7, Indicators: nInd, Groups: nGrp, AccessID: "test-id", SecretKey: "test-secret", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	base := srv.URL + "/api"
	client, err := tcapi.New(tcapi.Options{BaseURL: base, AccessID: "test-id", SecretKey: "test-secret", Now: clk.Now,
		MaxRetries: 8, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 20 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond,
		Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Ids derive from the base URL: one fixed URL keeps them comparable across fixtures.
	m, err := stixmap.New(stixmap.Options{BaseURL: "https://tc.example/api"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, clock: clk, sim: sim, client: client, mapper: m, base: base, nInd: nInd, nGrp: nGrp}
}

func syncConfig() tcsync.Sync {
	s := tcsync.DefaultSync()
	s.FirstFetch = 0
	s.PageSize = 97
	s.Owners = []string{tcapi.AllOwners} // every simulator owner, not only the organization
	return s
}

var greenFilter = tcsync.Collection{Alias: "tlp-green", Title: "green", Kind: kind.Filter, Filter: tcsync.Filter{MaxTLP: tlp.Green}}

func (f *fixture) worker(store *storage.Store, s tcsync.Sync, progress func(tcsync.Progress)) *tcsync.Worker {
	f.t.Helper()
	return f.workerWith(store, s, []tcsync.Collection{greenFilter}, progress)
}

func (f *fixture) workerWith(store *storage.Store, s tcsync.Sync, cols []tcsync.Collection, progress func(tcsync.Progress)) *tcsync.Worker {
	f.t.Helper()
	w, err := tcsync.New(f.client, store, tcsync.Options{Sync: s, Collections: cols,
		PerOwnerCollections: true, Mapper: f.mapper, Now: f.clock.Now, Progress: progress})
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

func openStore(t *testing.T, name string) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openPostgresStore is openStore on PostgreSQL (TB_POSTGRES_URL), in a
// fresh schema; the test skips with a message without it.
func openPostgresStore(t *testing.T) *storage.Store {
	t.Helper()
	u, _ := pgtest.Schema(t, "tb_sync")
	s, err := storage.OpenPostgres(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// snapshot is a store's content: per collection alias, every version of every object.
type snapshot map[string]map[string][]string // alias → id → JSON of each version, oldest first

func takeSnapshot(t *testing.T, s *storage.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	cols, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshot{}
	for _, c := range cols {
		m := map[string][]string{}
		q := storage.Query{CollectionID: c.ID, Versions: storage.VersionFilter{All: true}, MaxTLP: 5, Limit: 5000}
		for {
			p, err := s.Objects(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				m[it.ID] = append(m[it.ID], string(it.JSON))
			}
			if !p.More {
				break
			}
			k := p.Items[len(p.Items)-1].Key
			q.After = &k
		}
		for _, v := range m {
			sort.Strings(v)
		}
		snap[c.Alias] = m
	}
	return snap
}

func (a snapshot) diff(b snapshot) string {
	for alias, objs := range a {
		other, ok := b[alias]
		if !ok {
			return "collection " + alias + " missing"
		}
		if len(objs) != len(other) {
			return fmt.Sprintf("collection %s: %d objects vs %d", alias, len(objs), len(other))
		}
		for id, vs := range objs {
			ws := other[id]
			if len(vs) != len(ws) {
				return fmt.Sprintf("%s in %s: %d versions vs %d", id, alias, len(vs), len(ws))
			}
			for i := range vs {
				if vs[i] != ws[i] {
					return fmt.Sprintf("%s in %s: version %d differs:\n%s\n%s", id, alias, i, vs[i], ws[i])
				}
			}
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d collections vs %d", len(a), len(b))
	}
	return ""
}

func latest(t *testing.T, s *storage.Store, colID, id string) (storage.Item, bool) {
	t.Helper()
	p, err := s.Objects(context.Background(), storage.Query{CollectionID: colID, IDs: []string{id}, MaxTLP: 5, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) == 0 {
		return storage.Item{}, false
	}
	return p.Items[len(p.Items)-1], true
}

func field(t *testing.T, js []byte, key string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatalf("stored JSON does not parse: %v\n%s", err, js)
	}
	return m[key]
}

func primary(objs []stixmap.Object, typ string) (stixmap.Object, bool) {
	for _, o := range objs {
		if o.Type == typ {
			return o, true
		}
	}
	return stixmap.Object{}, false
}

func collectionID(t *testing.T, s *storage.Store, alias string) string {
	t.Helper()
	c, err := s.Collection(context.Background(), alias)
	if err != nil {
		t.Fatalf("collection %s: %v", alias, err)
	}
	return c.ID
}

// Every in-scope indicator is the latest version in its owner's collection,
// with the pattern, observable and marking the mapper gives it; out-of-scope
// ones are nowhere; the TLP:GREEN filter collection holds exactly what its
// filter selects (issue 5 acceptance, first point).
func TestWorker_InitialSync(t *testing.T) {
	f := newFixture(t, 600, 60)
	store := openStore(t, "a.db")
	w := f.worker(store, syncConfig(), nil)
	sum, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewVersions == 0 || sum.Skipped["private"] == 0 {
		t.Fatalf("summary %+v: want new versions and private items skipped", sum)
	}
	green := collectionID(t, store, "tlp-green")
	inScope, checked := 0, 0
	for n := 1; n <= f.nInd; n++ {
		ind, ok := f.sim.Indicator(tcsim.IndicatorID(n))
		if !ok {
			t.Fatalf("simulator lost indicator %d", n)
		}
		objs, err := f.mapper.Indicator(ind)
		if err != nil {
			continue // hostile values the mapper refuses are counted as unmappable
		}
		sdo, ok := primary(objs, "indicator")
		if !ok {
			continue
		}
		owner := collectionID(t, store, tcsync.OwnerAlias(ind.OwnerName, nil))
		got, found := latest(t, store, owner, sdo.ID)
		want := ind.Active && !ind.PrivateFlag
		if found != want {
			t.Errorf("indicator %d (active=%v private=%v): stored=%v", ind.ID, ind.Active, ind.PrivateFlag, found)
			continue
		}
		if !found {
			if _, inGreen := latest(t, store, green, sdo.ID); inGreen {
				t.Errorf("out-of-scope indicator %d is in tlp-green", ind.ID)
			}
			continue
		}
		inScope++
		for _, k := range []string{"pattern", "object_marking_refs", "valid_from", "created_by_ref"} {
			if g, w := fmt.Sprint(field(t, got.JSON, k)), fmt.Sprint(field(t, sdo.JSON, k)); g != w {
				t.Errorf("indicator %d %s = %s; want %s", ind.ID, k, g, w)
			}
		}
		for _, o := range objs {
			if o.Type == "relationship" && o.TCID == ind.ID {
				if _, ok := latest(t, store, owner, o.ID); !ok && field(t, o.JSON, "relationship_type") == "based-on" {
					t.Errorf("indicator %d: based-on relationship %s missing", ind.ID, o.ID)
				}
			}
			if o.Modified.IsZero() && o.Type != "marking-definition" { // the observable
				if _, ok := latest(t, store, owner, o.ID); !ok {
					t.Errorf("indicator %d: observable %s missing", ind.ID, o.ID)
				}
			}
		}
		_, inGreen := latest(t, store, green, sdo.ID)
		if wantGreen := sdo.TLP <= tlp.Green; inGreen != wantGreen {
			t.Errorf("indicator %d marked %v: in tlp-green=%v, want %v", ind.ID, sdo.TLP, inGreen, wantGreen)
		}
		checked++
	}
	if inScope < f.nInd/2 || checked == 0 {
		t.Fatalf("only %d of %d indicators in scope", inScope, f.nInd)
	}
	// Groups: every non-private group's SDO is in its owner's collection.
	for n := 1; n <= f.nGrp; n++ {
		g, _ := f.sim.Group(tcsim.GroupID(n))
		objs, err := f.mapper.Group(g)
		if err != nil || len(objs) == 0 {
			continue
		}
		sdo := objs[0]
		for _, o := range objs {
			if o.TCID == g.ID && o.Type != "relationship" && !o.Modified.IsZero() {
				sdo = o
				break
			}
		}
		owner := collectionID(t, store, tcsync.OwnerAlias(g.OwnerName, nil))
		if _, ok := latest(t, store, owner, sdo.ID); !ok {
			t.Errorf("group %d (%s) not stored as %s", g.ID, g.Type, sdo.ID)
		}
	}
	// No object above GREEN in the green collection, and every marking it references is in it.
	snap := takeSnapshot(t, store)
	for id, vs := range snap["tlp-green"] {
		for _, v := range vs {
			for _, ref := range refs(t, []byte(v), "object_marking_refs") {
				if _, ok := snap["tlp-green"][ref]; !ok {
					t.Errorf("%s references marking %s that tlp-green does not hold", id, ref)
				}
			}
		}
	}
}

func refs(t *testing.T, js []byte, key string) []string {
	v, _ := field(t, js, key).([]any)
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// A resync of an unchanged ThreatConnect writes nothing (DESIGN.md §7, taxii21.md D-4).
func TestWorker_ResyncWritesNothing(t *testing.T) {
	f := newFixture(t, 300, 30)
	store := openStore(t, "a.db")
	w := f.worker(store, syncConfig(), nil)
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, store)
	f.clock.Advance(time.Hour)
	sum, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewVersions != 0 || sum.Revoked != 0 {
		t.Errorf("resync wrote %d versions, %d revocations; want none (%+v)", sum.NewVersions, sum.Revoked, sum)
	}
	// A full re-read (a scope change restarts the streams) writes nothing either.
	s := syncConfig()
	s.Owners = nil // the owners by name: a different scope from "*"
	for _, o := range tcsim.Owners() {
		s.Owners = append(s.Owners, o.Name)
	}
	sum, err = f.worker(store, s, nil).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewVersions != 0 || sum.Fetched < f.nInd/2 {
		t.Errorf("full re-read: %+v; want everything fetched again and nothing written", sum)
	}
	if d := before.diff(takeSnapshot(t, store)); d != "" {
		t.Error(d)
	}
}

// After modify, deactivate, delete, add and re-associate, one sync makes
// exactly the expected new versions visible via added_after (issue 5).
func TestWorker_Incremental(t *testing.T) {
	f := newFixture(t, 400, 40)
	store := openStore(t, "a.db")
	s := syncConfig()
	w := f.worker(store, s, nil)
	ctx := context.Background()
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// Pick active, public, mappable indicators of the organization.
	var picks []tcapi.Indicator
	for n := 1; n <= f.nInd && len(picks) < 4; n++ {
		ind, _ := f.sim.Indicator(tcsim.IndicatorID(n))
		if !ind.Active || ind.PrivateFlag || ind.Type != tcapi.TypeHost {
			continue
		}
		if _, err := f.mapper.Indicator(ind); err == nil {
			picks = append(picks, ind)
		}
	}
	if len(picks) < 4 {
		t.Fatalf("only %d candidate indicators", len(picks))
	}
	mod, deact, del, assoc := picks[0], picks[1], picks[2], picks[3]
	f.clock.Advance(2 * time.Hour)
	mark := time.Now()
	time.Sleep(2 * time.Millisecond)
	if err := f.sim.Modify(mod.ID, func(in *tcapi.Indicator) { in.Description = "changed by the test"; in.Confidence = ptr(88) }); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Deactivate(deact.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Delete(del.ID); err != nil {
		t.Fatal(err)
	}
	added, err := f.sim.Add(tcapi.Indicator{Type: tcapi.TypeHost, HostName: "new-test-host.example", Active: true,
		SecurityLabels: tcapi.List[tcapi.SecurityLabel]{Data: []tcapi.SecurityLabel{{Name: "TLP:GREEN"}}}})
	if err != nil {
		t.Fatal(err)
	}
	// A group of the same owner: a relationship whose ends live in two
	// owners' collections resolves in neither and is not published (§10).
	groupN := 0
	for n := 1; n <= f.nGrp; n++ {
		if g, ok := f.sim.Group(tcsim.GroupID(n)); ok && g.OwnerName == assoc.OwnerName && !slices.Contains([]string{tcapi.GroupReport, tcapi.GroupDocument,
			tcapi.GroupEvent, tcapi.GroupEmail, tcapi.GroupTactic, tcapi.GroupTask}, g.Type) {
			groupN = n
			break
		}
	}
	if groupN == 0 {
		t.Fatal("no group of the indicator's owner to associate")
	}
	if err := f.sim.Associate(assoc.ID, tcsim.GroupID(groupN)); err != nil {
		t.Fatal(err)
	}
	// Associations do not bump lastModified in ThreatConnect (threatconnect-v3.md §9.7); touch it as an analyst would.
	if err := f.sim.Modify(assoc.ID, func(*tcapi.Indicator) {}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	sum, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// What became visible after mark, in every collection.
	newIDs := map[string]int{} // id → versions added, summed over owner collections
	cols, err := store.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if c.Kind != kind.Owner {
			continue
		}
		q := storage.Query{CollectionID: c.ID, AddedAfter: mark.UnixMicro(), Versions: storage.VersionFilter{All: true}, MaxTLP: 5, Limit: 1000}
		p, err := store.Objects(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			newIDs[it.ID]++
		}
	}
	id := func(ind tcapi.Indicator) string {
		cur, _ := f.sim.Indicator(ind.ID)
		if cur.ID == 0 {
			cur = ind
		}
		objs, err := f.mapper.Indicator(cur)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := primary(objs, "indicator")
		return o.ID
	}
	colOf := func(ind tcapi.Indicator) string { return collectionID(t, store, tcsync.OwnerAlias(ind.OwnerName, nil)) }
	for _, want := range []struct {
		name string
		ind  tcapi.Indicator
		key  string
		val  any
	}{
		{"modified", mod, "confidence", float64(88)},
		{"deactivated", deact, "x_threatconnect_active", false},
		{"deleted", del, "revoked", true},
	} {
		sid := id(want.ind)
		if newIDs[sid] != 1 {
			t.Errorf("%s indicator: %d new versions visible via added_after; want 1", want.name, newIDs[sid])
		}
		it, _ := latest(t, store, colOf(want.ind), sid)
		if got := field(t, it.JSON, want.key); got != want.val {
			t.Errorf("%s indicator: %s = %v; want %v\n%s", want.name, want.key, got, want.val, it.JSON)
		}
	}
	if deactIt, _ := latest(t, store, colOf(deact), id(deact)); field(t, deactIt.JSON, "valid_until") == nil {
		t.Errorf("deactivated indicator has no valid_until: %s", deactIt.JSON)
	}
	addedInd, _ := f.sim.Indicator(added)
	if newIDs[id(addedInd)] != 1 {
		t.Errorf("added indicator: %d versions visible; want 1", newIDs[id(addedInd)])
	}
	// The re-associated indicator: a relationship to the group is new.
	g, _ := f.sim.Group(tcsim.GroupID(groupN))
	gid := f.mapper.GroupID(g.Type, g.ID)
	foundRel := false
	for nid := range newIDs {
		if it, ok := latest(t, store, colOf(assoc), nid); ok && field(t, it.JSON, "type") == "relationship" &&
			(field(t, it.JSON, "target_ref") == gid || field(t, it.JSON, "source_ref") == gid) {
			foundRel = true
		}
	}
	if !foundRel {
		t.Errorf("no new relationship to group %s after the association (new ids %v)", gid, newIDs)
	}
	// Nothing else changed: every other new object is an observable or relationship of these items.
	// The only revocations are the deleted indicator's and those of the
	// relationships it was an end of (issue 9 #8).
	delIDs, err := f.mapper.DeletedIndicatorIDs(tcapi.DeletedIndicator{OwnerName: del.OwnerName, Type: del.Type, Summary: del.Summary})
	if err != nil {
		t.Fatal(err)
	}
	revokedIDs := map[string]bool{}
	snapAfter := takeSnapshot(t, store)
	for _, objs := range snapAfter {
		for oid, vs := range objs {
			last := vs[len(vs)-1]
			for _, v := range vs {
				if field(t, []byte(v), "modified") != nil && fmt.Sprint(field(t, []byte(v), "modified")) > fmt.Sprint(field(t, []byte(last), "modified")) {
					last = v
				}
			}
			if field(t, []byte(last), "revoked") == true {
				end := field(t, []byte(last), "source_ref") == delIDs[0] || field(t, []byte(last), "target_ref") == delIDs[0]
				if !slices.Contains(delIDs, oid) && !end {
					t.Errorf("%s was revoked; only the deleted indicator and its relationships should be:\n%s", oid, strings.Join(vs, "\n"))
				}
				revokedIDs[oid] = true
			}
		}
	}
	// The summary also counts revocations of relationships no collection
	// publishes (an end in another owner's collection).
	if sum.Revoked < len(revokedIDs) || len(revokedIDs) < 2 {
		t.Errorf("summary says %d revocations; the store serves %d revoked objects", sum.Revoked, len(revokedIDs))
	}
	unchanged := takeSnapshot(t, store)
	f.clock.Advance(time.Hour)
	if sum, err := w.RunOnce(ctx); err != nil || sum.NewVersions != 0 {
		t.Errorf("second incremental run: %+v, %v; want no new versions", sum, err)
	}
	if d := unchanged.diff(takeSnapshot(t, store)); d != "" {
		t.Error(d)
	}
}

func ptr[T any](v T) *T { return &v }

// Cancelling a sync mid-batch and resuming converges to the same store as an
// uninterrupted run (issue 5, crash safety).
func TestWorker_CancelAndResumeConverges(t *testing.T) {
	f := newFixture(t, 500, 50)
	ref := openStore(t, "ref.db")
	if _, err := f.worker(ref, syncConfig(), nil).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := takeSnapshot(t, ref)

	for _, stopAfter := range []int{1, 3, 5} {
		t.Run(fmt.Sprint("after", stopAfter), func(t *testing.T) {
			store := openStore(t, "crash.db")
			ctx, cancel := context.WithCancel(context.Background())
			batches := 0
			w := f.worker(store, syncConfig(), func(tcsync.Progress) {
				batches++
				if batches == stopAfter {
					cancel()
				}
			})
			if _, err := w.RunOnce(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v; want context.Canceled", err)
			}
			cancel()
			// A fresh worker (as after a restart) resumes.
			if _, err := f.worker(store, syncConfig(), nil).RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if d := want.diff(takeSnapshot(t, store)); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// Faults from ThreatConnect delay the sync but lose nothing (issue 5).
func TestWorker_FaultsLoseNothing(t *testing.T) {
	f := newFixture(t, 400, 40)
	ref := openStore(t, "ref.db")
	if _, err := f.worker(ref, syncConfig(), nil).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := takeSnapshot(t, ref)

	store := openStore(t, "faulty.db")
	calls := 0
	w := f.worker(store, syncConfig(), func(tcsync.Progress) {
		calls++
		switch calls % 4 {
		case 0:
			f.sim.Fail(2, tcsim.Fault{Kind: tcsim.FaultStatus, Status: 503})
		case 1:
			f.sim.Fail(1, tcsim.Fault{Kind: tcsim.FaultRateLimit, RetryAfter: time.Second})
		case 2:
			f.sim.Fail(1, tcsim.Fault{Kind: tcsim.FaultTruncate})
		case 3:
			f.sim.Fail(1, tcsim.Fault{Kind: tcsim.FaultSlow, Delay: 20 * time.Millisecond})
		}
	})
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := want.diff(takeSnapshot(t, store)); d != "" {
		t.Fatal(d)
	}

	// Beyond the retry limit the run fails with a clear error and keeps what it committed.
	store2 := openStore(t, "fail.db")
	f.sim.Fail(100, tcsim.Fault{Kind: tcsim.FaultStatus, Status: 500})
	_, err := f.worker(store2, syncConfig(), nil).RunOnce(context.Background())
	f.sim.ClearFaults()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("500")) {
		t.Fatalf("persistent 500s: err = %v; want an error naming the status", err)
	}
	if _, err := f.worker(store2, syncConfig(), nil).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := want.diff(takeSnapshot(t, store2)); d != "" {
		t.Fatal(d)
	}
}

func TestOwnerAlias(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Demo Organization", "demo-organization"},
		{"  ACME  Threat--Intel ", "acme-threat-intel"},
		{"tlp-green", "owner-tlp-green"},
	}
	taken := func(a string) bool { return a == "tlp-green" }
	for _, tt := range tests {
		if got := tcsync.OwnerAlias(tt.in, taken); got != tt.want {
			t.Errorf("OwnerAlias(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
	// Names with nothing sluggable still get distinct, stable aliases.
	a, b := tcsync.OwnerAlias("日本", nil), tcsync.OwnerAlias("中国", nil)
	if a == b || a == "" || a != tcsync.OwnerAlias("日本", nil) {
		t.Errorf("non-ASCII owners: %q, %q", a, b)
	}
}

// A filter collection holds exactly the objects its filter selects, and
// values on the exclusion list are published nowhere (issue 5).
func TestWorker_FilterCollectionAndExclusions(t *testing.T) {
	f := newFixture(t, 500, 50)
	store := openStore(t, "a.db")
	var excluded tcapi.Indicator
	for n := 1; n <= f.nInd; n++ {
		ind, _ := f.sim.Indicator(tcsim.IndicatorID(n))
		if ind.Type == tcapi.TypeHost && ind.Active && !ind.PrivateFlag {
			excluded = ind
			break
		}
	}
	s := syncConfig()
	s.Exclusions.Values = []string{excluded.HostName}
	apt := tcsync.Collection{Alias: "apt28-org", Title: "apt28-org", Kind: kind.Filter, Filter: tcsync.Filter{Owners: []string{"Demo Organization"},
		Tags: []string{"apt28"}, MinConfidence: 30, STIXTypes: []string{"indicator"}}}
	w := f.workerWith(store, s, []tcsync.Collection{apt}, nil)
	sum, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped["excluded"] != 1 {
		t.Errorf("skipped %v; want exactly one excluded", sum.Skipped)
	}
	snap := takeSnapshot(t, store)
	want := map[string]bool{}
	for n := 1; n <= f.nInd; n++ {
		ind, _ := f.sim.Indicator(tcsim.IndicatorID(n))
		objs, err := f.mapper.Indicator(ind)
		if err != nil {
			continue
		}
		sdo, ok := primary(objs, "indicator")
		if !ok {
			continue
		}
		if ind.ID == excluded.ID {
			for alias, objs := range snap {
				if _, ok := objs[sdo.ID]; ok {
					t.Errorf("excluded indicator %s is in %s", excluded.HostName, alias)
				}
			}
			continue
		}
		conf := 0
		if ind.Confidence != nil {
			conf = *ind.Confidence
		}
		tagged := false
		for _, tg := range ind.Tags.Data {
			tagged = tagged || strings.EqualFold(tg.Name, "APT28")
		}
		if ind.Active && !ind.PrivateFlag && ind.OwnerName == "Demo Organization" && tagged && conf >= 30 {
			want[sdo.ID] = true
		}
	}
	if len(want) == 0 {
		t.Fatal("the simulator data selects nothing for the filter; the test proves nothing")
	}
	for id := range snap["apt28-org"] {
		typ, _, _ := strings.Cut(id, "--")
		switch {
		case typ == "marking-definition" || typ == "identity" || typ == "extension-definition":
		case typ != "indicator":
			t.Errorf("%s is in a collection filtered to indicators", id)
		case !want[id]:
			t.Errorf("%s is in the filter collection but does not match the filter", id)
		}
	}
	for id := range want {
		if _, ok := snap["apt28-org"][id]; !ok {
			t.Errorf("%s matches the filter but is not in the collection", id)
		}
	}
}

// Two ThreatConnect items that map to one STIX id (same owner, type and
// normalised value) do not make the object flip between them: the older
// item keeps it and the newer one is skipped and counted.
func TestWorker_DuplicateValueKeepsOlderItem(t *testing.T) {
	f := newFixture(t, 200, 20)
	store := openStore(t, "a.db")
	w := f.worker(store, syncConfig(), nil)
	ctx := context.Background()
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var orig tcapi.Indicator
	for n := 1; n <= f.nInd; n++ {
		ind, _ := f.sim.Indicator(tcsim.IndicatorID(n))
		if ind.Type == tcapi.TypeHost && ind.Active && !ind.PrivateFlag {
			orig = ind
			break
		}
	}
	dup, err := f.sim.Add(tcapi.Indicator{Type: tcapi.TypeHost, HostName: strings.ToUpper(orig.HostName), Active: true,
		OwnerID: orig.OwnerID, OwnerName: orig.OwnerName})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := f.mapper.Indicator(orig)
	if err != nil {
		t.Fatal(err)
	}
	sdo, _ := primary(objs, "indicator")
	col := collectionID(t, store, tcsync.OwnerAlias(orig.OwnerName, nil))
	for i := 0; i < 3; i++ {
		f.clock.Advance(time.Hour)
		if err := f.sim.Modify(dup, func(in *tcapi.Indicator) { in.Description = fmt.Sprint("edit ", i) }); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		sum, err := w.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Skipped["duplicate_value"] != 1 || sum.NewVersions != 0 {
			t.Errorf("run %d: %+v; want the duplicate skipped and nothing written", i, sum)
		}
		it, _ := latest(t, store, col, sdo.ID)
		if got := field(t, it.JSON, "x_threatconnect_id"); got != strconv.FormatInt(orig.ID, 10) {
			t.Errorf("run %d: %s belongs to TC item %v; want the older %d", i, sdo.ID, got, orig.ID)
		}
	}
}

// One observable from items with different markings (here the same host
// under two owners, both in the TLP:GREEN collection) keeps the least
// restrictive marking and is not rewritten by every pass (a full re-read
// writes nothing).
func TestWorker_SharedObservableIsStable(t *testing.T) {
	f := newFixture(t, 50, 5)
	owners := tcsim.Owners()
	label := func(name string) tcapi.List[tcapi.SecurityLabel] {
		return tcapi.List[tcapi.SecurityLabel]{Data: []tcapi.SecurityLabel{{Name: name}}}
	}
	for i, l := range []string{"TLP:GREEN", "TLP:CLEAR"} {
		if _, err := f.sim.Add(tcapi.Indicator{Type: tcapi.TypeHost, HostName: "shared.example", Active: true,
			OwnerID: owners[i].ID, OwnerName: owners[i].Name, SecurityLabels: label(l)}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Minute) // into the first window, which ends at the sync's start
	store := openStore(t, "a.db")
	s := syncConfig()
	ctx := context.Background()
	if _, err := f.worker(store, s, nil).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, store)
	var sco string
	for id, vs := range before["tlp-green"] {
		if strings.HasPrefix(id, "domain-name--") && strings.Contains(vs[len(vs)-1], `"shared.example"`) {
			sco = vs[len(vs)-1]
		}
	}
	if !strings.Contains(sco, "613f2e26-407d-48c7-9eca-b8e91df99dc9") { // TLP 1.0 white = CLEAR in compat mode
		t.Errorf("shared observable should carry the least restrictive (CLEAR) marking: %s", sco)
	}
	s.Owners = nil // the owners by name: a different scope from "*"
	for _, o := range owners {
		s.Owners = append(s.Owners, o.Name)
	}
	f.clock.Advance(time.Hour)
	sum, err := f.worker(store, s, nil).RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NewVersions != 0 {
		t.Errorf("full re-read wrote %d versions; want none", sum.NewVersions)
	}
	if d := before.diff(takeSnapshot(t, store)); d != "" {
		t.Error(d)
	}
}

// A deletion made before the sync filters change is still revoked: the
// deleted stream does not restart with the others.
func TestWorker_DeletionSurvivesScopeChange(t *testing.T) {
	f := newFixture(t, 100, 10)
	store := openStore(t, "a.db")
	ctx := context.Background()
	s := syncConfig()
	if _, err := f.worker(store, s, nil).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var del tcapi.Indicator
	for n := 1; n <= f.nInd; n++ {
		ind, _ := f.sim.Indicator(tcsim.IndicatorID(n))
		if ind.Type == tcapi.TypeHost && ind.Active && !ind.PrivateFlag {
			del = ind
			break
		}
	}
	f.clock.Advance(time.Hour)
	if err := f.sim.Delete(del.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	s.Owners = nil // the owners by name: a different scope from "*"
	for _, o := range tcsim.Owners() {
		s.Owners = append(s.Owners, o.Name)
	}
	sum, err := f.worker(store, s, nil).RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := f.mapper.Indicator(del)
	sdo, _ := primary(objs, "indicator")
	it, ok := latest(t, store, collectionID(t, store, tcsync.OwnerAlias(del.OwnerName, nil)), sdo.ID)
	if !ok || field(t, it.JSON, "revoked") != true {
		t.Errorf("deleted indicator not revoked after a scope change (%+v): %s", sum, it.JSON)
	}
}
