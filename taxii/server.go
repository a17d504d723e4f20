package taxii

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// Store is the persistence the TAXII server needs. *storage.Store satisfies it.
type Store interface {
	Collections(ctx context.Context) ([]storage.Collection, error)
	Collection(ctx context.Context, idOrAlias string) (storage.Collection, error)
	Objects(ctx context.Context, q storage.Query) (storage.Page, error)
	Manifest(ctx context.Context, q storage.Query) (storage.Page, error)
	Versions(ctx context.Context, q storage.Query) (storage.Page, error)
	Status(ctx context.Context, id string) (storage.Status, error)
	PutStatus(ctx context.Context, st storage.Status) error
	Update(ctx context.Context, fn func(tx *storage.Tx) error) error
}

var _ Store = (*storage.Store)(nil)

// Config configures a Server. Zero values of the optional fields get the
// defaults of DESIGN.md §4.
type Config struct {
	// Title, Description and Contact describe the server in the discovery
	// resource; Title and Description also describe the API root.
	Title, Description, Contact string
	// APIRoot is the single API root's path segment, e.g. "threatconnect"
	// (served at /threatconnect/). Default "threatconnect".
	APIRoot string
	// DefaultPageSize is the page size when a request has no limit (default
	// 1000); MaxPageSize caps limit (default 10000; larger limits are clamped,
	// taxii21.md D-10).
	DefaultPageSize, MaxPageSize int
	// MaxContentLength is the largest request body accepted, advertised on
	// the API root (default 10 MiB).
	MaxContentLength int64
	// MaxObjectsPerPost is the most objects one POSTed envelope may hold
	// (default 10,000); a larger envelope is refused whole with 422 before
	// anything is stored. It is advertised in the API root's description.
	MaxObjectsPerPost int
	// StatusDetailsLimit caps each of a status resource's successes,
	// failures and pendings lists (default 10,000); the counts stay exact.
	StatusDetailsLimit int
	// StatusRetention is how long a status resource stays readable
	// (default 7 days; taxii21.md S-8.3 asks for at least 24 hours).
	StatusRetention time.Duration
	// CursorSecret keys the HMAC of the next cursors (taxii21.md D-8); at
	// least 16 bytes.
	CursorSecret []byte
	// Users authenticate with HTTP Basic; APIKeys with Bearer or Token.
	// With neither, every request is refused with 401.
	Users   []User
	APIKeys []APIKey
	// Ready reports whether the service is ready (GET /readyz); nil means always.
	Ready func() error
	// ReadyDetails, when set, adds members to the /readyz body beside
	// "status", e.g. which replica leads the sync (scale-out).
	ReadyDetails func() map[string]any
	// Now is the clock (default time.Now).
	Now func() time.Time

	// Operations (issue 11): metrics, storage faults, rate limits,
	// compression and the admin status page.

	// Observer receives request and delivery events (metrics); nil means none.
	Observer Observer
	// OnServerError is called with the error of every request that ended
	// in a 500, so that the caller can recognise storage faults.
	OnServerError func(error)
	// RateLimit is the default per-principal request rate; a user's or API
	// key's own RateLimit replaces it. The zero value means no limit.
	RateLimit RateLimit
	// AuthFailureLimit throttles failed authentication per source address,
	// before any bcrypt work (default 10 failures, then one per 6 s;
	// RequestsPerSecond < 0 turns the throttle off).
	AuthFailureLimit RateLimit
	// DisableGzip turns off gzip responses (on by default for clients
	// that send Accept-Encoding: gzip).
	DisableGzip bool
	// Status supplies the admin status page with what the store does not
	// know (sync runs, configuration summary).
	Status StatusSource
}

// User is a principal authenticated by HTTP Basic against a bcrypt hash.
type User struct {
	Name         string
	PasswordHash string
	// Read and Write list the collections (aliases, ids or "*") the user may
	// read from and write to.
	Read, Write []string
	// MaxTLP hides every object marked above it; tlp.None means no cap.
	MaxTLP tlp.Level
	// EmptyList makes empty listings {"more":false,"objects":[]} (or
	// "versions":[]) instead of the spec's {}, for legacy clients that
	// cannot read {} (taxii21.md C-16, D-21). Off by default.
	EmptyList bool
	// Profile names the client's wire profile (profile.go); "" is "default".
	Profile string
	// RateLimit replaces Config.RateLimit for this principal when set.
	RateLimit *RateLimit
	// Admin lets the principal read the status page.
	Admin bool
	// BootstrapCurrent gives the principal the bootstrap view: a listing
	// without added_after (its first poll, and the pages that follow it)
	// serves only current objects — not revoked, not past valid_until —
	// while a poll with added_after serves everything, revocations
	// included. A SIEM starting from zero then skips years of dead
	// indicators and still learns of later revocations.
	BootstrapCurrent bool
}

