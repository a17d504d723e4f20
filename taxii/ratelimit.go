package taxii

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: RequestsPerSecond sustained, Burst at once.
// The zero value means no limit.
type RateLimit struct {
	RequestsPerSecond float64
	Burst             int
}

func (r RateLimit) enabled() bool { return r.RequestsPerSecond > 0 }

func (r RateLimit) limiter() *rate.Limiter {
	if !r.enabled() {
		return nil
	}
	b := r.Burst
	if b < 1 {
		b = max(1, int(math.Ceil(r.RequestsPerSecond)))
	}
	return rate.NewLimiter(rate.Limit(r.RequestsPerSecond), b)
}

// Default failed-authentication throttle per source address: ten failures
// at once, then one every six seconds. bcrypt at cost 12 takes about 250 ms
// of a core, so one address can no longer keep a core busy (issue 11: eight
// password-guessing clients raised others' median latency 40-fold).
var defaultAuthFailureLimit = RateLimit{RequestsPerSecond: 1.0 / 6, Burst: 10}

// configure sets what the configuration says about each principal beyond
// its credentials and rights: wire profile, rate limit, admin flag and
// bootstrap view.
func (a *authenticator) configure(cfg Config) error {
	set := func(what string, p *principal, profile string, rl *RateLimit, admin, bootstrap bool) error {
		w, err := profileWire(profile)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		w.emptyList = w.emptyList || p.emptyList
		p.wire = w
		lim := cfg.RateLimit
		if rl != nil {
			lim = *rl
		}
		p.limiter = lim.limiter()
		p.admin = admin
		p.bootstrapCurrent = bootstrap
		return nil
	}
	for i, u := range cfg.Users {
		if err := set(fmt.Sprintf("users[%d] %q", i, u.Name), a.users[u.Name].p, u.Profile, u.RateLimit, u.Admin, u.BootstrapCurrent); err != nil {
			return err
		}
	}
	for i, k := range cfg.APIKeys {
		if err := set(fmt.Sprintf("api_keys[%d] %q", i, k.Name), a.keys[i].p, k.Profile, k.RateLimit, k.Admin, k.BootstrapCurrent); err != nil {
			return err
		}
	}
	return nil
}

// rateLimit is the per-principal limit (taxii21.md B-5): over it, 429 with
// Retry-After as a TAXII error resource, so the client knows when to come
// back (the MITRE server's bare 429s left clients guessing, §3.9).
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principalOf(c)
		if p == nil || p.limiter == nil {
			return next(c)
		}
		now := s.now()
		r := p.limiter.ReserveN(now, 1)
		if !r.OK() {
			return tooMany(c, time.Second, "request rate limit exceeded")
		}
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			s.obs.RateLimited(p.name)
			return tooMany(c, d, "request rate limit of this client exceeded")
		}
		return next(c)
	}
}

// tooMany is a 429 with Retry-After in whole seconds, rounded up.
func tooMany(c echo.Context, wait time.Duration, what string) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return fail(http.StatusTooManyRequests, "%s; retry after %d s", what, secs)
}

// addrLimiter counts failed authentications per source address in token
// buckets. Memory is bounded: at maxAddrs addresses, buckets that have
// refilled (addresses that stopped failing) are forgotten, and if that is
// not enough the map starts over.
type addrLimiter struct {
	lim RateLimit
	now func() time.Time

	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

const maxAddrs = 10000

func newAddrLimiter(lim RateLimit, now func() time.Time) *addrLimiter {
	if lim.RequestsPerSecond < 0 {
		return nil
	}
	if !lim.enabled() {
		lim = defaultAuthFailureLimit
	}
	return &addrLimiter{lim: lim, now: now, addrs: map[string]*rate.Limiter{}}
}

// blocked returns how long addr must wait before its credentials are
// checked again, 0 when they may be checked now.
func (a *addrLimiter) blocked(addr string) time.Duration {
	if a == nil {
		return 0
	}
	now := a.now()
	a.mu.Lock()
	l := a.addrs[addr]
	a.mu.Unlock()
	if l == nil || l.TokensAt(now) >= 1 {
		return 0
	}
	r := l.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return max(d, time.Millisecond)
}

// fail takes one token from addr's bucket.
func (a *addrLimiter) fail(addr string) {
	if a == nil {
		return
	}
	now := a.now()
	a.mu.Lock()
	l := a.addrs[addr]
	if l == nil {
		if len(a.addrs) >= maxAddrs {
			for k, v := range a.addrs {
				if v.TokensAt(now) >= float64(v.Burst()) {
					delete(a.addrs, k)
				}
			}
			if len(a.addrs) >= maxAddrs {
				clear(a.addrs)
			}
		}
		l = a.lim.limiter()
		a.addrs[addr] = l
	}
	a.mu.Unlock()
	l.AllowN(now, 1)
}
