package taxii

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Each client profile's wire behaviour, as the client it is named after
// needs it (taxii21.md §3, C-*).
func TestProfiles(t *testing.T) {
	mk := func(profile string) *fixture {
		return newFixture(t, func(c *Config) {
			for i := range c.Users {
				if c.Users[i].Name == "alice" {
					c.Users[i].Profile = profile
				}
			}
		})
	}
	emptyBody := func(f *fixture) string {
		w := f.get("alice", f.colPath("intel", "objects/?added_after=2030-01-01T00:00:00Z"))
		wantStatus(t, w, http.StatusOK)
		return w.Body.String()
	}
	spec := `{}`
	compat := `{"more":false,"objects":[]}`

	t.Run("default", func(t *testing.T) {
		f := mk("")
		if got := emptyBody(f); got != spec {
			t.Errorf("empty listing = %s, want the spec's %s", got, spec)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		// Sentinel reads the spec shapes and only speaks Basic; it needs the
		// X-TAXII headers and UUID collection ids every principal gets.
		f := mk(ProfileSentinel)
		f.put("intel", ind(1, 0, ""))
		if got := emptyBody(f); got != spec {
			t.Errorf("empty listing = %s, want %s", got, spec)
		}
		w := f.get("alice", f.colPath("intel", "objects/"))
		if w.Header().Get(headerFirst) == "" || w.Header().Get(headerLast) == "" {
			t.Error("non-empty page without X-TAXII-Date-Added headers")
		}
	})
	t.Run("elastic", func(t *testing.T) {
		f := mk(ProfileElastic)
		if got := emptyBody(f); got != compat {
			t.Errorf("empty listing = %s, want %s (older ti_custom fails on {})", got, compat)
		}
		// ti_custom sends Content-Type on GET (elastic/integrations #12874).
		w := f.do(req{path: f.colPath("intel", "objects/"), who: "alice", ctype: MediaType})
		wantStatus(t, w, http.StatusOK)
	})
	t.Run("opencti", func(t *testing.T) {
		f := mk(ProfileOpenCTI)
		if got := emptyBody(f); got != compat {
			t.Errorf("empty listing = %s, want %s (KeyError on missing more/objects)", got, compat)
		}
		// The ingester keeps X-TAXII-Date-Added-Last as its cursor and
		// falls back to its own clock without it: echo added_after.
		w := f.get("alice", f.colPath("intel", "objects/?added_after=2030-01-01T00:00:00.5Z"))
		if got := w.Header().Get(headerLast); got != "2030-01-01T00:00:00.500000Z" {
			t.Errorf("empty page %s = %q, want the added_after echoed", headerLast, got)
		}
		// The default profile omits it on empty pages.
		d := mk("")
		if got := d.get("alice", d.colPath("intel", "objects/?added_after=2030-01-01T00:00:00Z")).Header().Get(headerLast); got != "" {
			t.Errorf("default profile sent %s = %q on an empty page", headerLast, got)
		}
	})
	t.Run("xsoar", func(t *testing.T) {
		f := mk(ProfileXSOAR)
		if got := emptyBody(f); got != compat {
			t.Errorf("empty listing = %s, want %s", got, compat)
		}
		// Older TAXII2ApiModule sends the next token as added_after.
		f.put("intel", ind(1, 0, ""), ind(2, 0, ""), ind(3, 0, ""))
		first := decode[envelopeResp](t, f.get("alice", f.colPath("intel", "objects/?limit=2")))
		if first.Next == nil {
			t.Fatal("no next on a 2-of-3 page")
		}
		w := f.get("alice", f.colPath("intel", "objects/?added_after="+url.QueryEscape(*first.Next)))
		wantStatus(t, w, http.StatusOK)
		if got := ids(t, decode[envelopeResp](t, w).Objects); len(got) != 1 || got[0] != stixID("indicator", 3) {
			t.Errorf("next in added_after resumed at %v, want the third object", got)
		}
		// The same request from the default profile is a 400.
		d := newFixture(t)
		if w := d.get("alice", d.colPath("intel", "objects/?added_after=abc.def")); w.Code != http.StatusBadRequest {
			t.Errorf("default profile: a cursor in added_after = %d, want 400", w.Code)
		}
	})
	for _, name := range []string{ProfileSplunk, ProfileMISP} {
		t.Run(name, func(t *testing.T) {
			f := mk(name)
			if got := emptyBody(f); got != compat {
				t.Errorf("empty listing = %s, want %s", got, compat)
			}
			w := f.get("alice", f.colPath("intel", "objects/"+stixID("indicator", 1)+"/versions/"))
			if w.Code != http.StatusNotFound {
				t.Errorf("versions of an unknown object = %d, want 404", w.Code)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Users[0].Profile = "qradar"
		_, err := New(nopStore{}, cfg, nil)
		if err == nil || !strings.Contains(err.Error(), `unknown profile "qradar"`) || !strings.Contains(err.Error(), "alice") {
			t.Errorf("New with an unknown profile: %v", err)
		}
	})
	if got := strings.Join(ProfileNames(), ","); got != "default,elastic,misp,opencti,sentinel,splunk,xsoar" {
		t.Errorf("ProfileNames() = %s", got)
	}
}
