package taxii

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/taxii-bridge/taxii-bridge/storage"
	"github.com/taxii-bridge/taxii-bridge/tlp"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// Test principals. Passwords are the user name + "-pw".
//
//	alice: read and write everything, no TLP cap
//	greg:  reads intel and submissions, TLP cap GREEN
//	wanda: writes submissions only (can see it, cannot read it)
//	rita:  reads submissions only
//	key "opencti-key": API key reading intel
const (
	testKey    = "opencti-key"
	testSecret = "0123456789abcdef0123456789abcdef"
)

var (
	hashOnce sync.Once
	hashes   map[string]string
)

func testHashes(t testing.TB) map[string]string {
	hashOnce.Do(func() {
		hashes = map[string]string{}
		for _, n := range []string{"alice", "greg", "wanda", "rita"} {
			h, err := bcrypt.GenerateFromPassword([]byte(n+"-pw"), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			hashes[n] = string(h)
		}
	})
	return hashes
}

func keyDigest(k string) string {
	s := sha256.Sum256([]byte(k))
	return hex.EncodeToString(s[:])
}

func testConfig(t testing.TB) Config {
	h := testHashes(t)
	return Config{
		Title:           "test server",
		APIRoot:         "api1",
		DefaultPageSize: 100,
		MaxPageSize:     500,
		CursorSecret:    []byte(testSecret),
		Users: []User{
			{Name: "alice", PasswordHash: h["alice"], Read: []string{"*"}, Write: []string{"*"}},
			{Name: "greg", PasswordHash: h["greg"], Read: []string{"intel", "submissions"}, MaxTLP: tlp.Green},
			{Name: "wanda", PasswordHash: h["wanda"], Write: []string{"submissions"}},
			{Name: "rita", PasswordHash: h["rita"], Read: []string{"submissions"}},
		},
		APIKeys: []APIKey{{Name: "opencti", KeySHA256: keyDigest(testKey), Read: []string{"intel"}}},
	}
}

// fixture is a server over a real SQLite file (taxii21.md H14: never mock SQL).
type fixture struct {
	t     testing.TB
	store *storage.Store
	srv   *Server
	cols  map[string]storage.Collection // by alias
	clock *testClock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// pgTests holds the (sub)tests onBackends runs on PostgreSQL: newFixture
// opens their store there, in a fresh schema.
var pgTests sync.Map // testing.TB -> struct{}

// onBackends runs test on a SQLite store and, with TB_POSTGRES_URL, on a
// PostgreSQL one (skipped with a message otherwise).
func onBackends(t *testing.T, test func(t *testing.T)) {
	t.Run("sqlite", test)
	t.Run("postgres", func(t *testing.T) {
		pgtest.URL(t)
		pgTests.Store(t, struct{}{})
		defer pgTests.Delete(t)
		test(t)
	})
}

func newFixture(t testing.TB, mutate ...func(*Config)) *fixture {
	t.Helper()
	ctx := t.Context()
	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	// The store shares the server's clock, so status expiry is decided on
	// one time line.
	var st *storage.Store
	var err error
	if _, pg := pgTests.Load(t); pg {
		u, _ := pgtest.Schema(t, "tb_taxii")
		st, err = storage.OpenPostgres(ctx, u, storage.WithNow(clock.now))
	} else {
		st, err = storage.Open(ctx, filepath.Join(t.TempDir(), "taxii.db"), storage.WithNow(clock.now))
	}
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, store: st, cols: map[string]storage.Collection{}, clock: clock}
	for _, c := range []storage.Collection{
		{Alias: "intel", Title: "Intel", Description: "from TC", Kind: "owner"},
		{Alias: "submissions", Title: "Submissions", Kind: "local", CanWrite: true},
		{Alias: "secret", Title: "Secret", Kind: "owner"},
	} {
		got, err := st.EnsureCollection(ctx, c)
		if err != nil {
			t.Fatalf("ensure collection %s: %v", c.Alias, err)
		}
		f.cols[c.Alias] = got
	}
	cfg := testConfig(t)
	cfg.Now = f.clock.now
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv = srv
	return f
}

// stixObj describes a test object; JSON is built and checked by checkObject
// exactly as POST would, so test data is canonical STIX.
type stixObj struct {
	typ      string
	n        int // uuid suffix
	created  time.Time
	modified time.Time // zero: unversioned
	marking  string    // a TLP marking-definition id, or ""
	name     string
}

var baseTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func stixID(typ string, n int) string {
	return fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", typ, n)
}

func (o stixObj) raw() []byte {
	m := map[string]any{"type": o.typ, "id": stixID(o.typ, o.n), "spec_version": "2.1"}
	if !o.created.IsZero() {
		m["created"] = stixTime(o.created)
	}
	if !o.modified.IsZero() {
		m["modified"] = stixTime(o.modified)
	}
	if o.marking != "" {
		m["object_marking_refs"] = []string{o.marking}
	}
	switch o.typ {
	case "indicator":
		m["pattern"] = fmt.Sprintf("[ipv4-addr:value = '10.0.%d.%d']", o.n/256, o.n%256)
		m["pattern_type"] = "stix"
		m["valid_from"] = stixTime(o.created)
		m["name"] = o.name
	case "ipv4-addr":
		m["value"] = fmt.Sprintf("10.1.%d.%d", o.n/256, o.n%256)
	}
	b, _ := json.Marshal(m)
	return b
}

func (o stixObj) object(t testing.TB) storage.Object {
	t.Helper()
	obj, _, err := checkObject(o.raw())
	if err != nil {
		t.Fatalf("test object %s: %v", o.raw(), err)
	}
	return obj
}

// ind is indicator n, version v (modified = created + v minutes).
func ind(n, v int, marking string) stixObj {
	return stixObj{typ: "indicator", n: n, created: baseTime, modified: baseTime.Add(time.Duration(v) * time.Minute), marking: marking, name: fmt.Sprintf("ind %d v%d", n, v)}
}

const (
	tlpGreen = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	tlpAmber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	tlpRed   = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
)

func (f *fixture) put(alias string, objs ...stixObj) {
	f.t.Helper()
	var so []storage.Object
	for _, o := range objs {
		so = append(so, o.object(f.t))
	}
	err := f.store.Update(f.t.Context(), func(tx *storage.Tx) error {
		_, err := tx.Put(f.cols[alias].ID, so)
		return err
	})
	if err != nil {
		f.t.Fatalf("put: %v", err)
	}
}

// req is a request description for do.
type req struct {
	method, path, who string
	accept            *string // nil: the TAXII media type
	ctype             string
	body              []byte
	header            map[string]string
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func (f *fixture) do(r req) *httptest.ResponseRecorder {
	f.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.accept == nil {
		hr.Header.Set("Accept", MediaType)
	} else if *r.accept != "" {
		hr.Header.Set("Accept", *r.accept)
	}
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	switch r.who {
	case "":
	case "key":
		hr.Header.Set("Authorization", "Bearer "+testKey)
	default:
		hr.Header.Set("Authorization", basic(r.who, r.who+"-pw"))
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, hr)
	return w
}

func (f *fixture) get(who, path string) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.do(req{path: path, who: who})
}

func (f *fixture) colPath(alias, rest string) string {
	return "/api1/collections/" + f.cols[alias].ID + "/" + rest
}

// envelopeResp is a decoded envelope, manifest or versions resource.
type envelopeResp struct {
	More     *bool             `json:"more"`
	Next     *string           `json:"next"`
	Objects  []json.RawMessage `json:"objects"`
	Versions []string          `json:"versions"`
}

func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, w.Body.String(), err)
	}
	return v
}

