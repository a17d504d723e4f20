package taxii

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// principal is an authenticated client and what it may do (taxii21.md D-14, D-15).
type principal struct {
	name        string
	read, write access
	maxTLP      tlp.Level
	emptyList   bool // C-16 compatibility: [] instead of {} on empty listings

	// Set by authenticator.configure (issue 11).
	wire    wire          // the client profile's wire behaviours (profile.go)
	limiter *rate.Limiter // nil: no rate limit (ratelimit.go)
	admin   bool          // may read the status page
	// bootstrapCurrent: listings without added_after serve current
	// objects only (User.BootstrapCurrent).
	bootstrapCurrent bool
}

// access is a list of collection aliases or ids, or everything ("*").
type access struct {
	all   bool
	names map[string]bool
}

func newAccess(list []string) access {
	a := access{names: map[string]bool{}}
	for _, n := range list {
		n = strings.TrimSpace(n)
		if n == "*" {
			a.all = true
		} else if n != "" {
			a.names[n] = true
			a.names[strings.ToLower(n)] = true
		}
	}
	return a
}

func (a access) allows(c storage.Collection) bool {
	return a.all || a.names[c.ID] || (c.Alias != "" && a.names[c.Alias])
}

// canRead reports whether p may use Get Objects, Get an Object, manifest and versions on c.
func (p *principal) canRead(c storage.Collection) bool { return p.read.allows(c) }

// canWrite reports whether p may add objects to or delete objects from c;
// TC-fed collections are never writable (D-16).
func (p *principal) canWrite(c storage.Collection) bool { return c.CanWrite && p.write.allows(c) }

// sees reports whether c exists for p at all; collections p cannot see are
// absent from listings and 404 everywhere (D-15, A-4).
func (p *principal) sees(c storage.Collection) bool { return p.canRead(c) || p.canWrite(c) }

// tlpCap is the storage TLP rank above which objects are invisible to p.
func (p *principal) tlpCap() int {
	if p.maxTLP == tlp.None {
		return int(tlp.Red)
	}
	return int(p.maxTLP)
}

type userCred struct {
	hash []byte
	p    *principal
}

type keyCred struct {
	sum [sha256.Size]byte
	p   *principal
}

type cached struct {
	p       *principal
	expires time.Time
}

// authenticator checks credentials. bcrypt is slow by design, so successful
// verifications are cached for cacheTTL, keyed by a SHA-256 of the whole
// Authorization header (the header itself is never kept), and concurrent
// identical verifications share one bcrypt run: 32 pollers with the same
// password cost one bcrypt per TTL, not 32 per request.
type authenticator struct {
	users map[string]userCred
	keys  []keyCred
	now   func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
	group singleflight.Group

	dummyOnce sync.Once
	dummy     []byte
}

const (
	cacheTTL     = time.Minute
	cacheEntries = 4096
)

var errBadCredentials = errors.New("bad credentials")

func newAuthenticator(users []User, keys []APIKey, now func() time.Time) (*authenticator, error) {
	a := &authenticator{users: map[string]userCred{}, now: now, cache: map[[sha256.Size]byte]cached{}}
	for i, u := range users {
		if u.Name == "" {
			return nil, fmt.Errorf("users[%d]: empty name", i)
		}
		if strings.Contains(u.Name, ":") {
			return nil, fmt.Errorf("users[%d] %q: name contains ':'", i, u.Name)
		}
		if _, dup := a.users[u.Name]; dup {
			return nil, fmt.Errorf("users[%d]: duplicate name %q", i, u.Name)
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			return nil, fmt.Errorf("users[%d] %q: password hash is not bcrypt: %w", i, u.Name, err)
		}
		a.users[u.Name] = userCred{
			hash: []byte(u.PasswordHash),
			p:    &principal{name: "user:" + u.Name, read: newAccess(u.Read), write: newAccess(u.Write), maxTLP: u.MaxTLP, emptyList: u.EmptyList},
		}
	}
	for i, k := range keys {
		raw, err := hex.DecodeString(strings.TrimSpace(k.KeySHA256))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("api_keys[%d] %q: key_sha256 must be 64 hex digits", i, k.Name)
		}
		kc := keyCred{p: &principal{name: "key:" + k.Name, read: newAccess(k.Read), write: newAccess(k.Write), maxTLP: k.MaxTLP, emptyList: k.EmptyList}}
		copy(kc.sum[:], raw)
		a.keys = append(a.keys, kc)
	}
	return a, nil
}

