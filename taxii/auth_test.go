package taxii

import (
	"sync"
	"testing"
	"time"
)

// taxii21.md D-14: cached bcrypt results expire, are keyed by a digest of
// the header (never the header itself), and concurrent checks agree.
func TestAuthenticatorCache(t *testing.T) {
	cfg := testConfig(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, err := newAuthenticator(cfg.Users, cfg.APIKeys, clock)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := basic("greg", "greg-pw"), basic("greg", "wrong")

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := a.authenticate(good)
			if err != nil || p.name != "user:greg" {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent authenticate: %v", err)
	}
	if len(a.cache) != 1 {
		t.Errorf("cache has %d entries, want 1", len(a.cache))
	}
	for k := range a.cache {
		if string(k[:]) == good {
			t.Error("cache keyed by the raw header")
		}
	}
	if _, err := a.authenticate(bad); err == nil {
		t.Error("wrong password accepted")
	}
	if len(a.cache) != 1 {
		t.Errorf("a failure was cached: %d entries", len(a.cache))
	}
	mu.Lock()
	now = now.Add(cacheTTL + time.Second)
	mu.Unlock()
	if p, err := a.authenticate(good); err != nil || p.name != "user:greg" {
		t.Errorf("after expiry: %v %v", p, err)
	}
	if e := a.cache[keyOf(good)]; !e.expires.After(now) {
		t.Errorf("entry not refreshed after expiry: expires %v, now %v", e.expires, now)
	}
}