// ids returns the "id" of each object (or manifest record) in order.
func ids(t testing.TB, objs []json.RawMessage) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		var x struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(o, &x); err != nil {
			t.Fatalf("object %s: %v", o, err)
		}
		out = append(out, x.ID)
	}
	return out
}

func wantStatus(t testing.TB, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != MediaType {
		t.Fatalf("Content-Type = %q, want %q (taxii21.md C-3)", ct, MediaType)
	}
}

// wantError checks a TAXII error resource (taxii21.md D-12).
func wantError(t testing.TB, w *httptest.ResponseRecorder, status int, descContains string) {
	t.Helper()
	wantStatus(t, w, status)
	var e map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body.String(), err)
	}
	if e["title"] == nil || e["title"] == "" {
		t.Errorf("error body has no title: %s", w.Body.String())
	}
	if e["http_status"] != fmt.Sprint(status) {
		t.Errorf("http_status = %v, want the string %q", e["http_status"], fmt.Sprint(status))
	}
	if id, _ := e["error_id"].(string); id == "" {
		t.Errorf("error body has no error_id: %s", w.Body.String())
	}
	if descContains != "" && !strings.Contains(fmt.Sprint(e["description"]), descContains) {
		t.Errorf("description = %q, want it to contain %q", e["description"], descContains)
	}
}

var errTest = errors.New("test failure")

// nopStore satisfies Store for tests of New that never reach the store.
type nopStore struct{}

func (nopStore) Collections(context.Context) ([]storage.Collection, error) { return nil, errTest }
func (nopStore) Collection(context.Context, string) (storage.Collection, error) {
	return storage.Collection{}, errTest
}
func (nopStore) Objects(context.Context, storage.Query) (storage.Page, error) {
	return storage.Page{}, errTest
}
func (nopStore) Manifest(context.Context, storage.Query) (storage.Page, error) {
	return storage.Page{}, errTest
}
func (nopStore) Versions(context.Context, storage.Query) (storage.Page, error) {
	return storage.Page{}, errTest
}
func (nopStore) Status(context.Context, string) (storage.Status, error) {
	return storage.Status{}, errTest
}
func (nopStore) PutStatus(context.Context, storage.Status) error       { return errTest }
func (nopStore) Update(context.Context, func(*storage.Tx) error) error { return errTest }

// hash16 is a content hash as the store keeps it: SHA-256 cut to 16 bytes.
func hash16(b []byte) [16]byte {
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}
