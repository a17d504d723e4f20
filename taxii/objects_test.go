package taxii

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var taxiiTS = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// putN puts indicators 1..n (one version each) into alias, one per transaction
// so every one gets its own date_added.
func (f *fixture) putN(alias string, n int) []string {
	var want []string
	for i := 1; i <= n; i++ {
		f.put(alias, ind(i, 0, ""))
		want = append(want, stixID("indicator", i))
	}
	return want
}

// taxii21.md S-7.1, S-7.7, S-7.8, D-8, C-4, C-5, S-6.1…S-6.3.
func TestObjectsPagingWithNext(t *testing.T) {
	f := newFixture(t)
	want := f.putN("intel", 25)
	var got []string
	path := f.colPath("intel", "objects/") + "?limit=10"
	var lastHeader string
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		w := f.get("alice", path)
		wantStatus(t, w, http.StatusOK)
		env := decode[envelopeResp](t, w)
		if len(env.Objects) > 10 {
			t.Fatalf("page has %d objects, limit 10 (S-7.7)", len(env.Objects))
		}
		first, last := w.Header().Get(headerFirst), w.Header().Get(headerLast)
		if !taxiiTS.MatchString(first) || !taxiiTS.MatchString(last) {
			t.Errorf("headers %q %q are not 6-digit TAXII timestamps (S-4.1, C-11)", first, last)
		}
		if lastHeader != "" && first <= lastHeader {
			t.Errorf("page starts at %s, not after the previous page's %s", first, lastHeader)
		}
		lastHeader = last
		got = append(got, ids(t, env.Objects)...)
		more := env.More != nil && *env.More
		if more != (env.Next != nil) {
			t.Fatalf("more=%v but next present=%v (C-4, C-5)", more, env.Next != nil)
		}
		if !more {
			break
		}
		if *env.Next == "" {
			t.Fatal("empty next with more=true (C-4)")
		}
		// Alternate between next alone (C-6) and next with the original query.
		if pages%2 == 0 {
			path = f.colPath("intel", "objects/") + "?next=" + url.QueryEscape(*env.Next)
		} else {
			path = f.colPath("intel", "objects/") + "?limit=10&next=" + url.QueryEscape(*env.Next)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged ids (-want +got):\n%s", diff)
	}
}

