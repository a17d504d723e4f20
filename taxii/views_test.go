package taxii

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// Regression tests of issue 9 points 1 and 6 (TAXII side): exact-case POST
// decoding and the reader views of a TLP-capped principal.
//
// Tests marked "needs the storage membership change" depend on the lead's
// storage change (storage.Query.MaxTLP hides an object in every mode when
// its latest version in the collection is above the cap) and fail on this
// branch until it is merged.

// postOne posts one object as who and returns the status.
func (f *fixture) postOne(who, alias, obj string) statusResp {
	f.t.Helper()
	w := f.post(who, alias, envelopeOf(obj, string(stixObj{typ: "ipv4-addr", n: 999}.raw())))
	wantStatus(f.t, w, http.StatusAccepted)
	return decode[statusResp](f.t, w)
}

// indicatorWith is indicator n with extra raw JSON members appended.
func indicatorWith(n int, extra string) string {
	raw := string(ind(n, 0, "").raw())
	return raw[:len(raw)-1] + "," + extra + "}"
}

// Issue 9 point 1: "OBJECT_MARKING_REFS": [] beside a RED object_marking_refs
// used to override it (Go's case-insensitive decoding), so a GREEN reader
// saw a RED object. Now such an object is a failure in the status and is
// not stored, in either order, and a case variant alone is not a STIX
// property.
func TestPOSTCaseVariantMarkingCannotUnmarkObject(t *testing.T) {
	onBackends(t, testPOSTCaseVariantMarkingCannotUnmarkObject)
}

