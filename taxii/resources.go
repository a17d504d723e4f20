package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// reply writes v as JSON with the TAXII media type.
func reply(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return c.Blob(status, MediaType, b)
}

type discoveryResource struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Contact     string   `json:"contact,omitempty"`
	Default     string   `json:"default"`
	APIRoots    []string `json:"api_roots"`
}

// discovery serves GET /taxii2/ (taxii21.md S-2.1). api_roots are relative
// URLs starting with one '/', and default is byte-identical to the entry (C-12).
func (s *Server) discovery(c echo.Context) error {
	return reply(c, http.StatusOK, discoveryResource{
		Title: s.cfg.Title, Description: s.cfg.Description, Contact: s.cfg.Contact,
		Default: s.root, APIRoots: []string{s.root},
	})
}

type apiRootResource struct {
	Title            string   `json:"title"`
	Description      string   `json:"description,omitempty"`
	Versions         []string `json:"versions"`
	MaxContentLength int64    `json:"max_content_length"`
	// Custom properties (S-9.1) with limits clients may want to read.
	MaxObjectsPerPost int `json:"x_taxii_bridge_max_objects_per_post"`
	MaxPageSize       int `json:"x_taxii_bridge_max_page_size"`
}

// apiRoot serves GET /{api-root}/ (S-2.2). Its description ends with the
// limits a client may run into (issue 14), which max_content_length alone
// does not say; the same values are custom properties (S-9.1).
func (s *Server) apiRoot(c echo.Context) error {
	return reply(c, http.StatusOK, apiRootResource{
		Title: s.cfg.Title, Description: s.rootDescription(),
		Versions: []string{MediaType}, MaxContentLength: s.cfg.MaxContentLength,
		MaxObjectsPerPost: s.cfg.MaxObjectsPerPost, MaxPageSize: s.cfg.MaxPageSize,
	})
}

// retentionText writes whole days as "7 days", anything else as Go does.
func retentionText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

// rootDescription is the configured description followed by the limits.
func (s *Server) rootDescription() string {
	limits := fmt.Sprintf("Limits: a POSTed envelope may hold at most %d objects (max_objects_per_post) in at most %d octets (max_content_length); "+
		"a status resource lists at most %d entries in each of successes, failures and pendings (the counts are exact) and stays readable for %s; "+
		"a page holds at most %d objects; match[id] and the other match fields take at most %d values.",
		s.cfg.MaxObjectsPerPost, s.cfg.MaxContentLength, s.cfg.StatusDetailsLimit, retentionText(s.cfg.StatusRetention), s.cfg.MaxPageSize, maxMatchValues)
	if s.cfg.Description == "" {
		return limits
	}
	return s.cfg.Description + " " + limits
}

type collectionResource struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Alias       string   `json:"alias,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types"`
}

func collectionOf(p *principal, col storage.Collection) collectionResource {
	return collectionResource{
		ID: col.ID, Title: col.Title, Description: col.Description, Alias: col.Alias,
		CanRead: p.canRead(col), CanWrite: p.canWrite(col), MediaTypes: []string{stixMediaType},
	}
}

type collectionsResource struct {
	Collections []collectionResource `json:"collections,omitempty"`
}

// collections serves GET /{api-root}/collections/: the collections the
// principal may see, sorted by id (D-3, D-15); {} when none (S-4.4).
func (s *Server) collections(c echo.Context) error {
	p := principalOf(c)
	cols, err := s.store.Collections(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	var out collectionsResource
	for _, col := range cols {
		if p.sees(col) {
			out.Collections = append(out.Collections, collectionOf(p, col))
		}
	}
	return reply(c, http.StatusOK, out)
}

// collection serves GET /{api-root}/collections/{id}/ (S-2.5).
func (s *Server) collection(c echo.Context) error {
	col, err := s.lookup(c)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, collectionOf(principalOf(c), col))
}

// lookup resolves the :collection path parameter (id, any-case UUID, or
// alias, S-2.16, C-13) to a collection the principal may see; anything else
// is the same 404, so existence never leaks (D-15, S-8.14).
func (s *Server) lookup(c echo.Context) (storage.Collection, error) {
	key := c.Param("collection")
	if u, err := uuid.Parse(key); err == nil && len(key) == 36 {
		key = u.String()
	}
	col, err := s.cols.find(c.Request().Context(), s.store, key, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return col, fail(http.StatusNotFound, "no such collection")
	}
	if err != nil {
		return col, fmt.Errorf("look up collection: %w", err)
	}
	if !principalOf(c).sees(col) {
		return col, fail(http.StatusNotFound, "no such collection")
	}
	return col, nil
}

// readable resolves the collection and requires read access: 404 when
// invisible, 403 when visible but not readable (A-4, interop X-2).
func (s *Server) readable(c echo.Context) (storage.Collection, error) {
	col, err := s.lookup(c)
	if err != nil {
		return col, err
	}
	if !principalOf(c).canRead(col) {
		return col, fail(http.StatusForbidden, "no read access to this collection")
	}
	return col, nil
}

