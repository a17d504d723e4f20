package taxii

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/crypto/bcrypt"

	"github.com/taxii-bridge/taxii-bridge/storage"
)

// variedObject is indicator i with the variety real mapper output has:
// random-looking UUIDs, addresses, times, confidences, one of several
// descriptions and label sets; benchObject's sequential ids and constant
// text compress far better than real pages do.
func variedObject(i int) storage.Object {
	h := sha256.Sum256([]byte(fmt.Sprint("obj", i)))
	id := fmt.Sprintf("indicator--%x-%x-4%x-8%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
	created := baseTime.Add(-time.Duration(binary.BigEndian.Uint32(h[16:20])%(3*365*24*3600)) * time.Second)
	ts := stixTime(created)
	ip := fmt.Sprintf("%d.%d.%d.%d", h[20], h[21], h[22], h[23])
	descs := []string{
		"Address observed in command and control traffic of a commodity loader.",
		"Scanning host reported by the sharing community; seen against VPN gateways.",
		"Phishing landing page infrastructure, credential harvesting kit.",
		"Sinkholed domain resolution; previously used by a banking trojan.",
		"Tor exit node used in brute-force attempts on exposed RDP.",
		"Cobalt Strike team server fingerprinted by its TLS certificate.",
		"Mass exploitation of a file transfer appliance vulnerability.",
		"Botnet node participating in DDoS campaigns against financial services.",
	}
	labels := [][]string{{"c2", "loader"}, {"scanner"}, {"phishing", "credential-theft"}, {"botnet", "ddos"}, {"ransomware", "initial-access"}}
	lb, _ := json.Marshal(labels[int(h[24])%len(labels)])
	js := fmt.Sprintf(`{"confidence":%d,"created":"%s","created_by_ref":"identity--2f9a8a3c-1111-4e0e-9d9b-123456789abc","description":%q,"id":"%s","indicator_types":["malicious-activity"],"labels":%s,"modified":"%s","name":"%s","object_marking_refs":["%s"],"pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","spec_version":"2.1","type":"indicator","valid_from":"%s","x_threatconnect_rating":%d}`,
		int(h[25])%101, ts, descs[int(h[26])%len(descs)], id, lb, ts, ip, tlpGreen, ip, ts, int(h[27])%6)
	return storage.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Created: created, Modified: created, TLP: 2,
		Hash: hash16([]byte(js)), JSON: []byte(js)}
}

// opsBenchServer is a server over a store of n benchmark objects in
// collection "intel", with a fixed clock so the auth cache never expires.
func opsBenchServer(b *testing.B, n int, mutate ...func(*Config)) (*Server, storage.Collection) {
	b.Helper()
	ctx := b.Context()
	st, err := storage.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	col, err := st.EnsureCollection(ctx, storage.Collection{Alias: "intel", Title: "Intel", Kind: "owner"})
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += 1000 {
		objs := make([]storage.Object, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			objs = append(objs, variedObject(i))
		}
		if err := st.Update(ctx, func(tx *storage.Tx) error { _, err := tx.Put(col.ID, objs); return err }); err != nil {
			b.Fatal(err)
		}
	}
	cfg := testConfig(b)
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg.Now = func() time.Time { return fixed }
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(st, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return srv, col
}

// BenchmarkIdlePoll is the idle poll of DESIGN.md §8 (goal ≤ 50 µs server
// CPU): a client repeats a poll of a 10,000-object collection with the
// ETag it got, and the server answers 304 (etag.go). The handler runs
// in-process, so cpu-us/poll is server CPU only (routing, auth cache,
// Accept, the newest-date_added probe, the ETag hash). For comparison,
// "added_after-past-newest" is the other idle poll: an empty page.
func BenchmarkIdlePoll(b *testing.B) {
	srv, col := opsBenchServer(b, 10_000)
	path := "/api1/collections/" + col.ID + "/objects/?match[type]=indicator"
	do := func(h map[string]string, p string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, p, nil)
		r.Header.Set("Authorization", basic("alice", "alice-pw"))
		r.Header.Set("Accept", MediaType)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	first := do(nil, path)
	etag := first.Header().Get("ETag")
	if first.Code != http.StatusOK || etag == "" {
		b.Fatalf("first poll = %d, ETag %q", first.Code, etag)
	}
	b.Run("etag-304", func(b *testing.B) {
		h := map[string]string{"If-None-Match": etag}
		cpu0 := cpuTime()
		for b.Loop() {
			if w := do(h, path); w.Code != http.StatusNotModified {
				b.Fatalf("poll = %d", w.Code)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-us/poll")
	})
	b.Run("added_after-past-newest", func(b *testing.B) {
		p := path + "&added_after=2099-01-01T00:00:00Z"
		cpu0 := cpuTime()
		for b.Loop() {
			if w := do(nil, p); w.Code != http.StatusOK || w.Body.String() != "{}" {
				b.Fatalf("poll = %d %s", w.Code, w.Body.String())
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-us/poll")
	})
}

// BenchmarkGzip compares the two gzip implementations the issue names on a
// 1,000-object objects page (about 640 KB): compress/gzip at its default
// level, which Echo's Gzip middleware uses, and klauspost/compress's gzhttp,
// which the server uses, on varied indicators (variedObject). Each writes
// through its real HTTP middleware.
// bytes-ratio is identity bytes / compressed bytes.
func BenchmarkGzip(b *testing.B) {
	srv, col := opsBenchServer(b, 1000, func(c *Config) { c.MaxPageSize = 1000 })
	r := httptest.NewRequest(http.MethodGet, "/api1/collections/"+col.ID+"/objects/?limit=1000", nil)
	r.Header.Set("Authorization", basic("alice", "alice-pw"))
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	page := w.Body.Bytes()
	if w.Code != http.StatusOK || bytes.Count(page, []byte(`"type":"indicator"`)) != 1000 {
		b.Fatalf("page = %d, %d bytes", w.Code, len(page))
	}
	blob := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", MediaType)
		w.Write(page)
	}
	e := echo.New()
	e.Use(middleware.Gzip())
	e.GET("/", func(c echo.Context) error { return c.Blob(http.StatusOK, MediaType, page) })
	impls := []struct {
		name string
		h    http.Handler
		dec  func(io.Reader) (io.Reader, error)
	}{
		{"echo-middleware(compress/gzip)", e, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"gzhttp(klauspost)", gzipHandler(http.HandlerFunc(blob)), func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) }},
	}
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			var size int
			cpu0 := cpuTime()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				rec := httptest.NewRecorder()
				im.h.ServeHTTP(rec, req)
				if rec.Header().Get("Content-Encoding") != "gzip" {
					b.Fatalf("Content-Encoding = %q", rec.Header().Get("Content-Encoding"))
				}
				size = rec.Body.Len()
				if b.N == 1 {
					zr, err := im.dec(rec.Body)
					if err != nil {
						b.Fatal(err)
					}
					plain, _ := io.ReadAll(zr)
					if !bytes.Equal(plain, page) {
						b.Fatal("round trip differs")
					}
				}
			}
			b.ReportMetric(float64(len(page))/float64(size), "bytes-ratio")
			b.ReportMetric(float64(size), "gzip-bytes")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/page")
		})
	}
}