func testPOSTCaseVariantMarkingCannotUnmarkObject(t *testing.T) {
	f := newFixture(t)
	variants := []string{
		`"object_marking_refs":["` + tlpRed + `"],"OBJECT_MARKING_REFS":[]`,
		`"OBJECT_MARKING_REFS":[],"object_marking_refs":["` + tlpRed + `"]`,
		`"object_marking_refs":["` + tlpRed + `"],"Object_Marking_Refs":["` + tlpGreen + `"]`,
		`"object_marking_refs":["` + tlpRed + `"],"\u006fbject_marking_refs":[]`, // an escaped exact duplicate
		`"object_marking_refs":["` + tlpRed + `"],"object_marking_refs":[]`,
		`"OBJECT_MARKING_REFS":["` + tlpGreen + `"]`,
		`"object_marking_refs":["` + tlpRed + `"],"granular_markings":[{"marking_ref":"` + tlpRed + `","MARKING_REF":"` + tlpGreen + `","selectors":["name"]}]`,
	}
	for i, v := range variants {
		n := 100 + i
		st := f.postOne("alice", "submissions", indicatorWith(n, v))
		if *st.FailureCount != 1 || len(st.Failures) != 1 || st.Failures[0].Message == "" {
			t.Errorf("variant %d (%s): status %+v, want one failure with a reason", i, v, st)
			continue
		}
		for _, who := range []string{"greg", "alice"} {
			wantError(t, f.get(who, f.colPath("submissions", "objects/"+stixID("indicator", n)+"/")), http.StatusNotFound, "")
		}
	}
	// The exact-case marking alone is honoured: greg cannot see it.
	f.postOne("alice", "submissions", indicatorWith(1, `"object_marking_refs":["`+tlpRed+`"]`))
	wantStatus(t, f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", 1)+"/")), http.StatusOK)
	wantError(t, f.get("greg", f.colPath("submissions", "objects/"+stixID("indicator", 1)+"/")), http.StatusNotFound, "")
	if w := f.get("greg", f.colPath("submissions", "objects/")); strings.Contains(w.Body.String(), stixID("indicator", 1)) {
		t.Errorf("greg lists a RED object: %s", w.Body.String())
	}
}

// Issue 9 point 1: "TYPE" (or "Type", or a Unicode case variant) beside
// "type" used to override it; now the object is a failure, and invalid STIX
// is never stored.
func TestPOSTCaseVariantTypeIsRefused(t *testing.T) {
	f := newFixture(t)
	for i, v := range []string{`"TYPE":"malware"`, `"Type":"indicator"`, `"ſpec_version":"2.0"`, `"x_\u212Aey":1,"x_key":2`} {
		n := 200 + i
		st := f.postOne("alice", "submissions", indicatorWith(n, v))
		if *st.FailureCount != 1 || !strings.Contains(st.Failures[0].Message, "twice") && !strings.Contains(st.Failures[0].Message, "not a STIX property name") {
			t.Errorf("%s: status %+v", v, st)
		}
		wantError(t, f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", n)+"/")), http.StatusNotFound, "")
	}
}

// Issue 9 point 1: a duplicate key is a failure of that object only, not of
// the envelope: the other objects are stored (S-8.8: 202 with failures).
func TestPOSTDuplicateKeyFailsOnlyThatObject(t *testing.T) {
	f := newFixture(t)
	good := string(ind(1, 0, "").raw())
	dup := indicatorWith(2, `"name":"again"`)
	nested := indicatorWith(3, `"x_dict":{"k":1,"K":2}`)
	w := f.post("alice", "submissions", envelopeOf(good, dup, nested))
	wantStatus(t, w, http.StatusAccepted)
	st := decode[statusResp](t, w)
	if *st.SuccessCount != 1 || *st.FailureCount != 2 {
		t.Fatalf("status %s", w.Body.String())
	}
	for _, d := range st.Failures {
		if !strings.Contains(d.Message, "appears twice") {
			t.Errorf("failure %+v does not name the repeated property", d)
		}
	}
	wantStatus(t, f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", 1)+"/")), http.StatusOK)
}

// Issue 9 point 1: the whole object must be valid for its type before it is
// stored.
func TestPOSTObjectMustBeValidForItsType(t *testing.T) {
	const id = `"id":"indicator--00000000-0000-4000-8000-000000000301"`
	const common = `"type":"indicator",` + id + `,"spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z"`
	bad := map[string]string{
		"no pattern":             `{` + common + `,"pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"}`,
		"lower-case t":           `{"type":"indicator",` + id + `,"spec_version":"2.1","created":"2025-01-01t00:00:00Z","modified":"2025-01-01T00:00:00Z","pattern":"x","pattern_type":"stix","valid_from":"x"}`,
		"ten fraction digits":    `{"type":"indicator",` + id + `,"spec_version":"2.1","created":"2025-01-01T00:00:00.0123456789Z","modified":"2025-01-01T00:00:00Z","pattern":"x","pattern_type":"stix","valid_from":"x"}`,
		"offset timestamp":       `{"type":"indicator",` + id + `,"spec_version":"2.1","created":"2025-01-01T00:00:00+00:00","modified":"2025-01-01T00:00:00Z","pattern":"x","pattern_type":"stix","valid_from":"x"}`,
		"upper-case uuid":        `{"type":"indicator","id":"indicator--0000000A-0000-4000-8000-000000000301","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z","pattern":"x","pattern_type":"stix","valid_from":"x"}`,
		"non-RFC 4122 uuid":      `{"type":"indicator","id":"indicator--00000000-0000-4000-0000-000000000301","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z","pattern":"x","pattern_type":"stix","valid_from":"x"}`,
		"spec_version a number":  `{"type":"indicator",` + id + `,"spec_version":2.1,"created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z","pattern":"x","pattern_type":"stix","valid_from":"x"}`,
		"marking not an id":      `{` + common + `,"pattern":"x","pattern_type":"stix","valid_from":"x","object_marking_refs":["TLP:RED"]}`,
		"markings not a list":    `{` + common + `,"pattern":"x","pattern_type":"stix","valid_from":"x","object_marking_refs":"` + tlpRed + `"}`,
		"relationship no ends":   `{"type":"relationship","id":"relationship--00000000-0000-4000-8000-000000000302","spec_version":"2.1","created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z","relationship_type":"x"}`,
		"SCO without value":      `{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000303","spec_version":"2.1"}`,
		"upper-case custom prop": `{` + common + `,"pattern":"x","pattern_type":"stix","valid_from":"x","x_Foo":1}`,
	}
	for name, obj := range bad {
		t.Run(name, func(t *testing.T) {
			obj, _, err := checkObject([]byte(obj))
			if err == nil {
				t.Errorf("accepted %s", obj.JSON)
			}
		})
	}
}

// Issue 9 point 6: an object whose latest version is above a capped
// reader's TLP answers exactly like an absent object: 404 on GET object and
// versions under every version filter, the same error resource, and no
// trace in any listing, manifest or versions list, whatever the filter.
// Needs the storage membership change.
func TestCappedReaderGetsNotFoundForHiddenObject(t *testing.T) {
	onBackends(t, testCappedReaderGetsNotFoundForHiddenObject)
}

func testCappedReaderGetsNotFoundForHiddenObject(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, tlpGreen))
	f.put("intel", ind(1, 1, tlpAmber)) // latest AMBER: hidden from greg
	f.put("intel", ind(2, 0, tlpGreen))
	hidden, absent := stixID("indicator", 1), stixID("indicator", 9)
	col := func(rest string) string { return f.colPath("intel", rest) }
	for _, q := range []string{"", "?match[version]=all", "?match[version]=first", "?match[version]=last",
		"?match[version]=" + url.QueryEscape(stixTime(baseTime)), "?match[spec_version]=2.1", "?added_after=2000-01-01T00:00:00Z"} {
		for _, ep := range []string{"objects/%s/", "objects/%s/versions/"} {
			if strings.Contains(ep, "versions") && strings.Contains(q, "match[version]") {
				continue // not a versions parameter
			}
			h := f.get("greg", col(strings.Replace(ep, "%s", hidden, 1)+q))
			a := f.get("greg", col(strings.Replace(ep, "%s", absent, 1)+q))
			wantError(t, h, http.StatusNotFound, "")
			if eh, ea := decode[errorBody](t, h), decode[errorBody](t, a); a.Code != h.Code || eh.Title != ea.Title || eh.Description != ea.Description {
				t.Errorf("%s%s: hidden answers %d %+v, absent %d %+v", ep, q, h.Code, eh, a.Code, ea)
			}
		}
	}
	for _, p := range []string{
		"objects/", "objects/?match[version]=all", "objects/?match[version]=first", "objects/?match[version]=first,last",
		"objects/?match[id]=" + hidden, "objects/?match[id]=" + hidden + "&match[version]=all",
		"objects/?match[version]=" + url.QueryEscape(stixTime(baseTime)), "objects/?match[type]=indicator&match[version]=all",
		"manifest/", "manifest/?match[version]=all", "manifest/?match[id]=" + hidden + "&match[version]=first",
		"objects/?added_after=2000-01-01T00:00:00Z&match[version]=all",
	} {
		w := f.get("greg", col(p))
		wantStatus(t, w, http.StatusOK)
		if strings.Contains(w.Body.String(), hidden) {
			t.Errorf("%s: greg sees the hidden object: %s", p, w.Body.String())
		}
	}
	// alice (no cap) still sees both versions.
	w := f.get("alice", col("objects/"+hidden+"/versions/"))
	if vs := decode[envelopeResp](t, w).Versions; len(vs) != 2 {
		t.Errorf("alice sees versions %v, want 2", vs)
	}
}

// Issue 9 point 6: an object whose older version is above the cap but whose
// latest is within it stays visible, without the hidden version; an object
// visible to the reader is never {} on GET (A-6 applies only to filters).
func TestCappedReaderSeesVisibleObjectWithoutHiddenVersions(t *testing.T) {
	onBackends(t, testCappedReaderSeesVisibleObjectWithoutHiddenVersions)
}

func testCappedReaderSeesVisibleObjectWithoutHiddenVersions(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, tlpAmber))
	f.put("intel", ind(1, 1, tlpGreen)) // latest GREEN
	id := stixID("indicator", 1)
	w := f.get("greg", f.colPath("intel", "objects/"+id+"/versions/"))
	wantStatus(t, w, http.StatusOK)
	if vs := decode[envelopeResp](t, w).Versions; !slices.Equal(vs, []string{stixTime(baseTime.Add(time.Minute))}) {
		t.Errorf("greg sees versions %v, want only the GREEN one", vs)
	}
	w = f.get("greg", f.colPath("intel", "objects/"+id+"/?match[version]=all"))
	if strings.Contains(w.Body.String(), tlpAmber) || len(decode[envelopeResp](t, w).Objects) != 1 {
		t.Errorf("greg's object: %s", w.Body.String())
	}
}

