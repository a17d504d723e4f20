package taxii

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// A page prefetched before a DELETE is never served after it (S-8.10).
func TestPrefetchDroppedByDelete(t *testing.T) {
	f := newFixture(t)
	for i := 1; i <= 4; i++ {
		f.put("submissions", ind(i, 0, ""))
	}
	w := f.get("alice", f.colPath("submissions", "objects/")+"?limit=2")
	next := *decode[envelopeResp](t, w).Next // page 2 (objects 3, 4) is now being prefetched
	wantStatus(t, f.do(req{method: http.MethodDelete, path: f.colPath("submissions", "objects/"+stixID("indicator", 3)+"/"), who: "alice"}), http.StatusOK)
	w = f.get("alice", f.colPath("submissions", "objects/")+"?next="+url.QueryEscape(next))
	if got := ids(t, decode[envelopeResp](t, w).Objects); !slices.Equal(got, []string{stixID("indicator", 4)}) {
		t.Errorf("page after DELETE = %v, want only indicator 4", got)
	}
}

// A page prefetched for one principal is never served to another with a
// lower TLP cap, even when the second presents the first one's next.
func TestPrefetchRespectsTLPCeiling(t *testing.T) {
	f := newFixture(t)
	f.put("intel", ind(1, 0, tlpGreen))
	f.put("intel", ind(2, 0, tlpGreen))
	f.put("intel", ind(3, 0, tlpRed))
	f.put("intel", ind(4, 0, tlpGreen))
	w := f.get("alice", f.colPath("intel", "objects/")+"?limit=2")
	next := url.QueryEscape(*decode[envelopeResp](t, w).Next)
	w = f.get("greg", f.colPath("intel", "objects/")+"?next="+next)
	if strings.Contains(w.Body.String(), stixID("indicator", 3)) {
		t.Fatalf("greg got alice's prefetched RED object: %s", w.Body.String())
	}
	if got := ids(t, decode[envelopeResp](t, w).Objects); !slices.Equal(got, []string{stixID("indicator", 4)}) {
		t.Errorf("greg's page = %v, want indicator 4", got)
	}
	// alice still gets her page, prefetched or not.
	w = f.get("alice", f.colPath("intel", "objects/")+"?next="+next)
	if got := ids(t, decode[envelopeResp](t, w).Objects); !slices.Equal(got, []string{stixID("indicator", 3), stixID("indicator", 4)}) {
		t.Errorf("alice's page = %v", got)
	}
}

// With prefetching on and off, a crawl returns the same pages.
func TestPrefetchSamePages(t *testing.T) {
	crawl := func(slots int) []string {
		f := newFixture(t)
		f.srv.prefetch.slots = slots
		f.putN("intel", 17)
		var got []string
		p := f.colPath("intel", "manifest/") + "?limit=4"
		for {
			env := decode[envelopeResp](t, f.get("alice", p))
			got = append(got, ids(t, env.Objects)...)
			if env.Next == nil {
				return got
			}
			p = f.colPath("intel", "manifest/") + "?next=" + url.QueryEscape(*env.Next)
		}
	}
	on, off := crawl(prefetchSlots), crawl(0)
	if !slices.Equal(on, off) || len(on) != 17 {
		t.Errorf("with prefetch %v\nwithout      %v", on, off)
	}
}