// taxii21.md D-9, C-9: the fallback path via X-TAXII-Date-Added-Last is lossless.
func TestObjectsPagingWithAddedAfter(t *testing.T) {
	f := newFixture(t)
	want := f.putN("intel", 23)
	var got []string
	after := ""
	for {
		p := f.colPath("intel", "objects/") + "?limit=7"
		if after != "" {
			p += "&added_after=" + after
		}
		w := f.get("alice", p)
		wantStatus(t, w, http.StatusOK)
		env := decode[envelopeResp](t, w)
		if len(env.Objects) == 0 {
			if w.Header().Get(headerFirst) != "" || w.Header().Get(headerLast) != "" {
				t.Error("X-TAXII headers on an empty page (A-2)")
			}
			if w.Body.String() != "{}" {
				t.Errorf("empty page = %s, want {} (D-21)", w.Body.String())
			}
			break
		}
		got = append(got, ids(t, env.Objects)...)
		after = w.Header().Get(headerLast)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

// taxii21.md D-8, S-7.19, C-6: the cursor is bound and verified.
func TestCursorBinding(t *testing.T) {
	f := newFixture(t)
	f.putN("intel", 5)
	f.put("submissions", ind(100, 0, ""), ind(101, 0, ""))
	w := f.get("alice", f.colPath("intel", "objects/")+"?limit=2&match[type]=indicator")
	next := *decode[envelopeResp](t, w).Next
	esc := url.QueryEscape(next)

	// A cursor signed by another secret.
	other := cursorCodec{secret: []byte("another secret, 32 bytes long..."), root: "api1"}
	c, _ := f.srv.cursors.decode(next)
	foreign := other.encode(c)
	// A tampered payload with a valid shape.
	payload, sig, _ := strings.Cut(next, ".")
	tampered := payload[:len(payload)-2] + "AA." + sig

	tests := []struct {
		name, path string
		status     int
	}{
		{"same filters", f.colPath("intel", "objects/") + "?match[type]=indicator&next=" + esc, http.StatusOK},
		{"next alone", f.colPath("intel", "objects/") + "?next=" + esc, http.StatusOK},
		{"different filters", f.colPath("intel", "objects/") + "?match[type]=malware&next=" + esc, http.StatusBadRequest},
		{"other collection", f.colPath("submissions", "objects/") + "?next=" + esc, http.StatusBadRequest},
		{"other endpoint", f.colPath("intel", "manifest/") + "?next=" + esc, http.StatusBadRequest},
		{"tampered", f.colPath("intel", "objects/") + "?next=" + url.QueryEscape(tampered), http.StatusBadRequest},
		{"foreign secret", f.colPath("intel", "objects/") + "?next=" + url.QueryEscape(foreign), http.StatusBadRequest},
		{"garbage", f.colPath("intel", "objects/") + "?next=hello", http.StatusBadRequest},
		{"empty", f.colPath("intel", "objects/") + "?next=", http.StatusBadRequest},
		{"twice", f.colPath("intel", "objects/") + "?next=" + esc + "&next=" + esc, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.get("alice", tt.path)
			if tt.status != http.StatusOK {
				wantError(t, w, tt.status, "")
				return
			}
			wantStatus(t, w, http.StatusOK)
			if got := ids(t, decode[envelopeResp](t, w).Objects); !slices.Equal(got, []string{stixID("indicator", 3), stixID("indicator", 4)}) {
				t.Errorf("resumed page = %v, want indicators 3 and 4", got)
			}
		})
	}
	// Authorization is re-checked: greg can read intel, the key cannot read submissions.
	w = f.get("alice", f.colPath("submissions", "objects/")+"?limit=1")
	subNext := url.QueryEscape(*decode[envelopeResp](t, w).Next)
	wantError(t, f.get("key", f.colPath("submissions", "objects/")+"?next="+subNext), http.StatusNotFound, "")
}

// taxii21.md S-7.3, S-7.7, C-25, D-10, D-17, A-10, C-10, C-24, S-7.12.
func TestQueryParameters(t *testing.T) {
	f := newFixture(t)
	f.putN("intel", 3)
	base := f.colPath("intel", "objects/")
	many := make([]string, 10000)
	for i := range many {
		many[i] = stixID("indicator", i)
	}
	tests := []struct {
		name, query string
		status      int
		count       int // objects expected on 200
	}{
		{"limit 0", "limit=0", 400, 0},
		{"limit -1", "limit=-1", 400, 0},
		{"limit 1e9", "limit=1e9", 400, 0},
		{"limit x", "limit=x", 400, 0},
		{"limit twice", "limit=1&limit=2", 400, 0},
		{"limit huge clamps", "limit=99999999999999999999", 200, 3},
		{"limit above max clamps", "limit=1000000000", 200, 3},
		{"limit 2", "limit=2", 200, 2},
		{"added_after malformed", "added_after=yesterday", 400, 0},
		{"added_after twice", "added_after=2020-01-01T00:00:00Z&added_after=2020-01-01T00:00:00Z", 400, 0},
		{"added_after past", "added_after=2020-01-01T00:00:00Z", 200, 3},
		{"added_after no fraction", "added_after=2020-01-01T00:00:00Z", 200, 3},
		{"added_after offset with + as space", "added_after=2020-01-01T00:00:00.1+00:00", 200, 3},
		{"added_after nanoseconds", "added_after=2020-01-01T00:00:00.123456789Z", 200, 3},
		{"added_after future", "added_after=2999-01-01T00:00:00Z", 200, 0},
		{"bad escape", "limit=%zz", 400, 0},
		{"10000 match[id]", "match[id]=" + strings.Join(many, ","), 400, 0},
		{"match[id] repeated is a union", "match[id]=" + stixID("indicator", 1) + "&match[id]=" + stixID("indicator", 2), 200, 2},
		{"match[id] comma list", "match[id]=" + stixID("indicator", 1) + "," + stixID("indicator", 3), 200, 2},
		{"match[type] unknown STIX type", "match[type]=malware", 200, 0},
		{"match[type] non-STIX", "match[type]=x-foo", 200, 0},
		{"match[type] empty value", "match[type]=", 400, 0},
		{"unknown match field ignored", "match[foo]=bar", 200, 3},
		{"unknown parameter ignored", "foo=bar", 200, 3},
		{"match[version] all+last", "match[version]=all,last", 400, 0},
		{"match[version] junk", "match[version]=newest", 400, 0},
		{"match[spec_version] 2.0", "match[spec_version]=2.0", 200, 0},
		{"match[spec_version] 2.1", "match[spec_version]=2.1", 200, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.get("alice", base+"?"+tt.query)
			if tt.status != 200 {
				wantError(t, w, tt.status, "")
				return
			}
			wantStatus(t, w, 200)
			if got := len(decode[envelopeResp](t, w).Objects); got != tt.count {
				t.Errorf("%d objects, want %d", got, tt.count)
			}
		})
	}
	// added_after is exclusive and exact to the microsecond (S-7.4, D-1).
	w := f.get("alice", base+"?limit=1")
	firstAdded := w.Header().Get(headerFirst)
	w = f.get("alice", base+"?added_after="+firstAdded)
	if got := ids(t, decode[envelopeResp](t, w).Objects); !slices.Equal(got, []string{stixID("indicator", 2), stixID("indicator", 3)}) {
		t.Errorf("added_after=%s gave %v, want 2 and 3", firstAdded, got)
	}
}