// Issue 9 point 6 acceptance: the project's conformance walker passes for a
// GREEN-capped reader as for an unlimited one, and the capped reader's
// latest listing, all-versions listing, manifest and added_after crawl name
// the same objects — those whose latest version is within the cap.
// Needs the storage membership change.
func TestCappedReaderWalkerAgreesAcrossViews(t *testing.T) {
	onBackends(t, testCappedReaderWalkerAgreesAcrossViews)
}

func testCappedReaderWalkerAgreesAcrossViews(t *testing.T) {
	f := newFixture(t)
	// 40 objects; every third gets a later AMBER version (hidden from
	// greg), every fifth an earlier AMBER one (visible, that version not).
	visible := map[string]bool{}
	for i := 1; i <= 40; i++ {
		switch {
		case i%3 == 0:
			f.put("intel", ind(i, 0, tlpGreen))
			f.put("intel", ind(i, 1, tlpAmber))
		case i%5 == 0:
			f.put("intel", ind(i, 0, tlpAmber))
			f.put("intel", ind(i, 1, tlpGreen))
			visible[stixID("indicator", i)] = true
		default:
			f.put("intel", ind(i, 0, tlpGreen))
			visible[stixID("indicator", i)] = true
		}
	}
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	ctx := t.Context()
	idsOf := func(keys []string) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k[:strings.IndexByte(k, '|')])
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	crawlAll := func(w *walker, endpoint string) ([]string, error) {
		q := url.Values{"limit": {"7"}, "match[version]": {"all"}}
		var keys []string
		for {
			p, err := w.fetch(ctx, endpoint, q)
			if err != nil {
				return keys, err
			}
			keys = append(keys, p.keys...)
			if !p.more {
				return keys, nil
			}
			q = url.Values{"next": {p.next}}
		}
	}
	views := func(who string) map[string][]string {
		w := &walker{client: ts.Client(), auth: basic(who, who+"-pw"), base: ts.URL + f.colPath("intel", "")}
		out := map[string][]string{}
		for _, v := range []struct {
			name  string
			crawl func(context.Context, string, string, int) ([]string, string, error)
			ep    string
		}{
			{"objects by next", w.byNext, "objects"}, {"objects by added_after", w.byAddedAfter, "objects"},
			{"manifest by next", w.byNext, "manifest"}, {"manifest by added_after", w.byAddedAfter, "manifest"},
		} {
			keys, _, err := v.crawl(ctx, v.ep, "", 4)
			if err != nil {
				t.Fatalf("%s %s: %v", who, v.name, err)
			}
			out[v.name] = idsOf(keys)
		}
		for _, ep := range []string{"objects", "manifest"} {
			keys, err := crawlAll(w, ep)
			if err != nil {
				t.Fatalf("%s %s all versions: %v", who, ep, err)
			}
			out[ep+" all versions"] = idsOf(keys)
		}
		return out
	}
	var want []string
	for id := range visible {
		want = append(want, id)
	}
	slices.Sort(want)
	for name, got := range views("greg") {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("greg %s (-want +got):\n%s", name, diff)
		}
	}
	for name, got := range views("alice") {
		if len(got) != 40 {
			t.Errorf("alice %s: %d objects, want 40", name, len(got))
		}
	}
}

