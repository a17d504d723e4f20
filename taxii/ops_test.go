package taxii

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// An identical second poll is a 304 with no body; a poll after a new version
// is a 200 with a new ETag (issue 11 acceptance). A reader's ETag does not
// move for an object above its TLP cap: invisible answers like absent.
func TestConditionalPolling(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, tlpGreen), ind(2, 0, tlpGreen))
	paths := []string{
		f.colPath("intel", "objects/"),
		f.colPath("intel", "objects/?match[type]=indicator&limit=1"),
		f.colPath("intel", "manifest/"),
		f.colPath("intel", "objects/"+stixID("indicator", 1)+"/"),
		f.colPath("intel", "objects/"+stixID("indicator", 1)+"/versions/"),
	}
	etags := map[string]string{}
	for _, p := range paths {
		w := f.get("alice", p)
		wantStatus(t, w, http.StatusOK)
		etag := w.Header().Get("ETag")
		if !strings.HasPrefix(etag, `W/"`) {
			t.Fatalf("GET %s: ETag = %q, want a weak tag", p, etag)
		}
		etags[p] = etag
		w = f.do(req{path: p, who: "alice", header: map[string]string{"If-None-Match": etag}})
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Fatalf("repeat GET %s with If-None-Match = %d %q; want 304 and no body", p, w.Code, w.Body.String())
		}
		if got := w.Header().Get("ETag"); got != etag {
			t.Errorf("304 ETag = %q, want %q", got, etag)
		}
	}
	// Distinct queries have distinct tags.
	if etags[paths[0]] == etags[paths[1]] {
		t.Error("two different queries share an ETag")
	}
	// greg (TLP:GREEN cap) polls; a RED object is invisible to him.
	gp := f.colPath("intel", "objects/")
	gtag := f.get("greg", gp).Header().Get("ETag")
	if gtag == etags[gp] {
		t.Error("readers with different TLP caps share an ETag")
	}
	f.put("intel", ind(3, 0, tlpRed))
	if w := f.do(req{path: gp, who: "greg", header: map[string]string{"If-None-Match": gtag}}); w.Code != http.StatusNotModified {
		t.Errorf("greg after an invisible RED addition = %d, want 304", w.Code)
	}
	// A new version of object 1: every alice listing changes.
	f.put("intel", ind(1, 1, tlpGreen))
	for _, p := range paths {
		w := f.do(req{path: p, who: "alice", header: map[string]string{"If-None-Match": etags[p]}})
		wantStatus(t, w, http.StatusOK)
		if got := w.Header().Get("ETag"); got == "" || got == etags[p] {
			t.Errorf("GET %s after a new version: ETag %q, want a new one (old %q)", p, got, etags[p])
		}
	}
	// A DELETE through the server changes listings even though no
	// date_added moved.
	f.put("submissions", ind(9, 0, ""), ind(10, 0, ""))
	sp := f.colPath("submissions", "objects/")
	stag := f.get("alice", sp).Header().Get("ETag")
	if w := f.do(req{method: http.MethodDelete, path: f.colPath("submissions", "objects/"+stixID("indicator", 10)+"/"), who: "alice"}); w.Code != http.StatusOK {
		t.Fatalf("DELETE = %d %s", w.Code, w.Body.String())
	}
	w := f.do(req{path: sp, who: "alice", header: map[string]string{"If-None-Match": stag}})
	wantStatus(t, w, http.StatusOK)
	if got := len(decode[envelopeResp](t, w).Objects); got != 1 {
		t.Errorf("after DELETE the listing has %d objects, want 1", got)
	}
	// Small resources: ETag from the body.
	for _, p := range []string{"/taxii2/", "/api1/", "/api1/collections/", f.colPath("intel", "")} {
		w := f.get("alice", p)
		wantStatus(t, w, http.StatusOK)
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s has no ETag", p)
		}
		if w := f.do(req{path: p, who: "alice", header: map[string]string{"If-None-Match": `"other", ` + etag}}); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("GET %s with a matching If-None-Match = %d %q", p, w.Code, w.Body.String())
		}
	}
	// Errors carry no ETag.
	if w := f.get("alice", f.colPath("intel", "objects/"+stixID("indicator", 99)+"/")); w.Code != http.StatusNotFound || w.Header().Get("ETag") != "" {
		t.Errorf("404 = %d with ETag %q", w.Code, w.Header().Get("ETag"))
	}
}