// APIKey is a principal authenticated by "Authorization: Bearer <key>" or
// "Token <key>" (or the key as a Basic user name or password, taxii21.md C-17).
type APIKey struct {
	Name string
	// KeySHA256 is the hex SHA-256 of the key.
	KeySHA256   string
	Read, Write []string
	MaxTLP      tlp.Level
	// EmptyList is User.EmptyList for this key.
	EmptyList bool
	// Profile, RateLimit, Admin and BootstrapCurrent are as for User.
	Profile          string
	RateLimit        *RateLimit
	Admin            bool
	BootstrapCurrent bool
}

// Server is the TAXII 2.1 HTTP handler.
type Server struct {
	store   Store
	cfg     Config
	log     *slog.Logger
	echo    *echo.Echo
	auth    *authenticator
	cursors cursorCodec
	now     func() time.Time
	root    string // "/<api root>/"
	cols    collectionCache
	// pageBytes is the response-byte budget of one objects page.
	pageBytes int
	prefetch  *prefetcher

	// Operations (issue 11).
	obs        Observer
	gen        atomic.Uint64 // bumped by every successful write request (ETag input)
	etagSalt   string        // per process: ETags never outlive a restart's configuration
	authFails  *addrLimiter
	deliveries deliveries
	handler    http.Handler // echo, behind gzip unless disabled
}

// defaultPageBytes is the response-byte budget of one objects page
// (taxii21.md D-10, C-20): 10,000 typical objects fit, 10,000 objects of a
// megabyte do not.
const defaultPageBytes = 32 << 20

// Prefetching (prefetch.go): at most prefetchSlots pages held, each for at
// most prefetchTTL, and served after prefetchFresh only while the
// collection is unchanged for the reader.
const (
	prefetchSlots = 8
	prefetchTTL   = 10 * time.Second
	prefetchFresh = time.Second
)

// New builds the server. It checks the configuration (API root shape, bcrypt
// hashes, API key digests, cursor secret) and returns an error naming the
// first problem.
func New(store Store, cfg Config, log *slog.Logger) (*Server, error) {
	if store == nil {
		return nil, errors.New("taxii: nil store")
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.APIRoot == "" {
		cfg.APIRoot = "threatconnect"
	}
	if err := config.CheckAPIRoot(cfg.APIRoot); err != nil {
		return nil, fmt.Errorf("taxii: %w", err)
	}
	if cfg.Title == "" {
		cfg.Title = "TAXII 2.1 server"
	}
	if cfg.DefaultPageSize <= 0 {
		cfg.DefaultPageSize = 1000
	}
	if cfg.MaxPageSize <= 0 {
		cfg.MaxPageSize = 10000
	}
	if cfg.DefaultPageSize > cfg.MaxPageSize {
		cfg.DefaultPageSize = cfg.MaxPageSize
	}
	if cfg.MaxContentLength <= 0 {
		cfg.MaxContentLength = 10 << 20
	}
	if cfg.MaxObjectsPerPost <= 0 {
		cfg.MaxObjectsPerPost = 10000
	}
	if cfg.StatusDetailsLimit <= 0 {
		cfg.StatusDetailsLimit = 10000
	}
	if cfg.StatusRetention <= 0 {
		cfg.StatusRetention = 7 * 24 * time.Hour
	}
	if len(cfg.CursorSecret) < config.MinCursorSecret {
		return nil, fmt.Errorf("taxii: cursor secret is %d bytes, want at least %d", len(cfg.CursorSecret), config.MinCursorSecret)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	auth, err := newAuthenticator(cfg.Users, cfg.APIKeys, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("taxii: %w", err)
	}
	if err := auth.configure(cfg); err != nil {
		return nil, fmt.Errorf("taxii: %w", err)
	}
	s := &Server{
		store:   store,
		cfg:     cfg,
		log:     log,
		auth:    auth,
		cursors: cursorCodec{secret: append([]byte(nil), cfg.CursorSecret...), root: cfg.APIRoot},
		now:     cfg.Now,
		root:    "/" + cfg.APIRoot + "/",

		pageBytes: defaultPageBytes,
		prefetch:  newPrefetcher(prefetchSlots, prefetchTTL, prefetchFresh, cfg.Now),
	}
	s.initOps()
	s.echo = s.routes()
	s.handler = s.echo
	if !cfg.DisableGzip {
		s.handler = gzipHandler(s.echo)
	}
	return s, nil
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// routes builds the Echo instance. The table reads like taxii21.md §1.2;
// each route is served with and without its trailing slash (D-11) by the
// Pre middleware trimSlash, never by a redirect.
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	e.Pre(trimSlash)
	e.Use(s.observe)
	e.Use(s.requestLog)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true, DisableErrorHandler: false}))
	e.Use(s.commonHeaders)
	e.Use(s.authenticate)
	e.Use(s.rateLimit)
	e.Use(s.negotiate)
	e.Use(s.conditional)

	// get registers a GET route and the same handler for HEAD (RFC 9110 §9.3.2).
	get := func(path string, h echo.HandlerFunc) {
		e.GET(path, h)
		e.HEAD(path, h)
	}
	get("/healthz", s.healthz)
	get("/readyz", s.readyz)
	get(adminStatusPath, s.statusPage)

	get("/taxii2", s.discovery)
	r := "/" + s.cfg.APIRoot
	get(r, s.apiRoot)
	get(r+"/status/:status", s.status)
	get(r+"/collections", s.collections)
	get(r+"/collections/:collection", s.collection)
	get(r+"/collections/:collection/manifest", s.manifest)
	get(r+"/collections/:collection/objects", s.objects)
	e.POST(r+"/collections/:collection/objects", s.addObjects)
	get(r+"/collections/:collection/objects/:object", s.object)
	e.DELETE(r+"/collections/:collection/objects/:object", s.deleteObject)
	get(r+"/collections/:collection/objects/:object/versions", s.versions)
	return e
}