// Issue 9 point 3: a capped reader cannot delete what it cannot see (404 as
// for an absent object, nothing removed) and deletes only the versions it
// can see.
func TestCappedReaderCannotDeleteHiddenObject(t *testing.T) {
	onBackends(t, testCappedReaderCannotDeleteHiddenObject)
}

func testCappedReaderCannotDeleteHiddenObject(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Users[1].Write = []string{"submissions"} })
	f.put("submissions", ind(1, 0, tlpGreen))
	f.put("submissions", ind(1, 1, tlpAmber)) // hidden from greg
	f.put("submissions", ind(2, 0, tlpAmber))
	f.put("submissions", ind(2, 1, tlpGreen)) // visible; its first version is not
	del := func(n int) *httptest.ResponseRecorder {
		return f.do(req{method: http.MethodDelete, path: f.colPath("submissions", "objects/"+stixID("indicator", n)+"/"), who: "greg"})
	}
	h, a := del(1), del(9)
	wantError(t, h, http.StatusNotFound, "")
	if eh, ea := decode[errorBody](t, h), decode[errorBody](t, a); eh.Description != ea.Description {
		t.Errorf("hidden %q, absent %q", eh.Description, ea.Description)
	}
	if n := f.count("submissions"); n != 4 {
		t.Fatalf("%d versions after refused delete, want 4", n)
	}
	if w := del(2); w.Code != http.StatusOK {
		t.Fatalf("greg deleting a visible object: %d %s", w.Code, w.Body.String())
	}
	// The AMBER version greg could not see is still there for alice.
	w := f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", 2)+"/versions/"))
	if vs := decode[envelopeResp](t, w).Versions; !slices.Equal(vs, []string{stixTime(baseTime)}) {
		t.Errorf("alice sees versions %v of indicator 2, want only the AMBER one", vs)
	}
	wantError(t, f.get("greg", f.colPath("submissions", "objects/"+stixID("indicator", 2)+"/")), http.StatusNotFound, "")
}

