package taxii

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

func strp(s string) *string { return &s }

func TestDiscoveryAndAPIRoot(t *testing.T) {
	f := newFixture(t)
	// taxii21.md S-2.1, S-1.1: discovery at /taxii2/ at the host root.
	w := f.get("alice", "/taxii2/")
	wantStatus(t, w, http.StatusOK)
	d := decode[map[string]any](t, w)
	want := map[string]any{"title": "test server", "default": "/api1/", "api_roots": []any{"/api1/"}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}
	// S-2.2: versions are media types; max_content_length > 0 even read-only.
	w = f.get("alice", "/api1/")
	wantStatus(t, w, http.StatusOK)
	r := decode[map[string]any](t, w)
	desc, _ := r["description"].(string)
	delete(r, "description")
	want = map[string]any{"title": "test server", "versions": []any{MediaType}, "max_content_length": float64(10 << 20),
		"x_taxii_bridge_max_objects_per_post": float64(10000), "x_taxii_bridge_max_page_size": float64(500)}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("api root (-want +got):\n%s", diff)
	}
	// Issue 14: the limits a client can run into are advertised.
	for _, s := range []string{"at most 10000 objects (max_objects_per_post)", "at most 10000 entries", "7 days", "at most 500 objects", "at most 1000 values"} {
		if !strings.Contains(desc, s) {
			t.Errorf("api root description %q does not say %q", desc, s)
		}
	}
	// An unknown API root is 404.
	wantError(t, f.get("alice", "/api2/"), http.StatusNotFound, "")
}

// taxii21.md D-11, C-2: both spellings, no redirect.
func TestTrailingSlash(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, ""))
	id := stixID("indicator", 1)
	for _, p := range []string{
		"/taxii2", "/api1", "/api1/collections", f.colPath("intel", ""), f.colPath("intel", "objects"),
		f.colPath("intel", "manifest"), f.colPath("intel", "objects/"+id), f.colPath("intel", "objects/"+id+"/versions"),
		"/api1/collections/intel/objects",
	} {
		for _, path := range []string{strings.TrimSuffix(p, "/"), strings.TrimSuffix(p, "/") + "/"} {
			w := f.get("alice", path)
			if w.Code != http.StatusOK {
				t.Errorf("GET %s = %d, want 200 (no redirect); body %s", path, w.Code, w.Body.String())
			}
		}
	}
}

// taxii21.md D-12, C-3, C-18: every failure is a TAXII error resource.
func TestErrorPath(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		r      req
		status int
		header string // a header that must be present
	}{
		{"router 404", req{path: "/nope/", who: "alice"}, http.StatusNotFound, ""},
		{"router 404 under root", req{path: "/api1/collections/x/y/z/w/v/", who: "alice"}, http.StatusNotFound, ""},
		{"405 with Allow", req{method: http.MethodPut, path: f.colPath("intel", "objects"), who: "alice"}, http.StatusMethodNotAllowed, "Allow"},
		{"401 no credentials", req{path: "/taxii2/"}, http.StatusUnauthorized, "WWW-Authenticate"},
		{"401 unknown path without credentials", req{path: "/nope/"}, http.StatusUnauthorized, "WWW-Authenticate"},
		{"406", req{path: "/taxii2/", who: "alice", accept: strp("application/taxii+json;version=2.0")}, http.StatusNotAcceptable, ""},
		{"415", req{method: http.MethodPost, path: f.colPath("submissions", "objects"), who: "alice", ctype: "text/plain", body: []byte("{}")}, http.StatusUnsupportedMediaType, ""},
		{"413", req{method: http.MethodPost, path: f.colPath("submissions", "objects"), who: "alice", ctype: MediaType, body: make([]byte, 10<<20+1)}, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(tt.r)
			wantError(t, w, tt.status, "")
			if tt.header != "" && w.Header().Get(tt.header) == "" {
				t.Errorf("missing %s header", tt.header)
			}
		})
	}
	w := f.do(req{method: http.MethodPut, path: f.colPath("intel", "objects"), who: "alice"})
	if a := w.Header().Get("Allow"); !strings.Contains(a, "GET") || !strings.Contains(a, "POST") {
		t.Errorf("Allow = %q, want GET and POST", a)
	}
	w = f.do(req{path: "/taxii2/"})
	if got := w.Header().Values("WWW-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[0], "Basic ") || !strings.HasPrefix(got[1], "Bearer ") {
		t.Errorf("WWW-Authenticate = %q, want Basic and Bearer challenges (S-1.12)", got)
	}
}