// trimSlash rewrites ".../" to "..." before routing so both spellings of
// every endpoint reach the same handler without a redirect (taxii21.md C-2, D-11).
func trimSlash(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Request().URL
		if len(u.Path) > 1 && strings.HasSuffix(u.Path, "/") {
			u.Path = strings.TrimRight(u.Path, "/")
			if u.Path == "" {
				u.Path = "/"
			}
		}
		if len(u.RawPath) > 1 && strings.HasSuffix(u.RawPath, "/") {
			u.RawPath = strings.TrimRight(u.RawPath, "/")
			if u.RawPath == "" {
				u.RawPath = "/"
			}
		}
		return next(c)
	}
}

// isOps reports whether the request is for an operational endpoint outside
// TAXII (no authentication, no TAXII media type).
func isOps(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == "/healthz" || p == "/readyz"
}

// isAdmin reports whether the request is for the HTML status page, which
// needs a principal but is not TAXII (no TAXII media type or Accept check).
func isAdmin(c echo.Context) bool { return c.Request().URL.Path == adminStatusPath }

// commonHeaders sets the headers every TAXII response carries: the exact
// media type (D-13, C-3, also on errors), no shared caching of intelligence (B-3).
func (s *Server) commonHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		if !isOps(c) && !isAdmin(c) {
			h.Set(echo.HeaderContentType, MediaType)
			h.Set("Cache-Control", "private, no-cache")
		}
		return next(c)
	}
}

// requestLog logs one line per request.
func (s *Server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// Let the error handler write the response first so the status is known.
			c.Error(err)
		}
		req := c.Request()
		if !s.log.Enabled(req.Context(), slog.LevelDebug) {
			return nil
		}
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.Int("status", c.Response().Status),
			slog.Int64("bytes", c.Response().Size),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.RealIP()),
		}
		if p := principalOf(c); p != nil {
			attrs = append(attrs, slog.String("principal", p.name))
		}
		s.log.LogAttrs(req.Context(), slog.LevelDebug, "taxii request", attrs...)
		return nil
	}
}

// healthz reports that the process is up.
func (s *Server) healthz(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, []byte(`{"status":"ok"}`))
}

// readyz reports whether the caller-supplied readiness check passes, with
// the caller's details.
func (s *Server) readyz(c echo.Context) error {
	code, status := http.StatusOK, "ready"
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.log.Warn("not ready", slog.Any("error", err))
			code, status = http.StatusServiceUnavailable, "not ready"
		}
	}
	if s.cfg.ReadyDetails == nil {
		return c.JSONBlob(code, []byte(`{"status":"`+status+`"}`))
	}
	body := map[string]any{}
	for k, v := range s.cfg.ReadyDetails() {
		body[k] = v
	}
	body["status"] = status
	return c.JSON(code, body)
}
