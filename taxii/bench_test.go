package taxii

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taxii-bridge/taxii-bridge/storage"

	"github.com/taxii-bridge/taxii-bridge/internal/pgtest"
)

// benchObjects is the size of the benchmark collection: 1,000,000 by default
// (DESIGN.md §8); TAXII_BENCH_N changes it.
func benchObjects(b *testing.B) int {
	if v := os.Getenv("TAXII_BENCH_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("TAXII_BENCH_N=%q: want an integer >= 1000", v)
		}
		return n
	}
	return 1_000_000
}

// benchObject is indicator i as ~600 bytes of canonical JSON, like the sync writes.
func benchObject(i int) storage.Object {
	created := baseTime.Add(time.Duration(i) * time.Second)
	ts := stixTime(created)
	id := fmt.Sprintf("indicator--%08x-1111-4222-8333-%012x", i, i)
	ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	js := fmt.Sprintf(`{"confidence":%d,"created":"%s","created_by_ref":"identity--2f9a8a3c-1111-4e0e-9d9b-123456789abc","description":"Address observed in command and control traffic of a commodity loader; reported by the sharing community.","id":"%s","indicator_types":["malicious-activity"],"labels":["c2","loader"],"modified":"%s","name":"%s","object_marking_refs":["%s"],"pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","spec_version":"2.1","type":"indicator","valid_from":"%s","x_threatconnect_rating":3}`,
		i%100, ts, id, ts, ip, tlpGreen, ip, ts)
	return storage.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Created: created, Modified: created, TLP: 2,
		Hash: hash16([]byte(js)), JSON: []byte(js)}
}

// rssKB reads a field (VmRSS, VmHWM) of /proc/self/status in KiB.
func rssKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// BenchmarkServe builds one n-object collection through the storage API
// (once; not timed; TAXII_BENCH_DB names a file to keep and reuse) and
// measures, over loopback HTTP with Basic auth, with the client in a child
// process so that the CPU figures are the server's alone:
//
//   - crawl: the whole collection at limit=1000 following next (DESIGN.md §8:
//     ≤ 5 s, ≤ 5 µs server CPU per object, server RSS ≤ 200 MB). Peak RSS is
//     this process's high-water mark (VmHWM, reset before the crawl).
//   - get: single-object GETs by random id from 32 concurrent clients
//     (≤ 100 µs server CPU per request, p99 ≤ 10 ms).
//
// Server CPU is this process's user+system time over the run (handler,
// prefetch, net/http, GC) divided by the objects or requests served.
//
// TAXII_BENCH_BACKEND=postgres runs the same on PostgreSQL (TB_POSTGRES_URL,
// a fresh schema each run) and adds the database server's CPU (db-cpu-*).
//
// Run with: go test -run '^$' -bench BenchmarkServe -benchtime 1x ./taxii/
func BenchmarkServe(b *testing.B) {
	n := benchObjects(b)
	ctx := b.Context()
	path := os.Getenv("TAXII_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	_, statErr := os.Stat(path)
	open := func() (*storage.Store, error) { return storage.Open(ctx, path) }
	if os.Getenv("TAXII_BENCH_BACKEND") == "postgres" { // a fresh schema, built each run
		u, _ := pgtest.Schema(b, "tb_bench")
		statErr = os.ErrNotExist
		open = func() (*storage.Store, error) { return storage.OpenPostgres(ctx, u) }
	}
	st, err := open()
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	col, err := st.EnsureCollection(ctx, storage.Collection{Alias: "intel", Title: "Intel", Kind: "owner"})
	if err != nil {
		b.Fatal(err)
	}
	if statErr != nil {
		start := time.Now()
		const batch = 5000
		for i := 0; i < n; i += batch {
			objs := make([]storage.Object, 0, batch)
			for j := i; j < min(i+batch, n); j++ {
				objs = append(objs, benchObject(j))
			}
			if err := st.Update(ctx, func(tx *storage.Tx) error {
				_, err := tx.Put(col.ID, objs)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.Maintain(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("built %d objects in %s", n, time.Since(start).Round(time.Millisecond))
	}

	cfg := testConfig(b)
	cfg.DefaultPageSize, cfg.MaxPageSize = 1000, 10000
	srv, err := New(st, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	base := ts.URL + "/api1/collections/" + col.ID + "/objects/"

	b.Run("crawl", func(b *testing.B) {
		for b.Loop() {
			debug.FreeOSMemory()
			_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
			db0 := pgtest.ServerCPU()
			res, server, client := runBenchClient(b, "crawl", base, n)
			if res.Objects != n {
				b.Fatalf("crawled %d objects, want %d", res.Objects, n)
			}
			b.ReportMetric(res.Seconds, "crawl-s")
			b.ReportMetric(float64(server.Microseconds())/float64(n), "server-cpu-us/object")
			b.ReportMetric(float64((pgtest.ServerCPU()-db0).Microseconds())/float64(n), "db-cpu-us/object")
			b.ReportMetric(client.Seconds(), "client-cpu-s")
			b.ReportMetric(float64(rssKB("VmHWM"))/1024, "peak-rss-MB")
		}
	})

	b.Run("get", func(b *testing.B) {
		for b.Loop() {
			db0 := pgtest.ServerCPU()
			res, server, client := runBenchClient(b, "get", base, n)
			db := pgtest.ServerCPU() - db0
			lats := res.LatenciesUS
			slices.Sort(lats)
			q := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))]) / 1000 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(len(lats)), "requests")
			b.ReportMetric(float64(server.Microseconds())/float64(len(lats)), "server-cpu-us/req")
			b.ReportMetric(float64(db.Microseconds())/float64(len(lats)), "db-cpu-us/req")
			b.ReportMetric(float64(client.Microseconds())/float64(len(lats)), "client-cpu-us/req")
		}
	})
}

// benchClientResult is what the child client reports on its stdout.
type benchClientResult struct {
	Objects     int     `json:"objects"`
	Seconds     float64 `json:"seconds"`
	LatenciesUS []int64 `json:"latencies_us"`
}

// runBenchClient runs TestBenchClient in a child process against base and
// returns its report with the CPU time this process (the server) and the
// child (the client) spent meanwhile.
func runBenchClient(b *testing.B, mode, base string, n int) (benchClientResult, time.Duration, time.Duration) {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestBenchClient$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TAXII_BENCH_CLIENT="+mode, "TAXII_BENCH_BASE="+base,
		"TAXII_BENCH_CLIENT_N="+strconv.Itoa(n))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cpu0 := cpuTime()
	if err := cmd.Run(); err != nil {
		b.Fatalf("bench client: %v\n%s%s", err, out.Bytes(), errOut.Bytes())
	}
	server := cpuTime() - cpu0
	client := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	var res benchClientResult
	line, _, _ := bytes.Cut(out.Bytes()[bytes.Index(out.Bytes(), []byte("BENCH "))+6:], []byte("\n"))
	if err := json.Unmarshal(line, &res); err != nil {
		b.Fatalf("bench client output: %v\n%s", err, out.Bytes())
	}
	return res, server, client
}