// taxii21.md D-14, C-17: Basic, Bearer, Token, API key in the Basic slots.
func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"basic user", basic("alice", "alice-pw"), http.StatusOK},
		{"basic wrong password", basic("alice", "nope"), http.StatusUnauthorized},
		{"basic unknown user", basic("mallory", "x"), http.StatusUnauthorized},
		{"basic garbage", "Basic !!!", http.StatusUnauthorized},
		{"basic no colon", "Basic " + "YWxpY2U=", http.StatusUnauthorized},
		{"bearer", "Bearer " + testKey, http.StatusOK},
		{"token", "Token " + testKey, http.StatusOK},
		{"bearer lower-case scheme", "bearer " + testKey, http.StatusOK},
		{"bearer wrong key", "Bearer wrong", http.StatusUnauthorized},
		{"bearer empty", "Bearer ", http.StatusUnauthorized},
		{"key as basic password", basic("_api_token_key", testKey), http.StatusOK},
		{"key as basic user", basic(testKey, ""), http.StatusOK},
		{"unknown scheme", "Digest abc", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(req{path: "/taxii2/", header: map[string]string{"Authorization": tt.auth}})
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			if tt.status == http.StatusUnauthorized {
				wantError(t, w, tt.status, "")
			}
		})
	}
	// Cached verification still refuses a changed password for the same user.
	if w := f.do(req{path: "/taxii2/", header: map[string]string{"Authorization": basic("alice", "alice-pw2")}}); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong password after a cached success = %d, want 401", w.Code)
	}
}