type statusDetail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

type statusResource struct {
	ID               string         `json:"id"`
	Status           string         `json:"status"`
	RequestTimestamp string         `json:"request_timestamp,omitempty"`
	TotalCount       int            `json:"total_count"`
	SuccessCount     int            `json:"success_count"`
	Successes        []statusDetail `json:"successes,omitempty"`
	FailureCount     int            `json:"failure_count"`
	Failures         []statusDetail `json:"failures,omitempty"`
	PendingCount     int            `json:"pending_count"`
	Pendings         []statusDetail `json:"pendings,omitempty"`
	// Custom properties (S-9.1) saying how many entries each list left
	// out; present only when some were (issue 14: the lists are capped,
	// TAXII §4.3.1 lets a server omit them, the counts stay exact).
	OmittedSuccesses int    `json:"x_taxii_bridge_omitted_successes,omitempty"`
	OmittedFailures  int    `json:"x_taxii_bridge_omitted_failures,omitempty"`
	OmittedPendings  int    `json:"x_taxii_bridge_omitted_pendings,omitempty"`
	Note             string `json:"x_taxii_bridge_note,omitempty"`
}

func details(in []storage.StatusDetail) []statusDetail {
	var out []statusDetail
	for _, d := range in {
		out = append(out, statusDetail(d))
	}
	return out
}

func statusOf(st storage.Status) statusResource {
	r := statusResource{
		ID: st.ID, Status: st.Status,
		TotalCount: st.Total, SuccessCount: st.Success, FailureCount: st.Failure, PendingCount: st.Pending,
		Successes: details(st.Successes), Failures: details(st.Failures), Pendings: details(st.Pendings),
	}
	if !st.RequestTimestamp.IsZero() {
		r.RequestTimestamp = taxiiTime(st.RequestTimestamp.UnixMicro())
	}
	r.OmittedSuccesses = max(0, st.Success-len(st.Successes))
	r.OmittedFailures = max(0, st.Failure-len(st.Failures))
	r.OmittedPendings = max(0, st.Pending-len(st.Pendings))
	if r.OmittedSuccesses+r.OmittedFailures+r.OmittedPendings > 0 {
		r.Note = "the successes, failures and pendings lists were cut to their first entries; the counts are exact"
	}
	return r
}

// status serves GET /{api-root}/status/{id}/ (S-2.3, S-8.3). Status ids are
// random UUIDv4s handed only to the poster, and a status belongs to the
// principal that created it (issue 9): an unknown id, an expired status
// (after status_retention) and another principal's status are the same 404,
// reached by the same store read.
func (s *Server) status(c echo.Context) error {
	id := c.Param("status")
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return fail(http.StatusNotFound, "no such status")
	}
	st, err := s.store.Status(c.Request().Context(), u.String())
	if errors.Is(err, storage.ErrNotFound) {
		return fail(http.StatusNotFound, "no such status")
	}
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	if st.Owner == "" || st.Owner != principalOf(c).name {
		return fail(http.StatusNotFound, "no such status")
	}
	return reply(c, http.StatusOK, statusOf(st))
}

// collectionCacheTTL bounds how stale a cached collection (title, can_write)
// may be, also when another replica's sync changed it; a key not in the
// cache reloads at once, so a collection the sync has just created is found
// on its first request.
const collectionCacheTTL = time.Second

// collectionCache keeps the collection list in memory for the per-request
// lookup, which otherwise costs an SQL query on every request (taxii21.md
// D-20 hot path; DESIGN.md §8 single-object GET budget).
type collectionCache struct {
	mu     sync.Mutex
	byKey  map[string]storage.Collection // by id and by alias
	loaded time.Time
}

func (cc *collectionCache) find(ctx context.Context, store Store, key string, now time.Time) (storage.Collection, error) {
	cc.mu.Lock()
	if c, ok := cc.byKey[key]; ok && now.Sub(cc.loaded) < collectionCacheTTL && !now.Before(cc.loaded) {
		cc.mu.Unlock()
		return c, nil
	}
	cc.mu.Unlock()
	cols, err := store.Collections(ctx)
	if err != nil {
		return storage.Collection{}, err
	}
	m := make(map[string]storage.Collection, 2*len(cols))
	for _, c := range cols {
		if c.Alias != "" {
			m[c.Alias] = c
		}
	}
	for _, c := range cols {
		m[c.ID] = c // an id wins over an alias that happens to look like one
	}
	cc.mu.Lock()
	cc.byKey, cc.loaded = m, now
	cc.mu.Unlock()
	if c, ok := m[key]; ok {
		return c, nil
	}
	return storage.Collection{}, storage.ErrNotFound
}
