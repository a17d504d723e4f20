package taxii

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// walker is the conformance walker of issue 3 §6 (and taxii21.md B-12): it
// pages a collection the two ways the spec allows — following next, and
// re-asking with added_after = the last X-TAXII-Date-Added-Last — and checks
// every page against the rules clients depend on.
type walker struct {
	client *http.Client
	auth   string
	base   string // the collection URL, ending in /
	pages  atomic.Int64
}

// page is one checked response.
type page struct {
	keys        []string // "id|version" per object or record
	more        bool
	next        string
	first, last string
}

// fetch GETs one page and checks it: 200, the exact Content-Type (C-3),
// more ⇔ next (C-4, C-5), no empty page with more (C-15), X-TAXII headers
// present iff the page is non-empty (S-6.3, A-2), 6-digit timestamps (C-11).
func (w *walker) fetch(ctx context.Context, endpoint string, q url.Values) (page, error) {
	u := w.base + endpoint + "/"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, err
	}
	r.Header.Set("Accept", MediaType)
	r.Header.Set("Authorization", w.auth)
	resp, err := w.client.Do(r)
	if err != nil {
		return page{}, err
	}
	w.pages.Add(1)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return page{}, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != MediaType {
		return page{}, fmt.Errorf("GET %s: Content-Type %q", u, ct)
	}
	var env struct {
		More    *bool  `json:"more"`
		Next    string `json:"next"`
		Objects []struct {
			ID       string `json:"id"`
			Modified string `json:"modified"`
			Version  string `json:"version"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return page{}, fmt.Errorf("GET %s: %v", u, err)
	}
	p := page{more: env.More != nil && *env.More, next: env.Next,
		first: resp.Header.Get(headerFirst), last: resp.Header.Get(headerLast)}
	for _, o := range env.Objects {
		p.keys = append(p.keys, o.ID+"|"+o.Modified+o.Version)
	}
	switch {
	case p.more != (p.next != ""):
		return p, fmt.Errorf("GET %s: more=%v with next=%q", u, p.more, p.next)
	case p.more && len(p.keys) == 0:
		return p, fmt.Errorf("GET %s: empty page with more", u)
	case (len(p.keys) > 0) != (p.first != "" && p.last != ""):
		return p, fmt.Errorf("GET %s: %d objects with headers %q %q", u, len(p.keys), p.first, p.last)
	case p.first != "" && (!taxiiTS.MatchString(p.first) || !taxiiTS.MatchString(p.last) || p.first > p.last):
		return p, fmt.Errorf("GET %s: bad headers %q %q", u, p.first, p.last)
	case len(p.keys) == 0 && string(body) != "{}":
		return p, fmt.Errorf("GET %s: empty body %s, want {}", u, body)
	}
	return p, nil
}

// byNext pages from added_after (empty: the beginning) following next until
// more is false; it returns the keys in order and the last date_added seen,
// the client's resume point.
func (w *walker) byNext(ctx context.Context, endpoint, addedAfter string, limit int) ([]string, string, error) {
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if addedAfter != "" {
		q.Set("added_after", addedAfter)
	}
	var keys []string
	last := addedAfter
	for {
		p, err := w.fetch(ctx, endpoint, q)
		if err != nil {
			return keys, last, err
		}
		keys = append(keys, p.keys...)
		if p.last != "" {
			if last != "" && p.first <= last {
				return keys, last, fmt.Errorf("page starts at %s, not after %s", p.first, last)
			}
			last = p.last
		}
		if !p.more {
			return keys, last, nil
		}
		// Alternate the two ways clients resume (C-6): bare next, next with the query.
		if len(keys)%2 == 0 {
			q = url.Values{"next": {p.next}}
		} else {
			q.Set("next", p.next)
		}
	}
}

// byAddedAfter pages with added_after = X-TAXII-Date-Added-Last only,
// ignoring next (D-9), until a page comes back empty.
func (w *walker) byAddedAfter(ctx context.Context, endpoint, addedAfter string, limit int) ([]string, string, error) {
	var keys []string
	for {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if addedAfter != "" {
			q.Set("added_after", addedAfter)
		}
		p, err := w.fetch(ctx, endpoint, q)
		if err != nil {
			return keys, addedAfter, err
		}
		if len(p.keys) == 0 {
			return keys, addedAfter, nil
		}
		keys = append(keys, p.keys...)
		addedAfter = p.last
	}
}

// poller repeatedly crawls with one strategy until stop is closed, then
// once more, and returns everything it saw.
func poller(ctx context.Context, stop <-chan struct{}, crawl func(ctx context.Context, endpoint, addedAfter string, limit int) ([]string, string, error), endpoint string, limit int) ([]string, error) {
	var all []string
	after := ""
	for {
		stopped := false
		select {
		case <-stop:
			stopped = true
		default:
		}
		keys, last, err := crawl(ctx, endpoint, after, limit)
		all = append(all, keys...)
		if err != nil {
			return all, err
		}
		after = last
		if stopped {
			return all, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// Issue 3 §6 and acceptance: both paging paths are lossless and never
// duplicate on a collection that grows while it is being crawled
// (taxii21.md D-1, D-8, D-9, C-9) — for an unlimited reader and, issue 9,
// for a GREEN-capped one, to whom every seventh object (AMBER) is hidden;
// on both storage backends.
func TestWalkerLosslessUnderConcurrentWrites(t *testing.T) {
	for _, who := range []string{"alice", "greg"} {
		t.Run(who, func(t *testing.T) { onBackends(t, func(t *testing.T) { testWalkerLossless(t, who) }) })
	}
}

func testWalkerLossless(t *testing.T, who string) {
	f := newFixture(t)
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	w := &walker{client: ts.Client(), auth: basic(who, who+"-pw"), base: ts.URL + f.colPath("intel", "")}
	ctx := t.Context()

	const total = 400
	f.putN("intel", 50) // some data before the crawlers start
	stop := make(chan struct{})
	var wg sync.WaitGroup
	type result struct {
		name string
		keys []string
		err  error
	}
	results := make(chan result, 4)
	for _, c := range []struct {
		name     string
		crawl    func(context.Context, string, string, int) ([]string, string, error)
		endpoint string
		limit    int
	}{
		{"objects by next", w.byNext, "objects", 7},
		{"objects by added_after", w.byAddedAfter, "objects", 5},
		{"manifest by next", w.byNext, "manifest", 11},
		{"manifest by added_after", w.byAddedAfter, "manifest", 3},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys, err := poller(ctx, stop, c.crawl, c.endpoint, c.limit)
			results <- result{c.name, keys, err}
		}()
	}
	// The writer: new objects in batches of 1–4, one transaction each, once
	// the pollers are running, pausing a little so they interleave.
	for deadline := time.Now().Add(10 * time.Second); w.pages.Load() < 4 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	before := w.pages.Load()
	want := total
	for i := 51; i <= total; {
		var batch []stixObj
		for j := 0; j < 1+i%4 && i <= total; j++ {
			marking := tlpGreen
			if i%7 == 0 {
				marking = tlpAmber
				if who == "greg" {
					want--
				}
			}
			batch = append(batch, ind(i, 0, marking))
			i++
		}
		f.put("intel", batch...)
		time.Sleep(200 * time.Microsecond)
	}
	during := w.pages.Load() - before
	close(stop)
	wg.Wait()
	close(results)
	if during < 10 {
		t.Errorf("only %d pages fetched while writing; the test did not exercise concurrency", during)
	}

	for r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.name, r.err)
			continue
		}
		seen := map[string]int{}
		for _, k := range r.keys {
			seen[k]++
		}
		for k, n := range seen {
			if n > 1 {
				t.Errorf("%s: %s seen %d times", r.name, k, n)
			}
		}
		if len(seen) != want {
			t.Errorf("%s: saw %d distinct objects, want %d", r.name, len(seen), want)
		}
	}
}
