package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
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
}

// apiRoot serves GET /{api-root}/ (S-2.2).
func (s *Server) apiRoot(c echo.Context) error {
	return reply(c, http.StatusOK, apiRootResource{
		Title: s.cfg.Title, Description: s.cfg.Description,
		Versions: []string{MediaType}, MaxContentLength: s.cfg.MaxContentLength,
	})
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
	return r
}

// status serves GET /{api-root}/status/{id}/ (S-2.3, S-8.3). Status ids are
// random UUIDv4s handed only to the poster; unknown ids are 404.
func (s *Server) status(c echo.Context) error {
	id := strings.ToLower(c.Param("status"))
	if _, err := uuid.Parse(id); err != nil {
		return fail(http.StatusNotFound, "no such status")
	}
	st, err := s.store.Status(c.Request().Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return fail(http.StatusNotFound, "no such status")
	}
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	return reply(c, http.StatusOK, statusOf(st))
}

// collectionCacheTTL bounds how stale a cached collection (title, can_write)
// may be; a key not in the cache reloads at once, so a collection the sync
// has just created is found on its first request.
const collectionCacheTTL = 2 * time.Second

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