// No principals configured: never anonymous (brief; taxii21.md S-1.12).
func TestNoPrincipalsMeansUnauthorized(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Users, c.APIKeys = nil, nil })
	for _, p := range []string{"/taxii2/", "/api1/", "/api1/collections/", f.colPath("intel", "objects")} {
		wantError(t, f.get("alice", p), http.StatusUnauthorized, "")
		wantError(t, f.get("", p), http.StatusUnauthorized, "")
	}
	// Operations endpoints stay open.
	if w := f.get("", "/healthz"); w.Code != http.StatusOK {
		t.Errorf("/healthz = %d", w.Code)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := testConfig(t)
	tests := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"short secret", func(c *Config) { c.CursorSecret = []byte("short") }, "cursor secret"},
		{"bad hash", func(c *Config) { c.Users[0].PasswordHash = "plaintext" }, "bcrypt"},
		{"bad key digest", func(c *Config) { c.APIKeys[0].KeySHA256 = "abc" }, "64 hex"},
		{"bad root", func(c *Config) { c.APIRoot = "a/b" }, "api root"},
		{"duplicate user", func(c *Config) { c.Users = append(c.Users, c.Users[0]) }, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.Users = slices.Clone(good.Users)
			cfg.APIKeys = slices.Clone(good.APIKeys)
			tt.mut(&cfg)
			_, err := New(nopStore{}, cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// taxii21.md C-1, C-19, D-13: lenient Accept, 406 only for other versions or unrelated types.
func TestAcceptNegotiation(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		accept string
		status int
	}{
		{"", http.StatusOK},
		{"application/taxii+json;version=2.1", http.StatusOK},
		{"application/taxii+json; version=2.1", http.StatusOK},
		{`application/taxii+json;version="2.1"`, http.StatusOK},
		{"Application/TAXII+JSON;Version=2.1", http.StatusOK},
		{"application/taxii+json", http.StatusOK},
		{"application/taxii+json;version=2.1,application/stix+json;version=2.1", http.StatusOK},
		{"application/json, text/plain, */*", http.StatusOK},
		{"*/*", http.StatusOK},
		{"application/*", http.StatusOK},
		{"application/taxii+json;version=2.0, application/taxii+json;version=2.1;q=0.5", http.StatusOK},
		{"application/taxii+json;version=2.0", http.StatusNotAcceptable},
		{"application/vnd.oasis.taxii+json; version=2.0", http.StatusNotAcceptable},
		{"text/html", http.StatusNotAcceptable},
		{"application/taxii+json;version=2.1;q=0", http.StatusNotAcceptable},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			w := f.do(req{path: "/taxii2/", who: "alice", accept: strp(tt.accept)})
			if w.Code != tt.status {
				t.Errorf("Accept %q: status %d, want %d", tt.accept, w.Code, tt.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != MediaType {
				t.Errorf("Content-Type = %q, want %q (C-3)", ct, MediaType)
			}
		})
	}
}

// taxii21.md D-15, A-4, X-2, S-8.4…S-8.6.
func TestVisibility(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, ""))
	f.put("secret", ind(2, 0, ""))

	type col struct {
		Alias    string `json:"alias"`
		CanRead  bool   `json:"can_read"`
		CanWrite bool   `json:"can_write"`
	}
	listed := func(who string) []col {
		w := f.get(who, "/api1/collections/")
		wantStatus(t, w, http.StatusOK)
		var r struct {
			Collections []col `json:"collections"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(r.Collections, func(a, b col) int { return strings.Compare(a.Alias, b.Alias) })
		return r.Collections
	}
	tests := []struct {
		who  string
		want []col
	}{
		{"alice", []col{{"intel", true, false}, {"secret", true, false}, {"submissions", true, true}}},
		{"greg", []col{{"intel", true, false}, {"submissions", true, false}}},
		{"wanda", []col{{"submissions", false, true}}},
		{"key", []col{{"intel", true, false}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, listed(tt.who)); diff != "" {
			t.Errorf("%s collections (-want +got):\n%s", tt.who, diff)
		}
	}
	// Invisible → 404 everywhere; visible-unreadable → 403 (interop X-2).
	for _, rest := range []string{"", "objects/", "manifest/", "objects/" + stixID("indicator", 2) + "/", "objects/" + stixID("indicator", 2) + "/versions/"} {
		wantError(t, f.get("greg", f.colPath("secret", rest)), http.StatusNotFound, "")
	}
	for _, rest := range []string{"objects/", "manifest/", "objects/" + stixID("indicator", 1) + "/", "objects/" + stixID("indicator", 1) + "/versions/"} {
		wantError(t, f.get("wanda", f.colPath("submissions", rest)), http.StatusForbidden, "")
	}
	// Same 404 for an unknown collection as for an invisible one (S-8.14).
	a, b := f.get("greg", f.colPath("secret", "")), f.get("greg", "/api1/collections/00000000-0000-4000-8000-000000000000/")
	if a.Code != b.Code {
		t.Errorf("invisible %d vs unknown %d", a.Code, b.Code)
	}
	// Alias and upper-case id resolve to the canonical collection (S-2.16, C-13).
	for _, key := range []string{"intel", strings.ToUpper(f.cols["intel"].ID)} {
		w := f.get("alice", "/api1/collections/"+key+"/")
		wantStatus(t, w, http.StatusOK)
		if got := decode[map[string]any](t, w)["id"]; got != f.cols["intel"].ID {
			t.Errorf("collection %s id = %v, want %s", key, got, f.cols["intel"].ID)
		}
	}
	// A collection resource carries the required properties and media_types (S-4.x, D-19).
	w := f.get("alice", f.colPath("intel", ""))
	got := decode[map[string]any](t, w)
	want := map[string]any{"id": f.cols["intel"].ID, "title": "Intel", "description": "from TC", "alias": "intel",
		"can_read": true, "can_write": false, "media_types": []any{stixMediaType}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("collection (-want +got):\n%s", diff)
	}
	// {} when no collection is visible (S-4.4).
	f2 := newFixture(t, func(c *Config) { c.Users[3].Read = []string{"none"} })
	if w := f2.get("rita", "/api1/collections/"); w.Body.String() != "{}" {
		t.Errorf("empty collections = %s, want {}", w.Body.String())
	}
}

func TestHealth(t *testing.T) {
	ready := error(nil)
	f := newFixture(t, func(c *Config) { c.Ready = func() error { return ready } })
	if w := f.get("", "/healthz"); w.Code != http.StatusOK {
		t.Errorf("/healthz = %d", w.Code)
	}
	if w := f.get("", "/readyz"); w.Code != http.StatusOK {
		t.Errorf("/readyz = %d", w.Code)
	}
	ready = errTest
	if w := f.get("", "/readyz/"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz not ready = %d, want 503", w.Code)
	}
}

// /readyz carries the caller's details (which replica leads the sync).
func TestReadyDetails(t *testing.T) {
	ready := error(nil)
	f := newFixture(t, func(c *Config) {
		c.Ready = func() error { return ready }
		c.ReadyDetails = func() map[string]any { return map[string]any{"leader": true, "replica": "host-1", "status": "ignored"} }
	})
	for _, tt := range []struct {
		err  error
		code int
		want string
	}{
		{nil, http.StatusOK, `{"leader":true,"replica":"host-1","status":"ready"}`},
		{errTest, http.StatusServiceUnavailable, `{"leader":true,"replica":"host-1","status":"not ready"}`},
	} {
		ready = tt.err
		w := f.get("", "/readyz")
		if got := strings.TrimSpace(w.Body.String()); w.Code != tt.code || got != tt.want {
			t.Errorf("/readyz = %d %s; want %d %s", w.Code, got, tt.code, tt.want)
		}
	}
}

// taxii21.md §1.8 (S-8.1…S-8.11): 401 and 406 on every endpoint, 400 on
// every endpoint that takes parameters.
func TestStatusCodesPerEndpoint(t *testing.T) {
	f := newFixture(t)
	f.put("submissions", ind(1, 0, ""))
	obj := "objects/" + stixID("indicator", 1) + "/"
	post := func(p string) req {
		return req{method: http.MethodPost, path: p, ctype: MediaType, body: envelopeOf(string(ind(2, 0, "").raw()))}
	}
	endpoints := []struct {
		name     string
		r        req
		ok       int
		badQuery string // a malformed query for 400, "" when the endpoint takes none
	}{
		{"discovery", req{path: "/taxii2/"}, 200, ""},
		{"api root", req{path: "/api1/"}, 200, ""},
		{"collections", req{path: "/api1/collections/"}, 200, ""},
		{"collection", req{path: f.colPath("submissions", "")}, 200, ""},
		{"manifest", req{path: f.colPath("submissions", "manifest/")}, 200, "limit=0"},
		{"objects", req{path: f.colPath("submissions", "objects/")}, 200, "added_after=x"},
		{"add objects", post(f.colPath("submissions", "objects/")), 202, ""},
		{"object", req{path: f.colPath("submissions", obj)}, 200, "match[version]=all,first"},
		{"versions", req{path: f.colPath("submissions", obj+"versions/")}, 200, "limit=x"},
		{"delete", req{method: http.MethodDelete, path: f.colPath("submissions", obj)}, 200, "match[version]=bogus"},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			r := ep.r
			wantError(t, f.do(r), http.StatusUnauthorized, "")
			r.who = "alice"
			r.accept = strp("application/vnd.oasis.taxii+json;version=2.0")
			wantError(t, f.do(r), http.StatusNotAcceptable, "")
			r.accept = nil
			if ep.badQuery != "" {
				bad := r
				bad.path += "?" + ep.badQuery
				wantError(t, f.do(bad), http.StatusBadRequest, "")
			}
			w := f.do(r)
			if w.Code != ep.ok {
				t.Errorf("status %d, want %d: %s", w.Code, ep.ok, w.Body.String())
			}
			if ct := w.Header().Get("Content-Type"); ct != MediaType {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// panicStore panics on every read; the server must still answer with a
// TAXII error resource (taxii21.md D-12), and a plain store error must not
// leak its text.
type panicStore struct{ nopStore }

func (panicStore) Collections(context.Context) ([]storage.Collection, error) { panic("boom") }

func TestInternalErrors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store Store
	}{{"panic", panicStore{}}, {"error", nopStore{}}} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(tt.store, testConfig(t), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api1/collections/", nil)
			r.Header.Set("Authorization", basic("alice", "alice-pw"))
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			wantError(t, w, http.StatusInternalServerError, "error_id")
			if strings.Contains(w.Body.String(), "boom") || strings.Contains(w.Body.String(), errTest.Error()) {
				t.Errorf("500 body leaks the cause: %s", w.Body.String())
			}
		})
	}
}