// Issue 9 point 4: a status resource belongs to its poster; every other
// principal gets the 404 of an unknown id.
func TestStatusOfAnotherPrincipalIsNotFound(t *testing.T) {
	onBackends(t, testStatusOfAnotherPrincipalIsNotFound)
}

func testStatusOfAnotherPrincipalIsNotFound(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Users[1].Write = []string{"submissions"} })
	st := f.postOne("wanda", "submissions", string(ind(1, 0, "").raw()))
	wantStatus(t, f.get("wanda", "/api1/status/"+st.ID+"/"), http.StatusOK)
	wantStatus(t, f.get("wanda", "/api1/status/"+strings.ToUpper(st.ID)+"/"), http.StatusOK)
	unknown := f.get("alice", "/api1/status/00000000-0000-4000-8000-000000000000/")
	for _, who := range []string{"alice", "greg", "rita", "key"} {
		w := f.get(who, "/api1/status/"+st.ID+"/")
		wantError(t, w, http.StatusNotFound, "")
		if decode[errorBody](t, w).Description != decode[errorBody](t, unknown).Description {
			t.Errorf("%s: another's status answers %s, an unknown one %s", who, w.Body.String(), unknown.Body.String())
		}
	}
}

// Issue 9 point 5: posting a copy of an object hidden from the poster (the
// collection holds its id with a latest version above the poster's cap)
// reveals nothing — its status entry is exactly that of an object new to
// the collection — and neither overwrites nor downgrades the hidden object.
func TestPOSTCopyOfHiddenObjectRevealsNothing(t *testing.T) {
	onBackends(t, testPOSTCopyOfHiddenObjectRevealsNothing)
}