// BenchmarkAuthFlood reproduces the operator test over loopback
// HTTP: while eight senders on 127.0.0.2 guess Basic passwords of a real
// user (bcrypt cost 12, as hash-password makes; a different guess each
// time, so neither the cache nor singleflight helps), a client on
// 127.0.0.1 makes sequential requests and its median latency is compared
// with its idle value. "throttled" is the default failed-auth throttle,
// "unthrottled" turns it off to show what it prevents. The flood is paced
// at 8 × 20 = 160 guesses a second (forty times the rate the issue saw);
// a sender whose answer is slower than its pace sends the next at once.
// The measured client sends one request every 10 ms for one second.
// Everything runs on loopback, bounded by the measurement, then stops.
func BenchmarkAuthFlood(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 12)
	if err != nil {
		b.Fatal(err)
	}
	const goodRequests = 100
	client := func(local string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
	}
	get := func(c *http.Client, url, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", auth)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	measure := func(base, path string, flood bool) (median time.Duration, floodSent, throttled int64) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var sent, limited atomic.Int64
		if flood {
			fc := client("127.0.0.2")
			for s := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t := time.NewTicker(50 * time.Millisecond)
					defer t.Stop()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						if get(fc, base+"/taxii2/", basic("good", fmt.Sprintf("guess-%d-%d", s, i))) == http.StatusTooManyRequests {
							limited.Add(1)
						}
						sent.Add(1)
					}
				}()
			}
			time.Sleep(2 * time.Second) // the first ten guesses are checked (bcrypt); then the steady state
		}
		gc := client("127.0.0.1")
		lats := make([]time.Duration, 0, goodRequests)
		pace := time.NewTicker(10 * time.Millisecond) // a poller, not a tight loop: one second of measurement
		defer pace.Stop()
		for range goodRequests {
			<-pace.C
			t0 := time.Now()
			if code := get(gc, base+path, basic("alice", "alice-pw")); code != http.StatusOK {
				b.Fatalf("good client = %d", code)
			}
			lats = append(lats, time.Since(t0))
		}
		close(stop)
		wg.Wait()
		slices.Sort(lats)
		return lats[len(lats)/2], sent.Load(), limited.Load()
	}
	for _, tc := range []struct {
		name  string
		limit RateLimit
	}{{"throttled", RateLimit{}}, {"unthrottled", RateLimit{RequestsPerSecond: -1}}} {
		b.Run(tc.name, func(b *testing.B) {
			srv, col := opsBenchServer(b, 1000, func(c *Config) {
				c.Now = time.Now
				c.Users = append(c.Users, User{Name: "good", PasswordHash: string(hash), Read: []string{"*"}})
				c.AuthFailureLimit = tc.limit
			})
			ts := httptest.NewServer(srv)
			defer ts.Close()
			path := "/api1/collections/" + col.ID + "/objects/?limit=20"
			for b.Loop() {
				idle, _, _ := measure(ts.URL, path, false)
				flooded, sent, limited := measure(ts.URL, path, true)
				b.ReportMetric(float64(idle.Microseconds()), "idle-median-us")
				b.ReportMetric(float64(flooded.Microseconds()), "flood-median-us")
				b.ReportMetric(float64(flooded)/float64(idle), "flood/idle")
				b.ReportMetric(float64(sent), "flood-requests")
				b.ReportMetric(float64(limited), "flood-429s")
			}
		})
	}
}
