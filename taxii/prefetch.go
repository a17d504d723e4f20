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
// cap, and the request is authorized before it looks. A prefetched page is
// served only when it is current or fresh:
//
//   - current: the reader's newest mark in the collection (the ETag's input,
//     storage.Store.NewestDateAdded: newest date_added or change, one index
//     probe that the request reads anyway) is what it was before the page
//     was queried, so the page is what the query would return now — the
//     same test that answers an unchanged listing 304;
//   - fresh: its query started less than fresh (1 s) ago, so whatever
//     another replica (or the sync) changed since is at most that old; the
//     ETag is then the page's own, so a revalidation never extends its life.
//
// Anything else is queried again. Writes through this server (POST, DELETE)
// also drop every prefetched page, so this replica never serves a deleted
// object afterwards (S-8.10). Memory is bounded by slots entries, each
// expiring after ttl.
type prefetcher struct {
	slots int
	ttl   time.Duration
	fresh time.Duration
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]*prefetched
}

type prefetched struct {
	done    chan struct{}
	page    storage.Page
	err     error
	mark    mark
	started time.Time
	expires time.Time
}

// mark is a reader's newest mark in a collection (NewestDateAdded), read
// before a query; ok is false when the store cannot tell.
type mark struct {
	v  int64
	ok bool
}

func newPrefetcher(slots int, ttl, fresh time.Duration, now func() time.Time) *prefetcher {
	return &prefetcher{slots: slots, ttl: ttl, fresh: fresh, now: now, entries: map[string]*prefetched{}}
}

// start runs fetch in the background under key, unless prefetching is off,
// every slot is taken or the key is already being fetched. m is the
// reader's newest mark, read before the request's own query. The goroutine
// ends by itself within ttl.
func (pf *prefetcher) start(key string, m mark, fetch func(ctx context.Context) (storage.Page, error)) {
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
	e := &prefetched{done: make(chan struct{}), mark: m, started: now, expires: now.Add(pf.ttl)}
	pf.entries[key] = e
	pf.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pf.ttl)
		defer cancel()
		e.page, e.err = fetch(ctx)
		close(e.done)
	}()
}

// take returns the page prefetched under key and the mark it was fetched
// under, waiting for it if it is still being fetched; false when there is
// none, it expired, it failed, or it is neither current (m, the reader's
// newest mark now, equals the page's) nor fresh (see prefetcher). The
// caller then queries itself.
func (pf *prefetcher) take(ctx context.Context, key string, m mark) (storage.Page, mark, bool) {
	pf.mu.Lock()
	e := pf.entries[key]
	delete(pf.entries, key)
	pf.mu.Unlock()
	if e == nil || pf.now().After(e.expires) {
		return storage.Page{}, mark{}, false
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return storage.Page{}, mark{}, false
	}
	if e.err != nil {
		return storage.Page{}, mark{}, false
	}
	current := m.ok && e.mark.ok && m.v == e.mark.v
	if !current && pf.now().Sub(e.started) >= pf.fresh {
		return storage.Page{}, mark{}, false
	}
	return e.page, e.mark, true
}

// drop forgets every prefetched page; fetches in flight finish unseen.
func (pf *prefetcher) drop() {
	pf.mu.Lock()
	clear(pf.entries)
	pf.mu.Unlock()
}
