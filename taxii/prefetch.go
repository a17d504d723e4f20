package taxii

import (
	"context"
	"sync"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// prefetcher pipelines crawls. When a page ends with next, the page that
// next names is queried at once in the background, so the store works on
// page N+1 while page N travels to the client and the client asks for it;
// the request carrying that next takes the result instead of querying. A
// keyset crawl is otherwise strictly sequential, and on two cores this
// overlap is what brings a 1,000,000-object crawl within DESIGN.md §8.
//
// Correctness: the key is the next value itself (which binds collection,
// endpoint, filter and position) plus the page size and the principal's TLP
// cap, and the request is authorized before it looks; a prefetched page is
// what the same query returned moments earlier, so it loses nothing (D-9:
// later additions carry later date_added values). Writes through this
// server (POST, DELETE) drop every prefetched page so a deleted object is
// never served afterwards (S-8.10). Memory is bounded by slots entries,
// each expiring after ttl.
type prefetcher struct {
	slots int
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]*prefetched
}

type prefetched struct {
	done    chan struct{}
	page    storage.Page
	err     error
	expires time.Time
}

func newPrefetcher(slots int, ttl time.Duration, now func() time.Time) *prefetcher {
	return &prefetcher{slots: slots, ttl: ttl, now: now, entries: map[string]*prefetched{}}
}

// start runs fetch in the background under key, unless prefetching is off,
// every slot is taken or the key is already being fetched. The goroutine
// ends by itself within ttl.
func (pf *prefetcher) start(key string, fetch func(ctx context.Context) (storage.Page, error)) {
	if pf.slots <= 0 {
		return
	}
	now := pf.now()
	pf.mu.Lock()
	for k, e := range pf.entries {
		if now.After(e.expires) {
			delete(pf.entries, k)
		}
	}
	if len(pf.entries) >= pf.slots || pf.entries[key] != nil {
		pf.mu.Unlock()
		return
	}
	e := &prefetched{done: make(chan struct{}), expires: now.Add(pf.ttl)}
	pf.entries[key] = e
	pf.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pf.ttl)
		defer cancel()
		e.page, e.err = fetch(ctx)
		close(e.done)
	}()
}

// take returns the page prefetched under key, waiting for it if it is still
// being fetched; false when there is none, it expired, or it failed (the
// caller then queries itself).
func (pf *prefetcher) take(ctx context.Context, key string) (storage.Page, bool) {
	pf.mu.Lock()
	e := pf.entries[key]
	delete(pf.entries, key)
	pf.mu.Unlock()
	if e == nil || pf.now().After(e.expires) {
		return storage.Page{}, false
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return storage.Page{}, false
	}
	if e.err != nil {
		return storage.Page{}, false
	}
	return e.page, true
}

// drop forgets every prefetched page; fetches in flight finish unseen.
func (pf *prefetcher) drop() {
	pf.mu.Lock()
	clear(pf.entries)
	pf.mu.Unlock()
}