// taxii21.md S-7.13, D-5, S-8.9, S-8.11, A-6, A-9.
func TestVersionsAndObject(t *testing.T) {
	f := newFixture(t)
	// Versions added out of order: v2, v0, v1. A marking definition and an SCO are unversioned.
	f.put("intel", ind(1, 2, ""))
	f.put("intel", ind(1, 0, ""))
	f.put("intel", ind(1, 1, ""))
	f.put("intel", stixObj{typ: "ipv4-addr", n: 7})
	id := stixID("indicator", 1)
	v := func(n int) string { return stixTime(baseTime.Add(time.Duration(n) * time.Minute)) }
	modifiedOf := func(objs []json.RawMessage) []string {
		var out []string
		for _, o := range objs {
			var x struct {
				Modified string `json:"modified"`
			}
			_ = json.Unmarshal(o, &x)
			out = append(out, x.Modified)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{v(2)}},
		{"match[version]=last", []string{v(2)}},
		{"match[version]=first", []string{v(0)}},
		{"match[version]=first,last", []string{v(0), v(2)}},
		{"match[version]=all", []string{v(0), v(1), v(2)}},
		{"match[version]=" + v(1), []string{v(1)}},
		// Instants, not strings: .000Z equals Z and an offset form (D-5).
		{"match[version]=" + url.QueryEscape(baseTime.Add(time.Minute).Format(time.RFC3339)), []string{v(1)}},
		{"match[version]=" + url.QueryEscape(baseTime.Add(time.Minute).In(time.FixedZone("x", 3600)).Format(time.RFC3339)), []string{v(1)}},
		{"match[version]=2000-01-01T00:00:00Z", nil},
	}
	for _, tt := range tests {
		t.Run("object "+tt.query, func(t *testing.T) {
			w := f.get("alice", f.colPath("intel", "objects/"+id+"/")+"?"+tt.query)
			wantStatus(t, w, http.StatusOK)
			env := decode[envelopeResp](t, w)
			if diff := cmp.Diff(tt.want, modifiedOf(env.Objects)); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			if tt.want == nil && w.Body.String() != "{}" {
				t.Errorf("known object filtered to nothing = %s, want {} (A-6)", w.Body.String())
			}
		})
	}
	// The versions endpoint: all versions, ascending date_added, headers set.
	w := f.get("alice", f.colPath("intel", "objects/"+id+"/versions/"))
	wantStatus(t, w, http.StatusOK)
	if diff := cmp.Diff([]string{v(2), v(0), v(1)}, decode[envelopeResp](t, w).Versions); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if w.Header().Get(headerFirst) == "" || w.Header().Get(headerLast) == "" {
		t.Error("versions endpoint without X-TAXII-Date-Added headers (S-6.3)")
	}
	// Paged versions carry next too (A-1, B-14).
	w = f.get("alice", f.colPath("intel", "objects/"+id+"/versions/")+"?limit=2")
	env := decode[envelopeResp](t, w)
	if env.Next == nil || len(env.Versions) != 2 {
		t.Fatalf("versions page = %s, want 2 versions and next", w.Body.String())
	}
	w = f.get("alice", f.colPath("intel", "objects/"+id+"/versions/")+"?next="+url.QueryEscape(*env.Next))
	if got := decode[envelopeResp](t, w).Versions; !slices.Equal(got, []string{v(1)}) {
		t.Errorf("second versions page = %v", got)
	}
	// Unversioned SCO reports a server-consistent version (its date_added).
	w = f.get("alice", f.colPath("intel", "objects/"+stixID("ipv4-addr", 7)+"/versions/"))
	if vs := decode[envelopeResp](t, w).Versions; len(vs) != 1 || !taxiiTS.MatchString(vs[0]) {
		t.Errorf("SCO versions = %v, want its date_added", vs)
	}
	// Unknown object → 404 on object and versions.
	for _, p := range []string{"objects/" + stixID("indicator", 99) + "/", "objects/" + stixID("indicator", 99) + "/versions/", "objects/not-an-id/"} {
		wantError(t, f.get("alice", f.colPath("intel", p)), http.StatusNotFound, "")
	}
}