// TestBenchClient is the client half of BenchmarkServe, run only in the
// child process that benchmark starts; it prints one "BENCH {json}" line.
func TestBenchClient(t *testing.T) {
	mode := os.Getenv("TAXII_BENCH_CLIENT")
	if mode == "" {
		t.Skip("the client of BenchmarkServe; runs only in its child process")
	}
	base := os.Getenv("TAXII_BENCH_BASE")
	n, err := strconv.Atoi(os.Getenv("TAXII_BENCH_CLIENT_N"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	auth := basic("alice", "alice-pw")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(u string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Accept", MediaType)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
		}
		return body, nil
	}
	var res benchClientResult
	t0 := time.Now()
	switch mode {
	case "crawl":
		u := base + "?limit=1000"
		for {
			body, err := get(u)
			if err != nil {
				t.Fatal(err)
			}
			// A light client: the envelope opens with more and next
			// (objects.go writeHead), and each object has exactly one
			// "id":"indicator--…" member, so no full JSON decode is needed.
			res.Objects += bytes.Count(body, []byte(`"id":"indicator--`))
			more, next := envelopeHead(body)
			if !more {
				break
			}
			u = base + "?next=" + url.QueryEscape(next)
		}
	case "get":
		const clients, perClient = 32, 300
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			errc = make(chan error, clients)
		)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(c), 7))
				local := make([]int64, 0, perClient)
				for i := 0; i < perClient; i++ {
					id := benchObject(r.IntN(n)).ID
					t0 := time.Now()
					if _, err := get(base + id + "/"); err != nil {
						errc <- err
						return
					}
					local = append(local, time.Since(t0).Microseconds())
				}
				mu.Lock()
				res.LatenciesUS = append(res.LatenciesUS, local...)
				res.Objects += len(local)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown client mode %q", mode)
	}
	res.Seconds = time.Since(t0).Seconds()
	line, _ := json.Marshal(res)
	fmt.Printf("BENCH %s\n", line)
}

// envelopeHead reads more and next from the start of an envelope body.
func envelopeHead(body []byte) (bool, string) {
	var head struct {
		More bool   `json:"more"`
		Next string `json:"next"`
	}
	end := bytes.Index(body, []byte(`,"objects":`))
	if end < 0 {
		return false, ""
	}
	if err := json.Unmarshal(append(body[:end:end], '}'), &head); err != nil {
		return false, ""
	}
	return head.More, head.Next
}

// BenchmarkObjectHandler is the server's cost of one single-object GET,
// without the network or a client: the handler chain plus the store.
func BenchmarkObjectHandler(b *testing.B) {
	f := newFixture(b)
	const n = 10000
	objs := make([]storage.Object, 0, n)
	for i := 0; i < n; i++ {
		objs = append(objs, benchObject(i))
	}
	if err := f.store.Update(b.Context(), func(tx *storage.Tx) error {
		_, err := tx.Put(f.cols["intel"].ID, objs)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	auth := basic("alice", "alice-pw")
	base := f.colPath("intel", "objects/")
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, base+objs[i%n].ID+"/", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		i += 7919
	}
}

// cpuTime is the process's user+system CPU time (server and client together).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