// authenticate returns the principal for an Authorization header value. It
// takes Basic (user:password, or an API key as user name or password),
// Bearer <key> and Token <key> (taxii21.md C-17).
func (a *authenticator) authenticate(header string) (*principal, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer", "token":
		if p := a.key(cred); p != nil {
			return p, nil
		}
		return nil, errBadCredentials
	case "basic":
		return a.basic(header, cred)
	}
	return nil, errBadCredentials
}

// key finds the API key, comparing every configured digest in constant time.
func (a *authenticator) key(k string) *principal {
	if k == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(k))
	var found *principal
	for i := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], a.keys[i].sum[:]) == 1 && found == nil {
			found = a.keys[i].p
		}
	}
	return found
}

func (a *authenticator) basic(header, cred string) (*principal, error) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return nil, errBadCredentials
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errBadCredentials
	}
	u, isUser := a.users[user]
	if !isUser {
		// An API key in the password or user name slot (C-17).
		if p := a.key(pass); p != nil {
			return p, nil
		}
		if p := a.key(user); p != nil {
			return p, nil
		}
	}
	ck := keyOf(header)
	if p := a.cached(ck); p != nil {
		return p, nil
	}

	v, err, _ := a.group.Do(string(ck[:]), func() (any, error) {
		if !isUser {
			// Spend the same time as a real check so user names cannot be probed.
			_ = bcrypt.CompareHashAndPassword(a.dummyHash(), []byte(pass))
			return nil, errBadCredentials
		}
		if bcrypt.CompareHashAndPassword(u.hash, []byte(pass)) != nil {
			return nil, errBadCredentials
		}
		a.remember(ck, u.p)
		return u.p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*principal), nil
}

// cached returns the principal of a verification cached under k, or nil.
func (a *authenticator) cached(k [sha256.Size]byte) *principal {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.cache[k]; ok && now.Before(e.expires) {
		return e.p
	}
	return nil
}

// cheap authenticates without bcrypt: API keys (a SHA-256 each) and Basic
// credentials verified within the cache TTL. It is what a throttled
// source address may still use (ratelimit.go).
func (a *authenticator) cheap(header string) *principal {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer", "token":
		return a.key(cred)
	case "basic":
		if p := a.cached(keyOf(header)); p != nil {
			return p
		}
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if _, isUser := a.users[user]; ok && !isUser {
			if p := a.key(pass); p != nil {
				return p
			}
			return a.key(user)
		}
	}
	return nil
}

// keyOf is the cache key of an Authorization header value.
func keyOf(header string) [sha256.Size]byte { return sha256.Sum256([]byte("basic\x00" + header)) }

func (a *authenticator) remember(k [sha256.Size]byte, p *principal) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= cacheEntries {
		for key, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, key)
			}
		}
		if len(a.cache) >= cacheEntries {
			clear(a.cache)
		}
	}
	a.cache[k] = cached{p: p, expires: now.Add(cacheTTL)}
}

func (a *authenticator) dummyHash() []byte {
	a.dummyOnce.Do(func() {
		cost := bcrypt.DefaultCost
		for _, u := range a.users {
			if c, err := bcrypt.Cost(u.hash); err == nil {
				cost = c
				break
			}
		}
		var pw [16]byte
		_, _ = rand.Read(pw[:])
		a.dummy, _ = bcrypt.GenerateFromPassword(pw[:], cost)
	})
	return a.dummy
}

const principalKey = "taxii.principal"

func principalOf(c echo.Context) *principal {
	p, _ := c.Get(principalKey).(*principal)
	return p
}

// authenticate is the middleware: every TAXII request needs a principal;
// there is no anonymous access, and with no principals configured every
// request gets 401 (taxii21.md S-1.12, C-18).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isOps(c) {
			return next(c)
		}
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		if h == "" {
			return fail(http.StatusUnauthorized, "authentication required (Basic, Bearer or Token)")
		}
		// A source address that keeps failing is refused before any
		// bcrypt work; credentials that need none still pass (ratelimit.go).
		ip := c.RealIP()
		var p *principal
		if wait := s.authFails.blocked(ip); wait > 0 {
			if p = s.auth.cheap(h); p == nil {
				s.obs.AuthFailure(true)
				return tooMany(c, wait, "too many failed authentications from this address")
			}
		} else {
			var err error
			if p, err = s.auth.authenticate(h); err != nil {
				s.authFails.fail(ip)
				s.obs.AuthFailure(false)
				return fail(http.StatusUnauthorized, "the credentials were not accepted")
			}
		}
		c.Set(principalKey, p)
		return next(c)
	}
}
