package taxii

import (
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Observer receives what the server does, for metrics (package metrics
// implements it). Calls must be cheap and safe for concurrent use.
type Observer interface {
	// Request is one answered request: the route template ("" when no
	// route matched), method, status and time taken.
	Request(route, method string, status int, d time.Duration)
	// Poll is one listing delivered to a principal (a 304 included, with
	// no objects): items and body bytes (before compression) served, and
	// the newest date_added among them in µs (0 when none).
	Poll(principal, collection string, objects int, bytes int64, newestDateAdded int64, at time.Time)
	// RateLimited is a request refused with 429 for the principal's limit.
	RateLimited(principal string)
	// AuthFailure is a failed authentication; throttled when the source
	// address was refused before its credentials were checked.
	AuthFailure(throttled bool)
}

type nopObserver struct{}

func (nopObserver) Request(string, string, int, time.Duration)        {}
func (nopObserver) Poll(string, string, int, int64, int64, time.Time) {}
func (nopObserver) RateLimited(string)                                {}
func (nopObserver) AuthFailure(bool)                                  {}

func (s *Server) initOps() {
	s.obs = s.cfg.Observer
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	s.etagSalt = newSalt()
	s.authFails = newAddrLimiter(s.cfg.AuthFailureLimit, s.now)
	s.deliveries.m = map[deliveryKey]*Delivery{}
}

// observe reports every request to the Observer once its status is final.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil && !c.Response().Committed {
			c.Error(err)
			status = c.Response().Status
			err = nil
		}
		s.obs.Request(c.Path(), c.Request().Method, status, time.Since(start))
		return err
	}
}

// poll records a delivered listing for the Observer and the status page.
func (s *Server) poll(p *principal, collection string, objects int, bytes int64, newest int64) {
	now := s.now()
	s.obs.Poll(p.name, collection, objects, bytes, newest, now)
	s.deliveries.record(p.name, collection, objects, bytes, newest, now)
}

// Delivery is what one principal has received from one collection since
// the process started.
type Delivery struct {
	Principal, Collection string
	Polls, Objects, Bytes int64
	LastPoll              time.Time
	// NewestDateAdded is the newest date_added delivered, µs; 0 for none.
	NewestDateAdded int64
}

type deliveryKey struct{ principal, collection string }

// deliveries is the in-memory delivery table; principals and collections
// are configured, so it stays small.
type deliveries struct {
	mu sync.Mutex
	m  map[deliveryKey]*Delivery
}

func (d *deliveries) record(principal, collection string, objects int, bytes int64, newest int64, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := deliveryKey{principal, collection}
	e := d.m[k]
	if e == nil {
		e = &Delivery{Principal: principal, Collection: collection}
		d.m[k] = e
	}
	e.Polls++
	e.Objects += int64(objects)
	e.Bytes += bytes
	e.LastPoll = at
	e.NewestDateAdded = max(e.NewestDateAdded, newest)
}

// Deliveries returns the delivery table sorted by principal and collection.
func (s *Server) Deliveries() []Delivery {
	s.deliveries.mu.Lock()
	out := make([]Delivery, 0, len(s.deliveries.m))
	for _, e := range s.deliveries.m {
		out = append(out, *e)
	}
	s.deliveries.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Principal != out[j].Principal {
			return out[i].Principal < out[j].Principal
		}
		return out[i].Collection < out[j].Collection
	})
	return out
}