// taxii21.md §5.3: one manifest record per version, filters apply to the object.
func TestManifest(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, ""))
	f.put("intel", ind(1, 1, ""))
	f.put("intel", stixObj{typ: "ipv4-addr", n: 3})
	w := f.get("alice", f.colPath("intel", "manifest/")+"?match[version]=all&match[type]=indicator")
	wantStatus(t, w, http.StatusOK)
	var m struct {
		More    bool `json:"more"`
		Objects []struct {
			ID        string `json:"id"`
			DateAdded string `json:"date_added"`
			Version   string `json:"version"`
			MediaType string `json:"media_type"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 2 {
		t.Fatalf("manifest = %s, want two records", w.Body.String())
	}
	for i, r := range m.Objects {
		if r.ID != stixID("indicator", 1) || !taxiiTS.MatchString(r.DateAdded) || r.MediaType != stixMediaType {
			t.Errorf("record %d = %+v", i, r)
		}
		if want := stixTime(baseTime.Add(time.Duration(i) * time.Minute)); r.Version != want {
			t.Errorf("record %d version = %s, want %s", i, r.Version, want)
		}
	}
	if w.Header().Get(headerLast) != m.Objects[1].DateAdded {
		t.Errorf("X-TAXII-Date-Added-Last %s != last record %s", w.Header().Get(headerLast), m.Objects[1].DateAdded)
	}
}

// Issue 3 acceptance: a max_tlp GREEN principal cannot obtain an AMBER or RED
// object through any endpoint or filter, nor count it in headers or pages.
// An object whose latest version is AMBER is hidden whole, its older GREEN
// version included (DESIGN.md §10, issue 9 point 6). Needs the storage
// membership change.
func TestTLPCeiling(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, tlpGreen))
	f.put("intel", ind(2, 0, tlpAmber))
	f.put("intel", ind(3, 0, tlpRed))
	f.put("intel", ind(4, 0, ""))
	f.put("intel", ind(1, 1, tlpAmber)) // a later AMBER version of a GREEN object
	f.put("intel", ind(5, 0, tlpGreen))
	hidden := []string{stixID("indicator", 1), stixID("indicator", 2), stixID("indicator", 3)}

	leaks := func(t *testing.T, body string) {
		t.Helper()
		for _, h := range hidden {
			if strings.Contains(body, h) {
				t.Errorf("body leaks %s: %s", h, body)
			}
		}
		if strings.Contains(body, tlpAmber) || strings.Contains(body, tlpRed) {
			t.Errorf("body leaks an AMBER/RED object: %s", body)
		}
	}
	paths := []string{
		"objects/", "objects/?match[version]=all", "objects/?match[id]=" + strings.Join(hidden, ","),
		"objects/?match[type]=indicator&match[version]=first,last", "manifest/", "manifest/?match[version]=all",
		"objects/" + stixID("indicator", 4) + "/?match[version]=all",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			w := f.get("greg", f.colPath("intel", p))
			wantStatus(t, w, http.StatusOK)
			leaks(t, w.Body.String())
		})
	}
	for _, h := range hidden {
		wantError(t, f.get("greg", f.colPath("intel", "objects/"+h+"/")), http.StatusNotFound, "")
		wantError(t, f.get("greg", f.colPath("intel", "objects/"+h+"/versions/")), http.StatusNotFound, "")
	}
	// Indicator 1's latest version is AMBER: visibility is decided on the
	// latest version, so its older GREEN version is not served to greg
	// either, and every endpoint answers as for an absent object (issue 9 #6).
	for _, p := range []string{"/", "/versions/", "/?match[version]=all", "/?match[version]=first"} {
		wantError(t, f.get("greg", f.colPath("intel", "objects/"+stixID("indicator", 1)+p)), http.StatusNotFound, "")
	}
	// Paging with limit=1 never yields an empty page or a hidden row, and the
	// last page's header is the last visible object's date_added.
	var got []string
	p := f.colPath("intel", "objects/") + "?limit=1&match[version]=all"
	for i := 0; i < 10; i++ {
		w := f.get("greg", p)
		env := decode[envelopeResp](t, w)
		if len(env.Objects) == 0 {
			t.Fatalf("empty page while paging (C-15): %s", w.Body.String())
		}
		leaks(t, w.Body.String())
		got = append(got, ids(t, env.Objects)...)
		if env.Next == nil {
			break
		}
		p = f.colPath("intel", "objects/") + "?next=" + url.QueryEscape(*env.Next)
	}
	want := []string{stixID("indicator", 4), stixID("indicator", 5)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("greg pages (-want +got):\n%s", diff)
	}
	// alice (no cap) sees all five ids.
	w := f.get("alice", f.colPath("intel", "manifest/"))
	if n := len(decode[envelopeResp](t, w).Objects); n != 5 {
		t.Errorf("alice manifest has %d records, want 5", n)
	}
}

// An exhaustive check that every listing endpoint answers the same
// principal-independent body shape: {} on empty (D-21) and ordered pages.
func TestEmptyCollection(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"objects/", "manifest/"} {
		w := f.get("alice", f.colPath("intel", p))
		wantStatus(t, w, http.StatusOK)
		if w.Body.String() != "{}" {
			t.Errorf("%s = %s, want {}", p, w.Body.String())
		}
		if w.Header().Get(headerFirst) != "" {
			t.Errorf("%s has X-TAXII headers on an empty page (A-2)", p)
		}
	}
}

func TestServedBytesAreStoredBytes(t *testing.T) {
	f := newFixture(t)
	o := ind(1, 0, "")
	f.put("intel", o)
	w := f.get("alice", f.colPath("intel", "objects/"))
	want := fmt.Sprintf(`{"more":false,"objects":[%s]}`, o.object(t).JSON)
	if w.Body.String() != want {
		t.Errorf("envelope = %s\nwant       %s (D-20)", w.Body.String(), want)
	}
}

// taxii21.md D-10, C-20: a page stops at the response-byte budget, keeps at
// least one object, and next resumes exactly after the last one served.
func TestPageByteBudget(t *testing.T) {
	f := newFixture(t)
	want := f.putN("intel", 9)
	size := len(ind(1, 0, "").object(t).JSON)
	f.srv.pageBytes = 3*size + size/2 // three objects fit, the fourth does not
	var got []string
	p := f.colPath("intel", "objects/")
	for i := 0; i < 10; i++ {
		w := f.get("alice", p)
		env := decode[envelopeResp](t, w)
		if n := len(env.Objects); n != 3 {
			t.Fatalf("page %d has %d objects, want 3", i, n)
		}
		got = append(got, ids(t, env.Objects)...)
		if env.Next == nil {
			break
		}
		p = f.colPath("intel", "objects/") + "?next=" + url.QueryEscape(*env.Next)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	f.srv.pageBytes = 1 // never below one object per page
	if n := len(decode[envelopeResp](t, f.get("alice", f.colPath("intel", "objects/"))).Objects); n != 1 {
		t.Errorf("tiny budget page has %d objects, want 1", n)
	}
}

// taxii21.md C-16, D-21: a principal with the compatibility switch gets
// "objects": [] on empty pages; everyone else gets {}.
func TestEmptyListCompatibility(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Users[3].EmptyList = true })
	f.put("submissions", ind(1, 0, ""))
	tests := []struct{ who, path, want string }{
		{"rita", f.colPath("submissions", "objects/") + "?match[type]=malware", `{"more":false,"objects":[]}`},
		{"rita", f.colPath("submissions", "manifest/") + "?match[type]=malware", `{"more":false,"objects":[]}`},
		{"rita", f.colPath("submissions", "objects/"+stixID("indicator", 1)+"/versions/") + "?added_after=2999-01-01T00:00:00Z", `{"more":false,"versions":[]}`},
		{"alice", f.colPath("submissions", "objects/") + "?match[type]=malware", `{}`},
	}
	for _, tt := range tests {
		w := f.get(tt.who, tt.path)
		wantStatus(t, w, http.StatusOK)
		if w.Body.String() != tt.want {
			t.Errorf("%s %s = %s, want %s", tt.who, tt.path, w.Body.String(), tt.want)
		}
	}
}

// taxii21.md B-7: every collection poll leaves an audit line with what was served.
func TestPollAudit(t *testing.T) {
	var buf bytes.Buffer
	f := newFixture(t)
	f.srv.log = slog.New(slog.NewJSONHandler(&buf, nil))
	f.putN("intel", 3)
	w := f.do(req{path: f.colPath("intel", "objects/") + "?limit=2", who: "greg", header: map[string]string{"User-Agent": "sentinel/1"}})
	wantStatus(t, w, http.StatusOK)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("audit line %q: %v", buf.String(), err)
	}
	want := map[string]any{"principal": "user:greg", "collection": f.cols["intel"].ID, "endpoint": "objects",
		"objects": float64(2), "more": true, "next_used": false, "user_agent": "sentinel/1",
		"last_date_added": w.Header().Get(headerLast)}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("audit %s = %v, want %v", k, line[k], v)
		}
	}
	if strings.Contains(buf.String(), "greg-pw") || strings.Contains(buf.String(), "Basic") {
		t.Errorf("audit line carries credentials: %s", buf.String())
	}
}