// HEAD works on every GET endpoint: the GET's status and headers, no body
// (it was 405 before issue 11).
func TestHead(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, ""), ind(2, 0, ""))
	for _, p := range []string{
		"/taxii2/", "/api1/", "/api1/collections/", f.colPath("intel", ""),
		f.colPath("intel", "objects/"), f.colPath("intel", "manifest/"),
		f.colPath("intel", "objects/"+stixID("indicator", 1)+"/"),
		f.colPath("intel", "objects/"+stixID("indicator", 1)+"/versions/"),
		"/healthz", "/readyz",
	} {
		g := f.get("alice", p)
		h := f.do(req{method: http.MethodHead, path: p, who: "alice"})
		if h.Code != g.Code || g.Code != http.StatusOK {
			t.Errorf("HEAD %s = %d, GET = %d; want both 200", p, h.Code, g.Code)
			continue
		}
		if h.Body.Len() != 0 {
			t.Errorf("HEAD %s has a body of %d bytes", p, h.Body.Len())
		}
		for _, k := range []string{"Content-Type", "ETag", headerLast} {
			if h.Header().Get(k) != g.Header().Get(k) {
				t.Errorf("HEAD %s %s = %q, GET has %q", p, k, h.Header().Get(k), g.Header().Get(k))
			}
		}
		if cl := h.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(g.Body.Len()) {
			t.Errorf("HEAD %s Content-Length = %s, GET body is %d bytes", p, cl, g.Body.Len())
		}
	}
	if w := f.do(req{method: http.MethodHead, path: "/taxii2/"}); w.Code != http.StatusUnauthorized || w.Body.Len() != 0 {
		t.Errorf("unauthenticated HEAD = %d with %d body bytes; want 401 and none", w.Code, w.Body.Len())
	}
}

// Clients that accept gzip get it; the decompressed body is the identity body.
func TestGzip(t *testing.T) {
	f := newFixture(t)
	var objs []stixObj
	for i := range 50 {
		objs = append(objs, ind(i, 0, ""))
	}
	f.put("intel", objs...)
	p := f.colPath("intel", "objects/")
	plain := f.get("alice", p)
	w := f.do(req{path: p, who: "alice", header: map[string]string{"Accept-Encoding": "gzip"}})
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", w.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, plain.Body.Bytes()) {
		t.Error("gzip body differs from the identity body")
	}
	if w.Header().Get("Content-Type") != MediaType || !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") {
		t.Errorf("headers: Content-Type %q, Vary %q", w.Header().Get("Content-Type"), w.Header().Get("Vary"))
	}
	if w.Body.Len()*3 > len(body) {
		t.Errorf("gzip %d bytes of %d: less than 3:1", w.Body.Len(), len(body))
	}
	// A 304 stays empty when gzip is accepted.
	w = f.do(req{path: p, who: "alice", header: map[string]string{"Accept-Encoding": "gzip", "If-None-Match": plain.Header().Get("ETag")}})
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("gzip 304 = %d with %d bytes", w.Code, w.Body.Len())
	}
}

// fixedClock is a clock the test moves by hand.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixedClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A principal over its limit gets 429 + Retry-After as a TAXII error while
// another principal's requests all succeed; its own limit replaces the default.
func TestRateLimit(t *testing.T) {
	clk := &fixedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, func(c *Config) {
		c.Now = clk.now
		c.RateLimit = RateLimit{RequestsPerSecond: 0.5, Burst: 3}
		for i := range c.Users {
			if c.Users[i].Name == "greg" {
				c.Users[i].RateLimit = &RateLimit{RequestsPerSecond: 100, Burst: 100}
			}
		}
	})
	p := f.colPath("intel", "objects/")
	for range 3 {
		wantStatus(t, f.get("alice", p), http.StatusOK)
	}
	w := f.get("alice", p)
	wantError(t, w, http.StatusTooManyRequests, "rate limit")
	if ra := w.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After = %q, want 2 (one token at 0.5/s)", ra)
	}
	for i := range 50 {
		if w := f.get("greg", p); w.Code != http.StatusOK {
			t.Fatalf("greg request %d = %d while alice is limited", i, w.Code)
		}
	}
	clk.add(2 * time.Second)
	wantStatus(t, f.get("alice", p), http.StatusOK)
	wantError(t, f.get("alice", p), http.StatusTooManyRequests, "")
}