func testPOSTCopyOfHiddenObjectRevealsNothing(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Users[1].Write = []string{"submissions"} })
	f.put("submissions", ind(1, 0, tlpRed))
	sco := stixObj{typ: "ipv4-addr", n: 7, marking: tlpRed}
	f.put("submissions", sco)
	before := f.get("alice", f.colPath("submissions", "manifest/?match[version]=all")).Body.String()

	// greg posts a GREEN copy of the RED indicator (same version, and a
	// newer one), a GREEN copy of the RED SCO, and new objects of each kind.
	copySame, copyNewer, fresh := ind(1, 0, tlpGreen), ind(1, 3, tlpGreen), ind(2, 0, tlpGreen)
	scoCopy, scoNew := stixObj{typ: "ipv4-addr", n: 7, marking: tlpGreen}, stixObj{typ: "ipv4-addr", n: 8, marking: tlpGreen}
	w := f.post("greg", "submissions", envelopeOf(string(copySame.raw()), string(copyNewer.raw()), string(fresh.raw()),
		string(scoCopy.raw()), string(scoNew.raw())))
	wantStatus(t, w, http.StatusAccepted)
	st := decode[statusResp](t, w)
	if *st.SuccessCount != 5 || *st.FailureCount != 0 || len(st.Successes) != 5 {
		t.Fatalf("status %s", w.Body.String())
	}
	req := st.RequestTimestamp
	for i, d := range st.Successes {
		if d.Message != "" {
			t.Errorf("success %d has a message %q", i, d.Message)
		}
	}
	// Versioned objects report their own modified, hidden or not.
	if st.Successes[0].Version != stixTime(copySame.modified) || st.Successes[1].Version != stixTime(copyNewer.modified) || st.Successes[2].Version != stixTime(fresh.modified) {
		t.Errorf("versions %+v", st.Successes[:3])
	}
	// The SCO copy reports a fresh date_added-like version, like the new
	// SCO, never the hidden one's date_added.
	hiddenAdded := ""
	pg, err := f.store.Manifest(t.Context(), storage.Query{CollectionID: f.cols["submissions"].ID, IDs: []string{stixID("ipv4-addr", 7)},
		Versions: storage.VersionFilter{All: true}, MaxTLP: storage.TLPRed, Limit: 10})
	if err != nil || len(pg.Items) != 1 {
		t.Fatalf("hidden SCO: %+v %v", pg, err)
	}
	hiddenAdded = taxiiTime(pg.Items[0].DateAdded)
	for _, d := range st.Successes[3:] {
		if !taxiiTS.MatchString(d.Version) || d.Version <= req || d.Version == hiddenAdded {
			t.Errorf("SCO success %+v: want a fresh timestamp after the request (%s), not the hidden date_added %s", d, req, hiddenAdded)
		}
	}
	// Nothing of the hidden objects changed.
	if after := f.get("alice", f.colPath("submissions", "manifest/?match[version]=all")).Body.String(); !strings.Contains(after, strings.TrimSuffix(strings.TrimPrefix(before, `{"more":false,"objects":[`), "]}")) {
		t.Errorf("hidden objects changed:\nbefore %s\nafter  %s", before, after)
	}
	for _, n := range []int{1} {
		w := f.get("alice", f.colPath("submissions", "objects/"+stixID("indicator", n)+"/?match[version]=all"))
		if env := decode[envelopeResp](t, w); len(env.Objects) != 1 || !strings.Contains(string(env.Objects[0]), tlpRed) {
			t.Errorf("indicator %d after greg's copies: %s", n, w.Body.String())
		}
	}
	w = f.get("alice", f.colPath("submissions", "objects/"+stixID("ipv4-addr", 7)+"/?match[version]=all"))
	if env := decode[envelopeResp](t, w); len(env.Objects) != 1 || !strings.Contains(string(env.Objects[0]), tlpRed) {
		t.Errorf("SCO after greg's copy: %s", w.Body.String())
	}
	// The new objects were stored.
	wantStatus(t, f.get("greg", f.colPath("submissions", "objects/"+stixID("indicator", 2)+"/")), http.StatusOK)
	wantStatus(t, f.get("greg", f.colPath("submissions", "objects/"+stixID("ipv4-addr", 8)+"/")), http.StatusOK)
}

// Issue 9 point 5: a principal that can write but not read a collection
// never learns the date_added of a copy the collection already held.
func TestPOSTCopyByWriteOnlyPrincipalRevealsNoDateAdded(t *testing.T) {
	f := newFixture(t)
	sco := stixObj{typ: "ipv4-addr", n: 7}
	f.put("submissions", sco)
	pg, err := f.store.Manifest(t.Context(), storage.Query{CollectionID: f.cols["submissions"].ID, IDs: []string{stixID("ipv4-addr", 7)},
		Versions: storage.VersionFilter{All: true}, MaxTLP: storage.TLPRed, Limit: 10})
	if err != nil || len(pg.Items) != 1 {
		t.Fatal(pg, err)
	}
	st := decode[statusResp](t, f.post("wanda", "submissions", envelopeOf(string(sco.raw()))))
	if v := st.Successes[0].Version; v == taxiiTime(pg.Items[0].DateAdded) || v <= st.RequestTimestamp {
		t.Errorf("wanda's copy reports %s; the stored date_added is %s", v, taxiiTime(pg.Items[0].DateAdded))
	}
	// alice, who can read, gets the stored one (as the manifest shows it).
	st = decode[statusResp](t, f.post("alice", "submissions", envelopeOf(string(sco.raw()))))
	if v := st.Successes[0].Version; v != taxiiTime(pg.Items[0].DateAdded) {
		t.Errorf("alice's copy reports %s, want %s", v, taxiiTime(pg.Items[0].DateAdded))
	}
}
