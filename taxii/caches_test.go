package taxii

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// A prefetched page is served while the reader's newest mark is unchanged
// (it is then current) or within prefetchFresh of its query; never after.
func TestPrefetcherStalenessBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		pf := newPrefetcher(8, 10*time.Second, time.Second, time.Now)
		page := storage.Page{Items: []storage.Item{{ID: "indicator--1"}}}
		fetch := func(context.Context) (storage.Page, error) { return page, nil }
		at5 := mark{5, true}
		tests := []struct {
			name  string
			start mark
			wait  time.Duration
			now   mark
			want  bool
		}{
			{"unchanged, fresh", at5, 0, at5, true},
			{"unchanged, 9 s later", at5, 9 * time.Second, at5, true},
			{"unchanged, past ttl", at5, 10*time.Second + time.Millisecond, at5, false},
			{"changed, fresh", at5, 999 * time.Millisecond, mark{6, true}, true},
			{"changed, 1 s later", at5, time.Second, mark{6, true}, false},
			{"store cannot tell, fresh", mark{}, 999 * time.Millisecond, mark{}, true},
			{"store cannot tell, 1 s later", mark{}, time.Second, mark{}, false},
		}
		for _, tt := range tests {
			pf.start(tt.name, tt.start, fetch)
			time.Sleep(tt.wait)
			got, gotMark, ok := pf.take(ctx, tt.name, tt.now)
			if ok != tt.want {
				t.Errorf("%s: served %v, want %v", tt.name, ok, tt.want)
			}
			if ok && (len(got.Items) != 1 || gotMark != tt.start) {
				t.Errorf("%s: page %v under mark %v, want the prefetched page under %v", tt.name, got, gotMark, tt.start)
			}
		}
	})
}

// collectionStore is a Store whose collection list a test changes, as
// another replica's sync would.
type collectionStore struct {
	nopStore
	mu    sync.Mutex
	cols  []storage.Collection
	loads int
}

func (s *collectionStore) Collections(context.Context) ([]storage.Collection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	return slices.Clone(s.cols), nil
}

func (s *collectionStore) set(title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cols[0].Title = title
}

// The collection lookup serves a collection at most collectionCacheTTL (1 s)
// after it was read; an unknown key reloads at once.
func TestCollectionCacheStalenessBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &collectionStore{cols: []storage.Collection{{ID: "c1", Alias: "intel", Title: "old"}}}
		var cc collectionCache
		title := func(key string) string {
			t.Helper()
			c, err := cc.find(t.Context(), st, key, time.Now())
			if err != nil {
				t.Fatalf("find(%q): %v", key, err)
			}
			return c.Title
		}
		if got := title("intel"); got != "old" {
			t.Fatalf("title = %q", got)
		}
		st.set("new") // another replica changed it
		time.Sleep(collectionCacheTTL - time.Millisecond)
		if got := title("c1"); got != "old" || st.loads != 1 {
			t.Errorf("within the bound: title %q after %d loads; want the cached %q after 1", got, st.loads, "old")
		}
		time.Sleep(time.Millisecond)
		if got := title("intel"); got != "new" {
			t.Errorf("after %v: title %q, want %q", collectionCacheTTL, got, "new")
		}
		st.mu.Lock()
		st.cols = append(st.cols, storage.Collection{ID: "c2", Alias: "fresh"})
		st.mu.Unlock()
		if got, err := cc.find(t.Context(), st, "fresh", time.Now()); err != nil || got.ID != "c2" {
			t.Errorf("a collection created meanwhile: %v, %v; want it found at once", got, err)
		}
	})
}

// countingStore counts listing queries.
type countingStore struct {
	*storage.Store
	lists atomic.Int64
}

func (s *countingStore) Objects(ctx context.Context, q storage.Query) (storage.Page, error) {
	s.lists.Add(1)
	return s.Store.Objects(ctx, q)
}

// Two replicas on one database: what one deletes, the other stops serving
// within the bound (prefetchFresh) although its page was prefetched before;
// a page of a collection nobody changed is served from the prefetch however
// late the client comes back within the TTL. Collection changes made by
// another replica show within collectionCacheTTL.
func TestReplicasStalenessBound(t *testing.T) {
	if collectionCacheTTL > time.Second || prefetchFresh > time.Second {
		t.Errorf("collectionCacheTTL %v, prefetchFresh %v: doc.go states 1 s for both", collectionCacheTTL, prefetchFresh)
	}
	f := newFixture(t)
	for i := 1; i <= 4; i++ {
		f.put("submissions", ind(i, 0, ""))
	}
	cfg := testConfig(t)
	cfg.Now = f.clock.now
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs := &countingStore{Store: f.store}
	a, err := New(cs, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(f.store, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	do := func(srv *Server, method, path string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Accept", MediaType)
		r.Header.Set("Authorization", basic("alice", "alice-pw"))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	advance := func(d time.Duration) {
		f.clock.mu.Lock()
		f.clock.t = f.clock.t.Add(d)
		f.clock.mu.Unlock()
	}
	objects := f.colPath("submissions", "objects/")

	// Unchanged: replica A serves its prefetched page 5 s later: two
	// queries in all, page 1 and the prefetch of page 2.
	next := *decode[envelopeResp](t, do(a, http.MethodGet, objects+"?limit=2")).Next
	advance(5 * time.Second)
	w := do(a, http.MethodGet, objects+"?next="+url.QueryEscape(next))
	if got := ids(t, decode[envelopeResp](t, w).Objects); !slices.Equal(got, []string{stixID("indicator", 3), stixID("indicator", 4)}) {
		t.Fatalf("page 2 = %v", got)
	}
	if n := cs.lists.Load(); n != 2 {
		t.Errorf("a two-page crawl of an unchanged collection ran %d queries, want 2 (page 2 prefetched)", n)
	}

	// Replica B deletes object 3 after A prefetched page 2.
	next = *decode[envelopeResp](t, do(a, http.MethodGet, objects+"?limit=2")).Next
	wantStatus(t, do(b, http.MethodDelete, objects+stixID("indicator", 3)+"/"), http.StatusOK)
	advance(prefetchFresh)
	w = do(a, http.MethodGet, objects+"?next="+url.QueryEscape(next))
	if got := ids(t, decode[envelopeResp](t, w).Objects); !slices.Equal(got, []string{stixID("indicator", 4)}) {
		t.Errorf("replica A's page 2, %v after B's DELETE = %v, want only indicator 4", prefetchFresh, got)
	}

	// Another replica's sync retitles a collection.
	col := f.colPath("submissions", "")
	if got := decode[map[string]any](t, do(a, http.MethodGet, col))["title"]; got != "Submissions" {
		t.Fatalf("title = %v", got)
	}
	if _, err := f.store.EnsureCollection(t.Context(), storage.Collection{Alias: "submissions", Title: "Inbox", Kind: "local", CanWrite: true}); err != nil {
		t.Fatal(err)
	}
	advance(collectionCacheTTL)
	if got := decode[map[string]any](t, do(a, http.MethodGet, col))["title"]; got != "Inbox" {
		t.Errorf("replica A's collection title %v after another replica's change = %v, want Inbox", collectionCacheTTL, got)
	}
}