// Failed authentication is throttled per source address before any bcrypt
// work: once an address has failed ten times, even a correct password that
// would need bcrypt is refused with 429, while API keys from that address
// and every other address authenticate as before.
func TestAuthFailureThrottle(t *testing.T) {
	clk := &fixedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, func(c *Config) { c.Now = clk.now })
	from := func(addr, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/taxii2/", nil)
		r.Header.Set("Authorization", auth)
		r.RemoteAddr = addr + ":5555"
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, r)
		return w
	}
	bad := basic("alice", "wrong")
	for i := range 10 {
		if w := from("192.0.2.1", bad); w.Code != http.StatusUnauthorized {
			t.Fatalf("bad password %d = %d, want 401", i, w.Code)
		}
	}
	w := from("192.0.2.1", bad)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("11th bad password = %d (Retry-After %q), want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if w := from("192.0.2.1", basic("alice", "alice-pw")); w.Code != http.StatusTooManyRequests {
		t.Errorf("uncached good password from the throttled address = %d, want 429 (no bcrypt while throttled)", w.Code)
	}
	if w := from("192.0.2.1", "Bearer "+testKey); w.Code != http.StatusOK {
		t.Errorf("API key from the throttled address = %d, want 200", w.Code)
	}
	if w := from("198.51.100.7", basic("alice", "alice-pw")); w.Code != http.StatusOK {
		t.Errorf("another address = %d, want 200", w.Code)
	}
	// Cached Basic credentials need no bcrypt and pass the throttle.
	if w := from("192.0.2.1", basic("alice", "alice-pw")); w.Code != http.StatusOK {
		t.Errorf("cached good password from the throttled address = %d, want 200", w.Code)
	}
	clk.add(6 * time.Second)
	if w := from("192.0.2.1", basic("greg", "greg-pw")); w.Code != http.StatusOK {
		t.Errorf("after 6 s the address may try again: %d, want 200", w.Code)
	}
}

// recordingObserver keeps what the server reported.
type recordingObserver struct {
	mu       sync.Mutex
	requests []string
	polls    []pollEvent
	limited  int
	authFail int
}

type pollEvent struct {
	principal, collection string
	objects               int
	bytes, newest         int64
}

func (o *recordingObserver) Request(route, method string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, method+" "+route+" "+strconv.Itoa(status))
}

func (o *recordingObserver) Poll(principal, collection string, objects int, bytes, newest int64, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.polls = append(o.polls, pollEvent{principal, collection, objects, bytes, newest})
}
func (o *recordingObserver) RateLimited(string) { o.mu.Lock(); o.limited++; o.mu.Unlock() }
func (o *recordingObserver) AuthFailure(bool)   { o.mu.Lock(); o.authFail++; o.mu.Unlock() }

// The Observer sees route templates (bounded label values) and every
// delivery with the newest date_added served.
func TestObserver(t *testing.T) {
	obs := &recordingObserver{}
	f := newFixture(t, func(c *Config) { c.Observer = obs })
	f.put("intel", ind(1, 0, ""), ind(2, 0, ""))
	w := f.get("alice", f.colPath("intel", "objects/"))
	last := w.Header().Get(headerLast)
	f.get("alice", "/nowhere")
	f.do(req{path: "/taxii2/", who: ""})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := []string{"GET /api1/collections/:collection/objects 200", "GET  404", "GET /taxii2 401"}
	if strings.Join(obs.requests, "|") != strings.Join(want, "|") {
		t.Errorf("requests = %q, want %q", obs.requests, want)
	}
	if len(obs.polls) != 1 {
		t.Fatalf("polls = %+v", obs.polls)
	}
	p := obs.polls[0]
	if p.principal != "user:alice" || p.collection != "intel" || p.objects != 2 || p.bytes != int64(w.Body.Len()) || taxiiTime(p.newest) != last {
		t.Errorf("poll = %+v; want alice, intel, 2 objects, %d bytes, newest %s", p, w.Body.Len(), last)
	}
	if got := f.srv.Deliveries(); len(got) != 1 || got[0].Objects != 2 || got[0].NewestDateAdded != p.newest {
		t.Errorf("Deliveries() = %+v", got)
	}
}

// An added_after at or past the reader's newest date_added is answered
// empty without a listing query; an object added later is found by the
// same poll (the shortcut is exact, not a cache).
func TestIdleAddedAfter(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, ""), ind(2, 0, tlpRed))
	w := f.get("alice", f.colPath("intel", "objects/"))
	last := w.Header().Get(headerLast)
	p := f.colPath("intel", "objects/?added_after="+last)
	if w := f.get("alice", p); w.Body.String() != "{}" {
		t.Fatalf("poll past the newest = %s, want {}", w.Body.String())
	}
	// greg cannot see the RED object, so his newest is object 1's.
	g := f.get("greg", f.colPath("intel", "objects/"))
	gp := f.colPath("intel", "objects/?added_after="+g.Header().Get(headerLast))
	if w := f.get("greg", gp); w.Body.String() != "{}" {
		t.Fatalf("greg past his newest = %s", w.Body.String())
	}
	f.put("intel", ind(3, 0, ""))
	for _, who := range []string{"alice", "greg"} {
		q := p
		if who == "greg" {
			q = gp
		}
		w := f.get(who, q)
		if got := ids(t, decode[envelopeResp](t, w).Objects); len(got) != 1 || got[0] != stixID("indicator", 3) {
			t.Errorf("%s after an addition: %v, want the new object", who, got)
		}
	}
	// manifest takes the same shortcut.
	if w := f.get("alice", f.colPath("intel", "manifest/?added_after=2099-01-01T00:00:00Z")); w.Body.String() != "{}" {
		t.Errorf("manifest past the newest = %s", w.Body.String())
	}
}
